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


def _first(res: dict[str, Any], lib: str) -> float | None:
    """A JAX library's time to first step: the mean of its two cold starts (the plain and
    the donated program, each a fresh trace and compile)."""
    first = res["first_step_s"].get(lib)
    return None if first is None else (first["plain"]["total"] + first["donated"]["total"]) / 2


def markdown(data: dict[str, Any]) -> str:
    """The README's table from a ``step_time.py`` JSON: per group, optax's donated step
    and first step, and jopt's (and its variants', torch fused's) ratios to them."""
    cols = [("jopt", "jopt (auto)"), ("jopt.per_leaf", "per leaf")]
    cols += [("jopt.packed", "packed params"), ("torch.fused", "torch fused")]
    head = ["tree", "optimizer", "optax step", *(name for _, name in cols)]
    head += ["optax first step", "jopt first step", "jopt peak memory"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    logs: dict[str, list[float]] = {}
    for res in data["results"]:
        tree = data["trees"][res["tree"]]
        steps = res["step_s"]
        base = steps["optax+donate"]["median"]
        cells = [tree["label"], res["optimizer"], f"{base * 1e3:.1f} ms"]
        for lib, _ in cols:
            entry = steps.get(lib if lib in TORCH else lib + "+donate")
            ratio = None if entry is None else entry["median"] / base
            cells.append("-" if ratio is None else f"{ratio:.2f}")
            if ratio is not None:
                logs.setdefault(f"step {lib}", []).append(math.log(ratio))
        first_optax, first_jopt = _first(res, "optax"), _first(res, "jopt")
        assert first_optax is not None and first_jopt is not None
        logs.setdefault("first step jopt", []).append(math.log(first_jopt / first_optax))
        peak = res["memory"]["jopt"]["peak_over_ideal"]
        cells += [f"{first_optax:.2f} s", f"{first_jopt / first_optax:.2f}"]
        lines.append("| " + " | ".join([*cells, f"{peak:.2f}x"]) + " |")
    lines.append("")
    for key, values in logs.items():
        lines.append(f"geometric mean, {key} / optax: {math.exp(sum(values) / len(values)):.2f}")
    return "\n".join(lines)


if __name__ == "__main__":
    import json
    import sys

    print(
        markdown(
            json.loads(
                Path(sys.argv[1] if sys.argv[1:] else "artifacts/step_time.json").read_text()
            )
        )
    )
