"""Reading Markdown tables back from a generated report (on sys.path via tests/conftest.py)."""

from __future__ import annotations


def table_rows(md: str, heading: str) -> dict[str, list[str]]:
    """``{first cell: other cells}`` of the first table after ``heading`` (bold marks removed)."""
    lines = md[md.index(heading):].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    out = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip().replace("**", "") for c in line.strip("|").split("|")]
        out[cells[0]] = cells[1:]
    return out
