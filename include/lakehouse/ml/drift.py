"""The drift gate: Evidently data drift between the champion's training reference and the
latest features (and prediction drift once predictions exist). The HTML report is saved
and logged to MLflow, one row goes to ops/drift_log, and a verdict says what to do:
`pass` (score), `drift` (block scoring, retrain), `no_champion` (block, train), `no_features`.
Never scores or trains itself: the verdict is data; the Airflow side alerts and reports on it."""

from __future__ import annotations

import functools
import tempfile
from datetime import datetime, timezone
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from include.lakehouse.ml import settings as ml
from include.lakehouse.tables.delta import append, try_open


def latest_as_of(table: str = ml.FEATURES_TABLE) -> str | None:
    dt = try_open(table)
    if dt is None:
        return None
    latest = pc.max(dt.to_pyarrow_table(columns=["as_of_date"])["as_of_date"]).as_py()
    return latest.isoformat() if latest else None


def _reference(client, version) -> pd.DataFrame:
    with tempfile.TemporaryDirectory() as tmp:
        path = client.download_artifacts(version.run_id, "data/reference.parquet", tmp)
        return pd.read_parquet(path)


def _latest_predictions() -> pd.Series | None:
    as_of = latest_as_of(ml.PREDICTIONS_TABLE)
    if as_of is None:
        return None
    dt = try_open(ml.PREDICTIONS_TABLE)
    rows = dt.to_pyarrow_table(columns=["churn_probability"], filters=[("as_of_date", "=", pd.Timestamp(as_of).date())])
    return rows.to_pandas()["churn_probability"]


@functools.cache
def drift_preset():
    """Evidently's DataDriftPreset without the per-column ValueDrift metrics it adds to its
    DriftedColumnsCount: the preset's page (dataset drift and the per-column drift table) is
    drawn from the legacy metrics its own render() computes, never from those children, and the
    gate reads DriftedColumnsCount only. The same page and verdict, without computing and
    plotting every column's drift a second time (about half of a check's Evidently time)."""
    from evidently.metrics.column_statistics import DriftedColumnsCount
    from evidently.presets import DataDriftPreset

    class DriftGatePreset(DataDriftPreset):
        def generate_metrics(self, context):
            return [m for m in super().generate_metrics(context) if isinstance(m, DriftedColumnsCount)]

    return DriftGatePreset


def next_step(result: dict[str, Any], run_day: str) -> str | None:
    """What follows a verdict: "score" (pass: open the scoring gate), "retrain" (no champion, or
    drift a model trained on newer data can fix), None (no features, or drift while the champion
    was trained on the newest data whose labels have matured by `run_day`: retraining cannot
    help - blocked, alerted only)."""
    from include.lakehouse.ml.training import champion_trained_on, training_date

    if result["verdict"] == "pass":
        return "score"
    if result["verdict"] == "no_champion":
        return "retrain"
    if result["verdict"] == "drift" and champion_trained_on() != training_date(run_day):
        return "retrain"
    return None


def check_drift(as_of: str | None = None, threshold: float | None = None, current: pd.DataFrame | None = None
                ) -> dict[str, Any]:
    """Compare the champion's reference with the features of `as_of` (default: latest partition)."""
    import mlflow
    from evidently import Report
    from evidently.metrics import ValueDrift

    from include.lakehouse.ml.training import champion, features_at, mlflow_client

    threshold = ml.drift_share_threshold() if threshold is None else threshold
    client = mlflow_client()
    model = champion(client)
    as_of = as_of or latest_as_of()
    base = {"as_of_date": as_of, "threshold": threshold, "model_version": str(model.version) if model else None}
    if model is None:
        return _log({**base, "verdict": "no_champion", "detail": f"no model has alias champion in {ml.MODEL_NAME}"})
    if current is None:
        if as_of is None:
            return _log({**base, "verdict": "no_features", "detail": f"{ml.FEATURES_TABLE} has no partition yet"})
        current, _ = features_at(as_of)
    if current.empty:
        return _log({**base, "verdict": "no_features", "detail": f"features partition {as_of} is empty"})
    reference = _reference(client, model)
    columns = ml.FEATURES
    report = Report([drift_preset()(columns=columns, drift_share=threshold)])
    snapshot = report.run(reference_data=reference[columns], current_data=current[columns].astype(reference[columns].dtypes.to_dict()))
    summary = snapshot.dict()["metrics"]
    drifted = next(m["value"] for m in summary if m["metric_name"].startswith("DriftedColumnsCount"))
    share = float(drifted["share"])
    prediction_drift = None
    predictions = _latest_predictions()
    if predictions is not None and len(predictions):
        pred = Report([ValueDrift(column="prediction")]).run(
            reference_data=reference[["prediction"]], current_data=pd.DataFrame({"prediction": predictions.to_numpy()}))
        prediction_drift = float(pred.dict()["metrics"][0]["value"])
    report_path = ml.reports_dir() / f"drift_{as_of}_v{model.version}.html"
    snapshot.save_html(str(report_path))
    with mlflow.start_run(run_name=f"drift_{as_of}") as run:
        mlflow.set_tags({"kind": "drift_check", "model_version": model.version, "as_of_date": as_of})
        mlflow.log_metrics({"drift_share": share, **({"prediction_drift": prediction_drift}
                                                      if prediction_drift is not None else {})})
        mlflow.log_artifact(str(report_path), artifact_path="drift")
    verdict = "drift" if share > threshold else "pass"
    return _log({**base, "verdict": verdict, "drift_share": round(share, 4), "drifted_columns": int(drifted["count"]),
                 "prediction_drift": prediction_drift, "report_path": str(report_path),
                 "mlflow_run_id": run.info.run_id,
                 "detail": f"{int(drifted['count'])}/{len(columns)} feature columns drifted (share {share:.2f}, "
                           f"threshold {threshold:.2f})"})


def _log(result: dict[str, Any]) -> dict[str, Any]:
    """Append the check to ops/drift_log; returns the check."""
    row = {"checked_at": datetime.now(timezone.utc), "as_of_date": result.get("as_of_date"),
           "model_name": ml.MODEL_NAME, "model_version": result.get("model_version"),
           "drift_share": result.get("drift_share"), "threshold": result.get("threshold"),
           "verdict": result["verdict"], "report_path": result.get("report_path"), "detail": result.get("detail")}
    append(ml.DRIFT_LOG, pa.Table.from_pylist([row], schema=pa.schema([
        ("checked_at", pa.timestamp("us", tz="UTC")), ("as_of_date", pa.string()), ("model_name", pa.string()),
        ("model_version", pa.string()), ("drift_share", pa.float64()), ("threshold", pa.float64()),
        ("verdict", pa.string()), ("report_path", pa.string()), ("detail", pa.string())])))
    return result
