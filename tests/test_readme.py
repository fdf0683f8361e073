"""The Python examples of README.md and of the documentation's pages (docs/**/*.md) run as they stand: each
```python block is executed, and the property tests a block defines are called, so that neither the front page
nor the site can drift from the library."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dynlearn.integration import tableaus

ROOT = Path(__file__).parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]
PAGES = [page for page in PAGES if "_build" not in page.parts]


def python_blocks(page: Path) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", page.read_text(encoding="utf-8"), flags=re.S | re.M)


BLOCKS = [(page, index) for page in PAGES for index in range(len(python_blocks(page)))]


def test_the_pages_have_their_examples():
    assert python_blocks(ROOT / "README.md"), "README.md lost its Python example (or its ```python fence)"
    defined = [block for page in PAGES for block in python_blocks(page) if re.search(r"^def test_", block, re.M)]
    assert defined, "the documentation lost its property-test example"


@pytest.mark.parametrize("page, index", BLOCKS, ids=[f"{page.relative_to(ROOT)}-{index}" for page, index in BLOCKS])
def test_page_example_runs(page, index, monkeypatch):
    # a block may register a scheme of its own: give it a private copy of the registry
    monkeypatch.setattr(tableaus, "_REGISTRY", dict(tableaus._REGISTRY))
    namespace: dict = {"__name__": f"page_example_{index}"}
    exec(compile(python_blocks(page)[index], f"{page.relative_to(ROOT)} python block {index}", "exec"), namespace)
    for name, value in list(namespace.items()):
        if name.startswith("test_") and callable(value):
            value()  # a hypothesis test runs all its examples here
