"""Under `astro dev start` every component is its own container: state written to a container's
own disk is invisible to the others and gone after a restart. Every path the lakehouse keeps
state under must lie on a named volume that all four Airflow components mount."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from tests.astro.project_files import compose_template, read_dockerfile, read_override, service_volumes

COMPONENTS = list(compose_template()["components"])


def state_paths(env: dict[str, str]) -> dict[str, str]:
    """Where the image's environment puts each kind of state (same rules as config.local_dir)."""
    root = env.get("LAKEHOUSE_ROOT", "/usr/local/airflow/.local/lakehouse")
    beside = str(PurePosixPath(root).parent)
    paths = {"Delta tables (LAKEHOUSE_ROOT)": root,
             "alert outbox": env.get("LAKEHOUSE_ALERTS_FILE", f"{beside}/alerts/alerts.jsonl")}
    for name in ("dbt", "mlflow", "gx", "reports"):
        paths[f"{name} state"] = f"{beside}/{name}"
    return paths


def on_volume(path: str, mounts: dict[str, str]) -> bool:
    return any(PurePosixPath(path).is_relative_to(target) for target in mounts.values())


@pytest.mark.parametrize("component", COMPONENTS)
def test_every_state_path_is_on_a_named_volume_of_every_component(component):
    env = read_dockerfile().env
    mounts = service_volumes(read_override(), component)
    off_volume = {what: path for what, path in state_paths(env).items() if not on_volume(path, mounts)}
    assert not off_volume, f"{component} keeps state on its own container disk: {off_volume}"


def test_the_components_share_one_volume_for_state():
    override = read_override()
    targets = {c: service_volumes(override, c) for c in COMPONENTS}
    root = read_dockerfile().env["LAKEHOUSE_ROOT"]
    holding = {c: next(v for v, t in m.items() if PurePosixPath(root).is_relative_to(t)) for c, m in targets.items()}
    assert len(set(holding.values())) == 1, holding


def test_the_dbt_manifest_is_outside_the_bind_mounted_folders():
    manifest = PurePosixPath(read_dockerfile().env["DBT_MANIFEST_PATH"])
    for component, spec in compose_template()["components"].items():
        hidden = [m for m in spec["mounts"] if manifest.is_relative_to(f"/usr/local/airflow/{m}")]
        assert not hidden, f"{component} bind-mounts {hidden} over the manifest the image built at {manifest}"
