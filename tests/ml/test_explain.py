"""Explanations: SHAP contributions that add up to the model's margin, named by the features
table's columns; a wrong explainer configuration is refused, not written."""

from __future__ import annotations

import numpy as np
import pytest

from include.lakehouse.ml import settings as ml
from include.lakehouse.ml.explain import ExplanationError, explain, top_k_rows
from tests.ml.conftest import fit_pipeline, synthetic_features, true_churn


def test_contributions_add_up_to_the_margin_and_name_the_original_features():
    frame = synthetic_features("2024-01-01")
    pipeline = fit_pipeline(frame, true_churn(frame))
    explained = explain(pipeline, frame[ml.FEATURES])
    assert explained.features == ml.FEATURES  # one-hot segment columns summed back into `segment`
    assert explained.max_additivity_error < 1e-9
    margin = pipeline[-1].decision_function(pipeline[:-1].transform(frame[ml.FEATURES]))
    np.testing.assert_allclose(explained.contributions.sum(axis=1) + explained.base_value, margin, atol=1e-9)
    assert next(iter(explained.global_importance())) == "recency_days"  # what the synthetic world churns on

    rows = top_k_rows(explained, frame[ml.FEATURES], frame["customer_id"], "2024-01-01", "7", k=3).to_pandas()
    assert len(rows) == 3 * len(frame) and set(rows["rank"]) == {1, 2, 3}
    first = rows[rows["customer_id"] == 1].sort_values("rank")
    magnitudes = first["contribution"].abs().to_numpy()
    assert (np.diff(magnitudes) <= 0).all() and magnitudes[0] == np.abs(explained.contributions[0]).max()
    assert first["feature_value"].iloc[0] == str(frame.loc[0, first["feature"].iloc[0]])
    assert set(rows["model_version"]) == {"7"}


def test_additivity_check_refuses_a_wrong_explainer_configuration():
    """HistGradientBoosting with native categorical features: shap returns silently wrong values
    (shap issue 3436). The check must catch it."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder

    frame = synthetic_features("2024-01-01")
    columns = ColumnTransformer([("segment", OrdinalEncoder(), ml.CATEGORICAL_FEATURES)], remainder="passthrough")
    native = Pipeline([("columns", columns), ("model", HistGradientBoostingClassifier(
        max_iter=30, categorical_features=[0], random_state=0))]).fit(frame[ml.FEATURES], true_churn(frame))
    with pytest.raises(ExplanationError, match="additivity check failed.*no explanation was written"):
        explain(native, frame[ml.FEATURES])
