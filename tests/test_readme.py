"""The README's library example runs as written, on a generated ratings table and item table."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).parents[1] / "README.md"


def library_example() -> str:
    """The first Python block of the README's *Library* section."""
    section = README.read_text(encoding="utf-8").split("\n## Library\n", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None, "the Library section has no Python example"
    return match.group(1)


def write_shop(folder: Path) -> None:
    """ratings.csv (users alice, bob and 38 others; items sku-1 … sku-24; two tastes) and items.csv with titles."""
    rng = np.random.default_rng(0)
    users = ["alice", "bob"] + [f"user-{k}" for k in range(38)]
    rows = []
    for position, user in enumerate(users):
        taste = position % 2
        for item in rng.choice(24, 10, replace=False).tolist():
            likes = item % 2 == taste
            rows.append(f"{user},sku-{item + 1},{int(np.clip(round(rng.normal(4.3 if likes else 1.8, 0.7)), 1, 5))}")
    (folder / "ratings.csv").write_text("user,item,rating\n" + "\n".join(rows) + "\n")
    titles = [f"sku-{k},Product {k}" for k in range(1, 25)]
    (folder / "items.csv").write_text("itemId,title\n" + "\n".join(titles) + "\n")


def test_the_library_example_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    write_shop(tmp_path)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(library_example(), "README.md (Library)", "exec"), namespace)  # the example, exactly as printed
    model = namespace["model"]
    assert (tmp_path / "shop.safetensors").is_file() and type(model).__name__ == "RBMRecommender"
    items, lists = namespace["items"], namespace["lists"]
    assert len(items) == 5 and len(lists) == 2 and "sku-3" not in lists.to_frame()["item"].to_list()
    assert set(namespace["picked"].tolist()) <= {"sku-1", "sku-2", "sku-4", "sku-5"}
    rated = {
        line.split(",")[1]
        for line in (tmp_path / "ratings.csv").read_text().splitlines()[1:]
        if line.startswith("alice,")
    }
    assert not set(items.tolist()) & rated  # nothing alice has rated, even the ratings held out for early stopping
    assert "Product" in capsys.readouterr().out
