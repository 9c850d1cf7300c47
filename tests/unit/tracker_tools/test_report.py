"""A benchmark's report: its command line, its Markdown and JSON files."""

import json
from pathlib import Path

from tracker_tools.report import command_line, markdown_table, write_report


def test_the_command_line_quotes_its_arguments() -> None:
    assert command_line("scripts.benchmark", ["--hmr2", "tiny", "a b"]) == (
        "python -m scripts.benchmark --hmr2 tiny 'a b'"
    )
    assert command_line("scripts.benchmark", []) == "python -m scripts.benchmark"


def test_the_markdown_and_its_figures_are_written_side_by_side(tmp_path: Path) -> None:
    out = tmp_path / "docs" / "bench.md"
    raw = write_report(out, "# Bench\n", {"machine": "CPU", "results": [1.5]})
    assert raw == tmp_path / "docs" / "bench.json" and out.read_text() == "# Bench\n"
    assert json.loads(raw.read_text()) == {"machine": "CPU", "results": [1.5]}
    assert raw.read_text().endswith("}\n")


def test_a_table_has_its_header_rule_and_one_line_per_row() -> None:
    assert markdown_table(("video", "frames"), [("runner.mp4", 140), ("vtest.avi", 20)]) == [
        "| video | frames |",
        "| --- | --- |",
        "| runner.mp4 | 140 |",
        "| vtest.avi | 20 |",
    ]
    assert markdown_table(["stage"], []) == ["| stage |", "| --- |"]
