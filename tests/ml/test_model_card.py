"""Every registered version gets a model card a person can open: in MLflow and under
.local/reports/models/, with curves, calibration, confusion matrix, SHAP importance, the
training window, table versions and the drift reference summary."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from include.lakehouse.ml import settings as ml
from tests.ml.conftest import write_world

CHROMIUM = Path("/usr/lib/chromium/chromium")


@pytest.fixture()
def trained(mlflow_store):
    from include.lakehouse.ml import training

    write_world(["2024-01-01"])
    return training.train("2024-01-01")


def test_training_writes_a_model_card_logs_it_and_records_the_promotion(trained, mlflow_store):
    from deltalake import DeltaTable

    from include.lakehouse.ml.training import mlflow_client

    card = Path(trained["model_card"])
    assert card == mlflow_store.parent / "reports" / "models" / f"{ml.MODEL_NAME}_v1.html"
    page = card.read_text()
    for section in ("Training data and versions", "ROC curve", "Precision-recall curve", "Calibration",
                    f"Confusion matrix (threshold {ml.SERVING_THRESHOLD})", "Global SHAP importance",
                    "Drift reference summary", "(2024-01-01, 2024-01-31]", "features/customer_features v"):
        assert section in page, section
    assert len(re.findall(r'src="data:image/png;base64,', page)) == 5  # self-contained: opens offline
    client = mlflow_client()
    assert [a.path for a in client.list_artifacts(trained["run_id"], "model_card")] == [
        f"model_card/{ml.MODEL_NAME}_v1.html"]
    run = client.get_run(trained["run_id"])
    assert run.data.metrics["shap_mean_abs.recency_days"] == pytest.approx(trained["global_importance"]["recency_days"])
    decision = DeltaTable(str(mlflow_store / ml.DECISIONS_TABLE)).to_pandas().iloc[0]
    assert (decision["action"], decision["to_version"]) == ("promote_at_training", "1")
    assert client.get_model_version(ml.MODEL_NAME, "1").tags["champion.action"] == "promote_at_training"


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed (/usr/lib/chromium/chromium)")
def test_the_model_card_renders_in_headless_chromium(trained, tmp_path):
    shot = tmp_path / "card.png"
    subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={shot}",
                    "--window-size=1200,2400", Path(trained["model_card"]).as_uri()],
                   check=True, timeout=60, capture_output=True)
    assert shot.stat().st_size > 20_000  # text, tables and five plots, not a blank page
    shutil.copy(shot, Path(trained["model_card"]).with_suffix(".png"))
