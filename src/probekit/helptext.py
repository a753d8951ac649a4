"""Command-line help from the commands' docstrings, as plain text (no reStructuredText
markup: ``code``, :func:`name` and :mod:`~package.module` lose their marks)."""

from __future__ import annotations

import re

_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")


def plain(doc: str | None) -> str:
    """``doc`` without reStructuredText roles and double backquotes."""
    text = _ROLE.sub(lambda m: m.group(1), doc or "")
    return text.replace("``", "").strip()
