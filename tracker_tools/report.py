"""A benchmark's report: the command that wrote it, its Markdown and its figures as JSON.

Example::

    command = command_line("scripts.benchmark", argv)
    write_report(Path("docs/benchmark.md"), text, {"machine": host, "command": command, ...})
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any


def command_line(module: str, argv: Sequence[str] | None = None) -> str:
    """``python -m MODULE ARGS`` as it was run (``sys.argv``'s arguments when argv is None)."""
    arguments = sys.argv[1:] if argv is None else argv
    return f"python -m {module} {shlex.join(arguments)}".strip()


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """A Markdown table's lines: the header, its rule, then one line per row."""
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]


def write_report(out: Path, text: str, figures: dict[str, Any]) -> Path:
    """Write the Markdown to ``out`` and the figures beside it as JSON.

    Args:
        out: The Markdown file (its folder is made); the JSON goes to ``out`` with ``.json``.
        text: The report's Markdown.
        figures: The raw figures, JSON-serialisable.

    Returns:
        The JSON file's path.

    """
    raw = out.with_suffix(".json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    raw.write_text(json.dumps(figures, indent=2) + "\n")
    return raw
