"""`make bench`: run benchmark families and write bench/results/ (see bench/harness.py).

    python -m bench.run                 # every family
    python -m bench.run scd2 kafka      # a subset (the families are the modules in bench/)
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import the project, never bench/ itself, as top level
    ROOT = Path(__file__).resolve().parents[1]
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
    sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from bench.harness import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
