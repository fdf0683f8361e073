"""README.md's Python examples run as they stand: each ```python block is executed, and the property tests a
block defines are called, so that the front page cannot drift from the library."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dynlearn.integration import tableaus

README = Path(__file__).parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", README.read_text(encoding="utf-8"), flags=re.S | re.M)


def test_readme_has_its_examples():
    blocks = python_blocks()
    assert len(blocks) >= 2, "README.md lost its Python examples (or their ```python fences)"


@pytest.mark.parametrize("index", range(len(python_blocks())))
def test_readme_example_runs(index, monkeypatch):
    # a block may register a scheme of its own: give it a private copy of the registry
    monkeypatch.setattr(tableaus, "_REGISTRY", dict(tableaus._REGISTRY))
    namespace: dict = {"__name__": f"readme_example_{index}"}
    exec(compile(python_blocks()[index], f"README.md python block {index}", "exec"), namespace)
    for name, value in list(namespace.items()):
        if name.startswith("test_") and callable(value):
            value()  # a hypothesis test runs all its examples here
