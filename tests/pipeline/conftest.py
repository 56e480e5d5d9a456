"""Shared test data for the pipeline tests: the ROOT-made HLT protocol fixtures in `tests/fixtures/`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import uproot

# uproot registers every class version it learns from a file's streamers in one global registry. Decoding
# with such a version is correct, but it would make "fails without a schema" depend on what an earlier
# test opened, so each test starts from uproot's built-in classes, as a fresh receiver process does.
_BUILTIN_CLASS_VERSIONS = {
    name: dict(getattr(cls, "known_versions", {})) for name, cls in uproot.classes.items()
}

REPO_ROOT = Path(__file__).resolve().parents[2]
# In the repository, so a plain clone runs every test; OVERWATCH_FIXTURES points at another copy.
FIXTURES_DIR = Path(os.environ.get("OVERWATCH_FIXTURES", REPO_ROOT / "tests" / "fixtures"))


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    if not (FIXTURES_DIR / "expected.json").is_file():
        pytest.fail(f"protocol fixtures not found at {FIXTURES_DIR} (set OVERWATCH_FIXTURES)")
    return FIXTURES_DIR


@pytest.fixture(scope="session")
def expected(fixtures_dir: Path) -> dict:
    return json.loads((fixtures_dir / "expected.json").read_text())


@pytest.fixture(autouse=True)
def builtin_uproot_classes_only() -> None:
    registry = uproot.classes
    for name in set(registry) - set(_BUILTIN_CLASS_VERSIONS):
        del registry[name]
    for name, versions in _BUILTIN_CLASS_VERSIONS.items():
        known_versions = getattr(registry[name], "known_versions", None)
        if known_versions is not None and known_versions != versions:
            known_versions.clear()
            known_versions.update(versions)
