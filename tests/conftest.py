"""Shared fixtures: every test gets its own LAKEHOUSE_ROOT and never touches `.local/`."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture()
def lakehouse_root(tmp_path, monkeypatch):
    root = tmp_path / "lakehouse"
    root.mkdir()
    monkeypatch.setenv("LAKEHOUSE_ROOT", str(root))
    return root
