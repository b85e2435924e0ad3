"""A griffe extension: jopt's docstrings use a few reST habits; show them as Markdown.

* ``:class:`X```, ``:func:`~m.f``` (any role) become code: `X`, `f`;
* ````code```` (reST literal) becomes `code`;
* an ``Example:`` section is griffe's ``Examples:`` (so its doctest lines render as code);
* a ``>`` that starts a line or an argument's description (``epsilon: >= 0``) is text,
  not a Markdown quote;
* a paragraph ending in ``::`` (reST's "a literal block follows") ends in ``:``; the
  indented block after it is a Markdown code block already.

Doctest lines (``>>>``, ``...``) are left as they are.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")
_LITERAL = re.compile(r"``(.+?)``")
_LITERAL_BLOCK = re.compile(r"(\S)::$")
_EXAMPLE = re.compile(r"^(\s*)Example:$")
_QUOTE = re.compile(r"^(\s*(?:\*?\*?\w+(?:, \w+)*(?: \([^)]*\))?: )?)>")


def markdown_docstring(text: str) -> str:
    lines = []
    for line in text.splitlines():
        if line.lstrip().startswith((">>>", "...")):
            lines.append(line)
            continue
        line = _ROLE.sub(r"`\1`", line)
        line = _LITERAL.sub(r"`\1`", line)
        line = _LITERAL_BLOCK.sub(r"\1:", line)
        line = _EXAMPLE.sub(r"\1Examples:", line)
        line = _QUOTE.sub(r"\1\\>", line)
        lines.append(line)
    return "\n".join(lines)


class ReSTToMarkdown(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = markdown_docstring(obj.docstring.value)
