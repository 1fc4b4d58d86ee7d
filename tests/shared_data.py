"""Locating the external test data in ../shared/data, read in place."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(os.environ.get("IHS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def shared_file(name: str) -> Path:
    """The path of a file in ../shared/data, or skip the test when the folder is absent (never in CI)."""
    path = SHARED_DATA / name
    if not path.exists():
        if os.environ.get("IHS_REQUIRE_SERVICES"):
            pytest.fail(f"{path} is missing; CI must run beside ../shared/data")
        pytest.skip(f"external test data {path} is not present (clone ../shared beside the repository)")
    return path
