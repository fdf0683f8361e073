"""CITATION.cff stays in step with the package: its version is the installed one, and the papers it lists are
the ones README.md asks users to cite."""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_citation_version_is_the_package_version():
    citation = (ROOT / "CITATION.cff").read_text(encoding="utf-8")
    declared = re.search(r"^version:\s*\"?([^\"\s]+)\"?\s*$", citation, flags=re.M)
    assert declared, "CITATION.cff has no top-level version"
    assert declared.group(1) == version("dynlearn"), "bump CITATION.cff's version with pyproject.toml's"


def test_citation_references_are_the_readme_ones():
    citation = (ROOT / "CITATION.cff").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    identifiers = re.findall(r"(10\.\d{4,}/[^\s\"]+|arXiv:\d{4}\.\d{4,5})", citation)
    assert len(identifiers) >= 3
    missing = [identifier for identifier in identifiers if identifier not in readme]
    assert not missing, f"README.md's Citing section lacks {missing}"
