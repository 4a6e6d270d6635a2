"""The churn model's versions and model cards for the Lakehouse health page, from the MLflow
registry (aliases, runs) and the card each training run logged (artifact `model_card/`)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from include.lakehouse.ml import settings as ml

CARD_ARTIFACT = "model_card"


def _client():
    """An MlflowClient on the project's store; None when no local store exists yet (never creates one)."""
    uri = ml.tracking_uri()
    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///"):]).exists():
        return None
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def model_versions(limit: int = 10) -> list[dict[str, Any]]:
    """Newest versions first: version, aliases, run id, creation time (ms)."""
    client = _client()
    if client is None:
        return []
    from mlflow.exceptions import MlflowException

    try:
        aliases = client.get_registered_model(ml.MODEL_NAME).aliases or {}
        versions = client.search_model_versions(f"name='{ml.MODEL_NAME}'")
    except MlflowException:
        return []
    by_version: dict[str, list[str]] = {}
    for alias, version in aliases.items():
        by_version.setdefault(str(version), []).append(alias)
    rows = [{"model": ml.MODEL_NAME, "version": str(v.version), "aliases": sorted(by_version.get(str(v.version), [])),
             "run_id": v.run_id, "created": v.creation_timestamp} for v in versions]
    return sorted(rows, key=lambda r: int(r["version"]), reverse=True)[:limit]


def model_card(version: str) -> str | None:
    """The HTML model card the version's training run logged; None when it has none."""
    client = _client()
    if client is None:
        return None
    from mlflow.exceptions import MlflowException

    try:
        run_id = client.get_model_version(ml.MODEL_NAME, str(version)).run_id
        with tempfile.TemporaryDirectory() as scratch:
            folder = Path(client.download_artifacts(run_id, CARD_ARTIFACT, scratch))
            cards = sorted(folder.glob("*.html"))
            return cards[0].read_text() if cards else None
    except (MlflowException, OSError):
        return None


def run_summary(run_id: str) -> dict[str, Any] | None:
    """One MLflow run for its page: name, status, times, params, metrics, tags (MLflow's own
    `mlflow.*` tags left out) and artifact paths; None when the store has no such run."""
    import re

    client = _client()
    if client is None or not re.fullmatch(r"[0-9a-f]{32}", run_id):
        return None
    from mlflow.exceptions import MlflowException

    try:
        run = client.get_run(run_id)
    except MlflowException:
        return None

    def artifacts(path: str | None = None) -> list[str]:
        found = []
        for item in client.list_artifacts(run_id, path):
            found += artifacts(item.path) if item.is_dir else [item.path]
        return found

    return {"run_id": run_id, "name": run.info.run_name, "status": run.info.status,
            "start_time": run.info.start_time, "end_time": run.info.end_time,
            "params": dict(run.data.params), "metrics": dict(run.data.metrics),
            "tags": {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")},
            "artifacts": artifacts()}
