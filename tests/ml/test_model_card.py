"""Every registered version gets a model card a person can open: in MLflow and under
.local/reports/models/, with curves, calibration, confusion matrix, SHAP importance, the
training window, table versions and the drift reference summary."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from include.lakehouse.ml import settings as ml
from tests.ml.conftest import write_world

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/lib/chromium/chromium")  # Debian's browser (scripts/bootstrap.sh); /usr/bin/chromium is a wrapper
ARTIFACTS = ROOT / ".local" / "test-artifacts"


@pytest.fixture()
def trained(mlflow_store):
    """train_model's cold start where the window before the newest has no features: the newest
    model becomes the first champion."""
    from include.lakehouse.ml import training

    write_world(["2024-01-01"])
    return training.train_for_run("2024-02-01")


def test_training_writes_a_model_card_logs_it_and_records_the_first_champion(trained, mlflow_store):
    from deltalake import DeltaTable

    from include.lakehouse.ml.training import mlflow_client

    assert trained["as_of_date"] == "2024-01-01" and trained["new_champion"] and trained["champion_version"] == "1"
    assert trained["notes"][0].startswith("cold start: no baseline on 2023-12-01")
    card = Path(trained["model_card"])
    assert card == mlflow_store.parent / "reports" / "models" / f"{ml.MODEL_NAME}_v1.html"
    page = card.read_text()
    for section in ("Training data and versions", "ROC curve", "Precision-recall curve", "Calibration",
                    f"Confusion matrix (threshold {ml.SERVING_THRESHOLD})", "Global SHAP importance",
                    "Drift reference summary", "(2024-01-01, 2024-01-31]", "features/customer_features v",
                    "champion (first model)", "none (the table did not exist yet)"):
        assert section in page, section
    assert len(re.findall(r'src="data:image/png;base64,', page)) == 5  # self-contained: opens offline
    client = mlflow_client()
    assert [a.path for a in client.list_artifacts(trained["run_id"], "model_card")] == [
        f"model_card/{ml.MODEL_NAME}_v1.html"]
    run = client.get_run(trained["run_id"])
    assert run.data.metrics["shap_mean_abs.recency_days"] == pytest.approx(trained["global_importance"]["recency_days"])
    decision = DeltaTable(str(mlflow_store / ml.DECISIONS_TABLE)).to_pandas().iloc[0]
    assert (decision["action"], decision["to_version"]) == ("first_champion", "1")
    assert client.get_model_version(ml.MODEL_NAME, "1").tags["champion.action"] == "first_champion"


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Debian chromium at {CHROMIUM} (scripts/bootstrap.sh installs it)")
def test_the_model_card_opens_in_headless_chromium(trained):
    """The card as a person sees it: every plot decoded by the browser, the tables laid out; the
    screenshot is kept in .local/test-artifacts/ for a look."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "model_card.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(Path(trained["model_card"]).as_uri())
            assert page.title() == f"Model card: {ml.MODEL_NAME} v1"
            assert page.locator("h2").all_inner_texts() == [
                "Training data and versions", "Performance (holdout)", "Global importance (mean |SHAP|)",
                "Drift reference summary"]
            widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
            assert len(widths) == 5 and min(widths) > 100, widths  # all five plots decoded, none broken
            assert page.get_by_text("holdout AUC").is_visible()
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert shot.stat().st_size > 50_000  # text, tables and five plots, not a blank page
