"""The README is the contract: every kexue import and dotted kexue name it shows resolves."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
NOT_CODE = {"kexue.fm"}                      # the blog's domain


def _readme() -> str:
    return README.read_text(encoding="utf-8")


def _resolve(dotted: str) -> object:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)        # AttributeError = a documented name that is gone
        return obj
    raise ModuleNotFoundError(dotted)


def import_lines(text: str) -> list[str]:
    """``from kexue... import ...`` / ``import kexue...`` statements of the python code blocks."""
    lines = []
    for block in re.findall(r"```python\n(.*?)```", text, flags=re.S):
        joined = re.sub(r"\(\s*([^)]*)\)", lambda m: m.group(1).replace("\n", " "), block)
        lines += [" ".join(ln.split()) for ln in joined.splitlines()
                  if re.match(r"\s*(from kexue[\w.]* import |import kexue)", ln)]
    return lines


def dotted_names(text: str) -> list[str]:
    names = set(re.findall(r"(?<![\w/.])kexue(?:\.[A-Za-z_]\w*)+", text)) - NOT_CODE
    return sorted(names)


def test_readme_shows_imports_and_names() -> None:
    text = _readme()
    assert len(import_lines(text)) >= 2 and len(dotted_names(text)) >= 5


@pytest.mark.parametrize("line", import_lines(_readme()))
def test_every_readme_import_works(line: str) -> None:
    exec(line, {})                          # noqa: S102 - the README's own import statements


@pytest.mark.parametrize("name", dotted_names(_readme()))
def test_every_dotted_kexue_name_in_the_readme_resolves(name: str) -> None:
    assert _resolve(name) is not None


def test_the_checker_catches_a_missing_name() -> None:
    with pytest.raises(AttributeError):
        _resolve("kexue.training.NoSuchOptimizer")
    assert import_lines("```python\nfrom kexue.nn import (\n  a,\n  b)\n```") == \
        ["from kexue.nn import a, b"]


def markdown_tables(text: str) -> list[list[str]]:
    """Runs of consecutive ``|`` lines outside code fences (a blank line ends a run)."""
    tables: list[list[str]] = []
    run: list[str] = []
    fenced = False
    for line in text.splitlines() + [""]:
        if line.startswith("```"):
            fenced = not fenced
        if not fenced and line.startswith("|"):
            run.append(line)
            continue
        if run:
            tables.append(run)
            run = []
    return tables


def table_defects(table: list[str]) -> list[str]:
    """A table needs a header, a ``|---|`` separator and the header's column count per row
    (GitHub splits cells at every unescaped ``|``, inside code spans too)."""
    def cells(row: str) -> int:
        return len(row.replace("\\|", "").strip().strip("|").split("|"))

    if len(table) < 2 or not re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", table[1].strip()):
        return [f"no header / separator row before: {table[0][:60]}"]
    width = cells(table[0])
    return [f"{cells(r)} cells, header has {width}: {r[:60]}" for r in table[2:]
            if cells(r) != width]


def test_every_readme_table_renders() -> None:
    tables = markdown_tables(_readme())
    assert len(tables) >= 5
    assert [d for t in tables for d in table_defects(t)] == []


def test_the_table_checker_catches_a_split_table() -> None:
    split = "| a | b |\n|---|---|\n| 1 | 2 |\n\n| 3 | 4 |\n"
    assert [table_defects(t) for t in markdown_tables(split)][1] != []
    assert table_defects(["| a | b |", "|---|---|", "| 1 | `x\\|y` |", "| 1 | `x|y` |"]) == \
        ["3 cells, header has 2: | 1 | `x|y` |"]
