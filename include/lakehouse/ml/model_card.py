"""The model card: one self-contained HTML page per registered version that a person can read
without MLflow: holdout ROC and precision-recall curves, calibration, the confusion matrix at
the serving threshold, global SHAP importance, the training data window and table versions,
and the drift reference summary. Plots are matplotlib PNGs embedded as data URIs (the file
opens offline in any browser); the page goes to .local/reports/models/ and to the version's
MLflow run (artifact `model_card/`). It only reads what training computed; it decides nothing.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from include.lakehouse.ml import settings as ml


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _plots(y: np.ndarray, p: np.ndarray, importance: dict[str, float]) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import auc, confusion_matrix, precision_recall_curve, roc_curve

    plots = {}
    fpr, tpr, _ = roc_curve(y, p)
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot(fpr, tpr, label=f"AUC {auc(fpr, tpr):.3f}")
    ax.plot([0, 1], [0, 1], "--", color="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (holdout)")
    ax.legend(loc="lower right")
    plots["ROC curve"] = _png(fig)
    precision, recall, _ = precision_recall_curve(y, p)
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot(recall, precision)
    ax.axhline(float(np.mean(y)), linestyle="--", color="grey", label="churn rate")
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall (holdout)")
    ax.legend(loc="upper right")
    plots["Precision-recall curve"] = _png(fig)
    observed, predicted = calibration_curve(y, p, n_bins=10, strategy="quantile")
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot(predicted, observed, "o-")
    ax.plot([0, 1], [0, 1], "--", color="grey")
    ax.set(xlabel="mean predicted churn probability", ylabel="observed churn rate", title="Calibration (holdout)")
    plots["Calibration"] = _png(fig)
    matrix = confusion_matrix(y, p >= ml.SERVING_THRESHOLD, labels=[0, 1])
    fig, ax = plt.subplots(figsize=(4, 3.5))
    ax.imshow(matrix, cmap="Blues")
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, str(value), ha="center", va="center", color="white" if value > matrix.max() / 2 else "black")
    ax.set(xticks=[0, 1], yticks=[0, 1], xticklabels=["stays", "churns"], yticklabels=["stays", "churns"],
           xlabel="predicted", ylabel="actual", title=f"Confusion matrix at {ml.SERVING_THRESHOLD}")
    plots[f"Confusion matrix (threshold {ml.SERVING_THRESHOLD})"] = _png(fig)
    names = list(importance)[::-1]
    fig, ax = plt.subplots(figsize=(5, 0.3 * len(names) + 1))
    ax.barh(names, [importance[n] for n in names])
    ax.set(xlabel="mean |SHAP| (log-odds)", title="Global feature importance (holdout)")
    plots["Global SHAP importance"] = _png(fig)
    return plots


def render(facts: dict[str, Any], y: np.ndarray, p: np.ndarray, importance: dict[str, float],
           reference: pd.DataFrame) -> str:
    """The card's HTML. `facts`: name/version/run and training window, table versions, metrics."""
    plots = _plots(y, p, importance)
    esc = html.escape
    fact_rows = "".join(f"<tr><th>{esc(str(k))}</th><td>{esc(str(v))}</td></tr>" for k, v in facts.items())
    figures = "".join(f'<figure><img alt="{esc(title)}" src="{src}"><figcaption>{esc(title)}</figcaption></figure>'
                      for title, src in plots.items())
    importance_rows = "".join(f"<tr><td>{esc(f)}</td><td>{v:.4f}</td></tr>" for f, v in importance.items())
    summary = reference.describe(include="all").T
    summary = summary[[c for c in ("count", "mean", "std", "min", "50%", "max", "unique", "top") if c in summary]]
    title = f"{facts.get('model')} v{facts.get('version')}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Model card: {esc(title)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}}table{{border-collapse:collapse;margin:1em 0}}
th,td{{border:1px solid #ccc;padding:3px 8px;text-align:left}}figure{{display:inline-block;margin:0.5em}}
figcaption{{text-align:center;font-size:90%}}</style></head><body>
<h1>Model card: {esc(title)}</h1>
<p>Churn propensity: probability that a customer places no order in the {ml.LABEL_WINDOW_DAYS} days after the
as-of date. Served as <code>churn_probability</code>; <code>churn_predicted</code> at threshold
{ml.SERVING_THRESHOLD}. Curves and matrix on the training holdout (rows the model did not learn from).</p>
<h2>Training data and versions</h2><table>{fact_rows}</table>
<h2>Performance (holdout)</h2>{figures}
<h2>Global importance (mean |SHAP|)</h2><table><tr><th>feature</th><th>mean |SHAP|</th></tr>{importance_rows}</table>
<h2>Drift reference summary</h2><p>The training features drift_check compares new partitions against.</p>
{summary.to_html(float_format=lambda v: f"{v:.3f}", na_rep="")}
</body></html>"""


def write_card(client, run_id: str, version: str, facts: dict[str, Any], y, p, importance, reference) -> Path:
    """Write the card to .local/reports/models/ and log it to the run; returns the file."""
    page = render(facts, np.asarray(y), np.asarray(p), importance, reference)
    path = ml.reports_dir("models") / f"{ml.MODEL_NAME}_v{version}.html"
    path.write_text(page)
    client.log_artifact(run_id, str(path), artifact_path="model_card")
    return path
