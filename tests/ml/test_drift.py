"""The drift gate's Evidently preset: the same verdict and the same HTML page as Evidently's
DataDriftPreset, without the per-column metrics the page never shows."""

from __future__ import annotations

import re

import pytest

from include.lakehouse.ml import settings as ml
from tests.ml.conftest import synthetic_features


def _page(snapshot, tmp_path, name: str) -> str:
    """The saved HTML with the ids Evidently draws at random (uuids) replaced."""
    path = tmp_path / f"{name}.html"
    snapshot.save_html(str(path))
    page = re.sub(r"metric_[0-9a-f]+", "metric_ID", path.read_text())
    return re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "UUID", page)


@pytest.mark.parametrize("shift", [0.0, 25.0])
def test_the_gate_preset_gives_the_data_drift_presets_verdict_and_page(tmp_path, shift):
    from evidently import Report
    from evidently.presets import DataDriftPreset

    from include.lakehouse.ml.drift import drift_preset

    reference = synthetic_features("2024-01-01", seed=0)[ml.FEATURES]
    current = synthetic_features("2024-02-01", seed=1)[ml.FEATURES]
    current[["recency_days", "orders_30d", "spend_30d", "events_30d"]] += shift  # drift in 4 of 12 columns, or none

    def run(preset):
        snapshot = Report([preset(columns=ml.FEATURES, drift_share=0.3)]).run(reference_data=reference,
                                                                              current_data=current)
        counted = next(m["value"] for m in snapshot.dict()["metrics"]
                       if m["metric_name"].startswith("DriftedColumnsCount"))
        return counted, _page(snapshot, tmp_path, preset.__name__)

    (full_count, full_page), (gate_count, gate_page) = run(DataDriftPreset), run(drift_preset())
    assert gate_count == full_count and (full_count["count"] >= 4) == (shift > 0)
    assert gate_page == full_page  # the per-column drift table included: every column is on the page
    assert all(f'"{column}"' in gate_page for column in ml.FEATURES)
