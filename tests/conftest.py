"""Shared pytest configuration and fixtures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def orders(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The order pipeline example, recorded once per test run with seeded ids."""
    path = tmp_path_factory.mktemp("rec") / "orders.amrec"
    subprocess.run([sys.executable, str(ROOT / "examples" / "orders.py"), "--record", str(path),
                    "--seed", "1001"], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return path
