"""The printed table of times and ratios, and the plot of step time against leaves."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from trees import TreeSpec

TORCH = ("torch.fused", "torch.foreach")


def _fmt(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1e3:.1f}ms" if seconds < 1.0 else f"{seconds:.2f}s"


def _values(res: dict[str, Any], lib: str) -> dict[str, float | None]:
    """One library's row values in one group; torch steps in place, so only 'donated'."""
    steps, first, mem = res["step_s"], res["first_step_s"].get(lib), res["memory"].get(lib)
    torch = lib in TORCH
    mode = "plain" if torch else "donated"  # torch's first opt.step() is in place
    plain = None if torch else steps.get(lib, {}).get("median")
    donated = steps.get(lib if torch else lib + "+donate", {}).get("median")
    return {
        "step": plain,
        "step, donated": donated,
        "first step": first[mode]["total"] if first else None,
        "  of which compile": first[mode].get("compile") if first else None,
        "peak mem / ideal": mem["peak_over_ideal"] if mem else None,
    }


def table(results: list[dict[str, Any]], trees: dict[str, TreeSpec], libs: list[str]) -> str:
    """Absolute values per library, then ratios: each library over optax, jopt over torch.

    Ratios below 1 mean faster (or smaller) than the denominator. Torch updates in place,
    so its time stands in the donated row and is compared with donated JAX steps.
    """
    jopts = [lib for lib in libs if lib.startswith("jopt")]
    ratio_cols = [(lib, "optax") for lib in libs if lib != "optax" and "optax" in libs]
    if "torch.fused" in libs:
        ratio_cols += [(j, "torch.fused") for j in jopts]
    head = (
        f"{'tree':<22} {'opt':<8} {'measure':<19}"
        + "".join(f"{lib:>{max(9, len(lib) + 1)}}" for lib in libs)
        + "  |"
        + "".join(f"{a + '/' + b:>{len(a + b) + 2}}" for a, b in ratio_cols)
    )
    lines = [head, "-" * len(head)]
    means: dict[tuple[str, str, str], list[float]] = {}
    last_tree = None
    for res in results:
        tree_cell = trees[res["tree"]].label if res["tree"] != last_tree else ""
        if res["tree"] != last_tree and last_tree is not None:
            lines.append("")
        last_tree = res["tree"]
        opt_cell = res["optimizer"]
        values = {lib: _values(res, lib) for lib in libs}
        for measure in next(iter(values.values())):
            cells = []
            for lib in libs:
                v = values[lib][measure]
                w = max(9, len(lib) + 1)
                text = f"{v:.2f}x" if measure.startswith("peak") and v else _fmt(v)
                cells.append(f"{text:>{w}}")
            ratios = []
            for a, b in ratio_cols:
                va, vb = values[a][measure], values[b][measure]
                if b == "torch.fused" and measure != "step, donated":
                    va = None  # only the in-place (donated) step compares with torch
                ok = va is not None and vb is not None and not measure.startswith("peak")
                ratios.append(f"{va / vb:.2f}" if ok else "")
                if ok:
                    means.setdefault((measure.strip(), a, b), []).append(va / vb)
            lines.append(
                f"{tree_cell:<22} {opt_cell:<8} {measure:<19}"
                + "".join(cells)
                + "  |"
                + "".join(
                    f"{r:>{len(a + b) + 2}}" for r, (a, b) in zip(ratios, ratio_cols, strict=True)
                )
            )
            tree_cell = opt_cell = ""
    lines += ["", "geometric means of the ratios over all groups:"]
    for (measure, a, b), rs in means.items():
        gm = math.exp(sum(math.log(r) for r in rs) / len(rs))
        lines.append(f"  {measure:<19} {a + '/' + b:<28} {gm:6.2f}  ({len(rs)} groups)")
    lines += ["", "trees:"]
    lines += [f"  {s.label}: {s.leaves} leaves, {s.params:,} params" for s in trees.values()]
    return "\n".join(line.rstrip() for line in lines)


def plot(
    results: list[dict[str, Any]], trees: dict[str, TreeSpec], libs: list[str], path: Path
) -> None:
    """Donated step time against number of leaves (flat trees), one line per library."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    optimizers = list(dict.fromkeys(r["optimizer"] for r in results))
    fig, axes = plt.subplots(1, len(optimizers), figsize=(4.5 * len(optimizers), 4), squeeze=False)
    for ax, name in zip(axes[0], optimizers, strict=True):
        rows = sorted(
            (r for r in results if r["optimizer"] == name and trees[r["tree"]].flat),
            key=lambda r: trees[r["tree"]].leaves,
        )
        for lib in libs:
            pts = [
                (trees[r["tree"]].leaves, v * 1e3)
                for r in rows
                if (v := _values(r, lib)["step, donated"]) is not None
            ]
            if pts:
                color = f"C{libs.index(lib) % 10}"  # one color per library in every panel
                ax.plot(*zip(*pts, strict=True), marker="o", label=lib, color=color)
        ax.set_xscale("log")
        ax.set_yscale("log")
        leaves = sorted({trees[r["tree"]].leaves for r in rows})
        ax.set_xticks(leaves, [str(n) for n in leaves])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.yaxis.set_minor_locator(matplotlib.ticker.LogLocator(subs=(2.0, 5.0)))
        for axis in (ax.yaxis.set_major_formatter, ax.yaxis.set_minor_formatter):
            axis(matplotlib.ticker.FormatStrFormatter("%g"))
        ax.set_title(f"{name}: donated step (torch: in place)")
        ax.set_xlabel("leaves (equal 1-D float32 leaves)")
        ax.set_ylabel("median step time (ms)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    sizes = ", ".join(f"{t.leaves}: {t.params / 1e6:.3g}M" for t in trees.values() if t.flat)
    fig.suptitle(f"params per tree: {sizes}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
