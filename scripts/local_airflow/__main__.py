"""python -m scripts.local_airflow demo|ui|canary|init|db-template  (what `make demo`, `make ui`, `make canary`,
`make install` run)."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from scripts import local_airflow  # noqa: E402
from scripts.local_airflow.settings import DemoError  # noqa: E402


def exit_on_signal(signum: int, _frame) -> None:
    """SIGTERM / SIGHUP end the runner like Ctrl-C: `finally` blocks stop the components, and the
    exit code says which signal it was (128 + its number)."""
    sys.exit(128 + signum)


def install_signal_handlers() -> None:
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, exit_on_signal)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.local_airflow", description=local_airflow.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["demo", "ui", "init", "canary", "db-template"])
    args = parser.parse_args(argv)
    install_signal_handlers()
    try:
        if args.command == "init":
            from scripts import localenv
            from scripts.local_airflow.settings import init

            init(localenv.airflow_env())
            return 0
        if args.command == "db-template":
            from scripts.local_airflow.settings import save_db_template

            print(f"migrated empty metadata DB: {save_db_template()}")
            return 0
        if args.command == "demo":
            from scripts.local_airflow.runner import demo as command
        elif args.command == "ui":
            from scripts.local_airflow.ui import ui as command
        else:
            from scripts.local_airflow.canary import canary as command
        return command()
    except DemoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
