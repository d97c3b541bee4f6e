"""Small helpers shared by tests."""

from __future__ import annotations


def table_rows(output: str) -> list[list[str]]:
    """The body rows of a rich table printed to ``output``, as lists of stripped cells."""
    return [[cell.strip() for cell in line.strip().strip("│").split("│")]
            for line in output.splitlines() if line.startswith("│")]
