"""The local Airflow's environment (scripts/localenv.py)."""

from __future__ import annotations

import stat

from tests.scripts.local_airflow.demo_process import free_port


def test_local_airflow_home_keys_and_passwords_are_owner_only(tmp_path):
    from scripts import localenv

    def mode(path):
        return stat.S_IMODE(path.stat().st_mode)

    old = tmp_path / "old"  # a home written before the rule, world-readable
    old.mkdir(mode=0o755)
    old.chmod(0o755)
    (old / "passwords.json").write_text('{"admin": "admin"}')
    (old / "passwords.json").chmod(0o644)
    for home in (old, tmp_path / "fresh"):
        env = localenv.airflow_env(home=home, port=free_port())
        assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] == str(home / "passwords.json")
        assert mode(home) == 0o700
        assert mode(home / "passwords.json") == 0o600 and mode(home / "secrets.json") == 0o600
