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


def test_rows_that_repeat_are_explained_once_with_the_values_of_explaining_every_row():
    """explain() runs SHAP once per distinct row (many customers share a feature row); every
    customer's contributions are exactly what SHAP gives when it explains each row itself."""
    import shap

    from include.lakehouse.ml.explain import _distinct_rows

    frame = synthetic_features("2024-01-01")
    pipeline = fit_pipeline(frame, true_churn(frame))
    repeated = frame.iloc[np.r_[0:300, 0:300:3, 5, 5, 5]].reset_index(drop=True)  # 403 rows, 300 distinct
    repeated.loc[[7, 8], "events_30d"] = np.nan  # missing values: routed by the trees, still one row each
    x = repeated[ml.FEATURES]
    matrix = pipeline[:-1].transform(x)
    distinct, inverse = _distinct_rows(matrix)
    assert len(distinct) == 300 and np.array_equal(distinct[inverse], matrix, equal_nan=True)

    explained = explain(pipeline, x)
    every_row = np.asarray(shap.TreeExplainer(pipeline[-1]).shap_values(matrix, check_additivity=False))
    names = [n.split("__", 1)[-1] for n in pipeline[:-1].get_feature_names_out()]
    expected = np.zeros_like(explained.contributions)
    for j, name in enumerate(names):  # one-hot segment columns summed, as explain() does
        expected[:, explained.features.index("segment" if name.startswith("segment_") else name)] += every_row[:, j]
    assert np.array_equal(explained.contributions, expected)  # bit for bit, not approximately
    rows = top_k_rows(explained, x, repeated["customer_id"], "2024-01-01", "7", k=3).to_pandas()
    assert (rows[rows["customer_id"] == repeated.loc[0, "customer_id"]].groupby("rank")["contribution"].nunique() == 1).all()
