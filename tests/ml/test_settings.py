"""Model work runs in the configured number of native threads (LAKEHOUSE_ML_THREADS): OpenMP's
default pool spun against the other tasks of a busy worker and made training 10x slower."""

from __future__ import annotations

import pytest

from include.lakehouse.ml import settings as ml


def openmp_threads() -> set[int]:
    from threadpoolctl import threadpool_info

    return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "openmp"}


@pytest.mark.parametrize("configured, expected", [(None, {1}), ("2", {2})])
def test_training_scoring_and_evaluation_use_the_configured_threads(monkeypatch, configured, expected):
    from sklearn.ensemble import HistGradientBoostingClassifier  # noqa: F401 - loads the OpenMP runtime

    from include.lakehouse.ml import evaluation, inference, training

    if configured is None:
        monkeypatch.delenv("LAKEHOUSE_ML_THREADS", raising=False)
    else:
        monkeypatch.setenv("LAKEHOUSE_ML_THREADS", configured)
    assert ml.bounded_threads(openmp_threads)() == expected
    for entry in (training.train, inference.score, evaluation.evaluate):
        assert entry.__wrapped__ and entry.__name__ in ("train", "score", "evaluate")
