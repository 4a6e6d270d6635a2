"""Per-prediction explanations (SHAP) of the churn pipeline, checked before anyone reads them.

TreeExplainer explains the pipeline's final estimator on the transformed matrix
(`pipe[-1]` on `pipe[:-1].transform(X)`), in the model's margin (log-odds). Contributions of
the columns one original feature expands to (one-hot segment) are summed, so explanations
name the features the features table has. Rows that repeat byte for byte are explained once
(TreeSHAP's values are per row, so each copy gets exactly the same numbers). Every batch must
pass the additivity check (base value + contributions = the model's margin) or
ExplanationError is raised and nothing is written: shap returns silently wrong values for some configurations (HistGradientBoosting
with native `categorical_features`, shap issue 3436), and a wrong explanation must never
reach a reader.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa

from include.lakehouse.errors import LakehouseError
from include.lakehouse.ml import settings as ml


class ExplanationError(LakehouseError):
    """The explanations do not add up to the model's output: a wrong explainer, never written."""


@dataclass
class Explanations:
    features: list[str]           # original feature names, the columns of `contributions`
    contributions: np.ndarray     # (rows, features) SHAP values in log-odds, one-hot columns summed
    base_value: float             # the explainer's expected margin
    margin: np.ndarray            # the model's own margin (decision_function) per row
    max_additivity_error: float

    def global_importance(self) -> dict[str, float]:
        """Mean |SHAP| per feature, largest first."""
        means = np.abs(self.contributions).mean(axis=0)
        return {f: float(v) for f, v in sorted(zip(self.features, means), key=lambda fv: -fv[1])}


def _original_feature(transformed: str, originals: list[str]) -> str:
    """`remainder__recency_days` -> recency_days, `segment__segment_gold` -> segment."""
    name = transformed.split("__", 1)[-1]
    if name in originals:
        return name
    matches = [f for f in originals if name.startswith(f + "_")]
    if not matches:
        raise ExplanationError(f"cannot map transformed column '{transformed}' to one of the features {originals}")
    return max(matches, key=len)


def _distinct_rows(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct rows, index of each row's distinct row): TreeSHAP explains every row on its own,
    so byte-identical rows get identical values and are explained once. Customers often share a
    transformed feature row (no orders in 90 days, same segment and tenure): in the demo 11,353
    customers have 6,850 distinct rows, and SHAP is most of the scoring task's time."""
    rows = np.ascontiguousarray(matrix, dtype="float64")
    if rows.ndim != 2 or not len(rows):
        return rows, np.arange(len(rows))
    keys = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()  # a row's bytes
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    return rows[first], inverse.ravel()


def explain(pipeline, x: pd.DataFrame, tolerance: float | None = None) -> Explanations:
    """SHAP contributions of every row of `x` for a fitted sklearn pipeline (transform steps + tree model)."""
    import shap

    tolerance = ml.ADDITIVITY_TOLERANCE if tolerance is None else tolerance
    transform, estimator = pipeline[:-1], pipeline[-1]
    matrix = transform.transform(x)
    matrix = matrix.toarray() if hasattr(matrix, "toarray") else np.asarray(matrix, dtype="float64")
    explainer = shap.TreeExplainer(estimator)
    distinct, inverse = _distinct_rows(matrix)
    # shap's own check is off: ours raises our error with the numbers, and also runs where shap's would not
    values = np.asarray(explainer.shap_values(distinct, check_additivity=False), dtype="float64")[inverse]
    if values.ndim == 3:  # (rows, columns, classes) from some explainers: the positive class
        values = values[:, :, -1]
    base = float(np.ravel(explainer.expected_value)[-1])
    margin = np.asarray(estimator.decision_function(matrix), dtype="float64")
    error = float(np.max(np.abs(values.sum(axis=1) + base - margin))) if len(margin) else 0.0
    if not error <= tolerance:
        raise ExplanationError(
            f"SHAP additivity check failed for {type(estimator).__name__}: base value + contributions differ from "
            f"the model margin by up to {error:.3g} (tolerance {tolerance:g}) on {len(margin)} rows; the explainer "
            "does not describe this model (native categorical features? explain pipe[-1] on the transformed "
            "matrix); no explanation was written")
    originals = list(x.columns)
    names = [_original_feature(n, originals) for n in transform.get_feature_names_out()]
    features = [f for f in originals if f in names]
    summed = np.zeros((values.shape[0], len(features)))
    for j, name in enumerate(names):
        summed[:, features.index(name)] += values[:, j]
    return Explanations(features, summed, base, margin, error)


def top_k_rows(explanations: Explanations, x: pd.DataFrame, customer_ids, as_of: str, model_version: str,
               k: int | None = None) -> pa.Table:
    """Long format: k rows per customer (rank 1 = largest |contribution|) for predictions/churn_explanations."""
    k = min(k or ml.explain_top_k(), len(explanations.features))
    order = np.argsort(-np.abs(explanations.contributions), axis=1, kind="stable")[:, :k]
    n = len(order)
    rows = np.repeat(np.arange(n), k)
    columns = order.ravel()
    values = x[explanations.features].to_numpy(dtype=object)
    return pa.table({
        "customer_id": pa.array(np.asarray(customer_ids)[rows], pa.int64()),
        "as_of_date": pa.array([date.fromisoformat(as_of)] * (n * k), pa.date32()),
        "model_name": pa.array([ml.MODEL_NAME] * (n * k)),
        "model_version": pa.array([str(model_version)] * (n * k)),
        "rank": pa.array(np.tile(np.arange(1, k + 1), n), pa.int32()),
        "feature": pa.array([explanations.features[c] for c in columns]),
        "feature_value": pa.array([str(values[r, c]) for r, c in zip(rows, columns)]),
        "contribution": pa.array(explanations.contributions[rows, columns], pa.float64()),
        "base_value": pa.array([explanations.base_value] * (n * k), pa.float64()),
        "margin": pa.array(explanations.margin[rows], pa.float64()),
    })
