"""The churn loop on real tables: point-in-time features in Spark, MLflow training, the drift
gate, batch inference (champion/challenger rules: test_training.py, test_evaluation.py)."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from deltalake import DeltaTable

from include.lakehouse.errors import LakehouseError
from include.lakehouse.ml import settings as ml
from include.lakehouse.ml.features import build_features
from tests.ml.conftest import day


def features(root, as_of: str) -> pd.DataFrame:
    table = DeltaTable(str(root / "features" / "customer_features")).to_pyarrow_table(
        filters=[("as_of_date", "=", date.fromisoformat(as_of))])
    return table.to_pandas().set_index("customer_id").sort_index()


def test_features_are_point_in_time_and_a_rerun_replaces_the_partition(ml_lakehouse, spark):
    import pyarrow as pa
    from deltalake import write_deltalake

    from include.lakehouse.source.generator import ShopSource

    as_of = day(20)
    result = build_features(spark, [as_of])
    before = features(ml_lakehouse, as_of)
    assert result["rows_inserted"] == len(before) > 0
    assert (before["orders_version"] == result["source_versions"]["orders"]).all()
    # a future order (placed after the as-of day) for a customer with a feature row
    customer = int(before.index[0])
    late = ShopSource(scale=0.3).orders(day(30)).slice(0, 1).to_pylist()[0]
    late.update(customer_id=customer, order_id=999_999_999)
    write_deltalake(str(ml_lakehouse / "silver" / "orders"), pa.Table.from_pylist([late], schema=pa.schema(
        DeltaTable(str(ml_lakehouse / "silver" / "orders")).schema().to_arrow())), mode="append")
    rerun = build_features(spark, [as_of])
    after = features(ml_lakehouse, as_of)
    assert rerun["source_versions"]["orders"] == result["source_versions"]["orders"] + 1
    assert len(after) == len(before)  # replaced, not appended
    pd.testing.assert_frame_equal(after[ml.FEATURES], before[ml.FEATURES])  # the future order changed nothing


def test_drift_gate_blocks_shifted_features_and_passes_unshifted_then_inference(ml_lakehouse, spark):
    from include.lakehouse.ml import drift, inference, training

    train_day, score_day = day(12), day(14)
    build_features(spark, [train_day, score_day])
    with pytest.raises(LakehouseError, match="no champion"):
        inference.score(score_day)
    assert drift.check_drift(score_day)["verdict"] == "no_champion"
    trained = training.train(train_day)

    verdict = drift.check_drift(score_day)
    assert verdict["verdict"] == "pass" and str(verdict["model_version"]) == trained["model_version"]
    assert verdict["report_path"].endswith(".html")
    from include.lakehouse.observability.models import run_summary  # the "MLflow run" page's source

    logged = run_summary(verdict["mlflow_run_id"])
    assert logged["tags"]["kind"] == "drift_check" and round(logged["metrics"]["drift_share"], 4) == verdict["drift_share"]
    assert any(a.startswith("drift/") for a in logged["artifacts"])
    shifted, _ = training.features_at(score_day)
    for column in ml.NUMERIC_FEATURES:
        shifted[column] = shifted[column] * 5 + 100
    blocked = drift.check_drift(score_day, current=shifted)
    assert blocked["verdict"] == "drift" and blocked["drift_share"] > ml.drift_share_threshold()
    log = DeltaTable(str(ml_lakehouse / "ops" / "drift_log")).to_pyarrow_table().to_pylist()
    assert [r["verdict"] for r in sorted(log, key=lambda r: r["checked_at"])] == ["no_champion", "pass", "drift"]

    scored = inference.score(score_day)
    again = inference.score(score_day)  # a rerun of the date leaves one set of rows
    predictions = DeltaTable(str(ml_lakehouse / "predictions" / "churn_scores")).to_pandas()
    assert len(predictions) == scored["rows_inserted"] == again["rows_inserted"] == len(features(ml_lakehouse, score_day))
    assert set(predictions["model_version"]) == {trained["model_version"]}
    assert set(predictions["mlflow_run_id"]) == {trained["run_id"]}
    assert predictions["churn_probability"].between(0, 1).all()


def test_inference_refuses_features_that_no_longer_match_the_signature(ml_lakehouse, spark, monkeypatch):
    from include.lakehouse.ml import inference, training

    build_features(spark, [day(12)])
    training.train(day(12))
    original = training.features_at

    def renamed(as_of, version=None):
        frame, v = original(as_of, version)
        return frame.rename(columns={"recency_days": "days_since_order"}), v

    monkeypatch.setattr(training, "features_at", renamed)
    with pytest.raises(LakehouseError, match="signature.*recency_days"):
        inference.score(day(12))
    assert not (ml_lakehouse / "predictions" / "churn_scores").exists()
