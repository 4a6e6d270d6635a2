"""The runner's entry point: a kill or hang-up stops it like Ctrl-C, with the signal's exit code."""

from __future__ import annotations

import signal
import subprocess
import sys

from tests.scripts.local_airflow.demo_process import ROOT

SCRIPT = """
import os, signal, sys, time
from scripts.local_airflow.__main__ import install_signal_handlers
install_signal_handlers()
try:
    os.kill(os.getpid(), signal.{name})
    time.sleep(30)
finally:
    print("cleaned up", flush=True)  # where the runner stops its components
"""


def test_sigterm_and_sighup_exit_with_their_own_code_after_cleanup():
    for sig in (signal.SIGTERM, signal.SIGHUP):
        result = subprocess.run([sys.executable, "-c", SCRIPT.format(name=sig.name)], cwd=ROOT,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 128 + sig, (sig.name, result.returncode, result.stderr[-500:])
        assert "cleaned up" in result.stdout
