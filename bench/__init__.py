"""Benchmarks of the lakehouse (`make bench`): one module per family, shared harness in harness.py."""

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
for _path in (str(_ROOT / "plugins"), str(_ROOT)):
    if _path not in sys.path:
        sys.path.insert(0, _path)
