"""Named failpoints at the dangerous windows of a write (between two commits, after a
tombstone, before a merge), so crash tests can SIGKILL a real process exactly there.

Off unless LAKEHOUSE_FAILPOINT is set to `<name>:<flag file>`: the process that reaches the
named point creates the flag file and waits to be killed. One environment lookup when off;
never raises, never changes data.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

ENV = "LAKEHOUSE_FAILPOINT"


def reach(name: str) -> None:
    """Mark the window `name`; when a test armed it, signal and hang until killed."""
    armed = os.environ.get(ENV)
    if not armed:
        return
    point, _, flag = armed.partition(":")
    if point != name or not flag:
        return
    Path(flag).touch()
    while True:  # the test SIGKILLs this process now
        time.sleep(1)
