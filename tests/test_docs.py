"""The README is a front door and the docs hold together: short, every link resolves, every path named exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(#[^)\s]*)?\)")
CODE_PATH = re.compile(r"`((?:recsys_rbm|cli|benchmarks|tests|notebooks)/[\w./-]+)`")


def test_the_readme_is_a_front_door_of_at_most_250_lines() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines; move the detail to docs/"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    targets = [match.group(1) for match in LINK.finditer(text) if "://" not in match.group(1)]
    missing = [target for target in targets if not (page.parent / target).exists()]
    assert not missing, f"{page.name} links to missing files: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_source_path_named_exists(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    named = {match.group(1).rstrip(".") for match in CODE_PATH.finditer(text)}
    missing = sorted(path for path in named if not (ROOT / path).exists())
    assert not missing, f"{page.name} names paths that do not exist: {missing}"


def test_every_benchmark_table_names_its_command_and_date() -> None:
    text = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    sections = text.split("\n## ")[1:]
    for section in sections:
        title = section.splitlines()[0]
        if "```" not in section and "|---" not in section:
            continue  # a pointer to another page, no table of its own
        assert re.search(r"(python benchmarks/|rbm-rec )\S+", section), f"{title}: no command"
        assert re.search(r"\b\d{1,2} (November|December) 20\d\d\b", section), f"{title}: no date"
