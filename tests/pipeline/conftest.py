"""Shared test data for the pipeline tests: the ROOT-made HLT protocol fixtures beside the repo."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES_DIR = Path(
    os.environ.get("OVERWATCH_FIXTURES", REPO_ROOT.parent / "shared" / "hlt-protocol" / "fixtures")
)


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    if not (FIXTURES_DIR / "expected.json").is_file():
        pytest.fail(f"protocol fixtures not found at {FIXTURES_DIR} (set OVERWATCH_FIXTURES)")
    return FIXTURES_DIR


@pytest.fixture(scope="session")
def expected(fixtures_dir: Path) -> dict:
    return json.loads((fixtures_dir / "expected.json").read_text())
