"""Realised model performance once labels mature, and the champion alias decisions built on it.

An as-of date S is matured when its label window (S, S + LABEL_WINDOW_DAYS] has passed by the
run day and silver/orders covers it. A model version is evaluated on S only when S is at or
after its data cutoff (its training as-of date + the label window: the newest order it may
have seen), so no label it learned from is scored again: features at S (point in time),
labels strictly after S. Champion and challenger are rescored on the same rows; the results
go to ops/model_evaluation (one row per as-of date and version, a rerun replaces it).

Decisions (one per run, promotion first):
- promote the challenger when it has at least `min_labels()` matured labels paired with the
  champion's and the lower bound of the bootstrap interval of AUC(challenger) - AUC(champion)
  exceeds `promotion_margin()`;
- otherwise roll the champion back to the previous champion when its realised AUC on at
  least `min_labels()` labels is below `auc_floor()`, or drift_check found severe drift
  (share >= `severe_drift_share()`) for it on `severe_drift_days()` consecutive as-of days.
Training never promotes: the first model of the registry becomes champion
(`first_champion`), every later one challenger (`challenger`). Every alias move is recorded
with its reason on the model versions (MLflow tags) and in ops/model_decisions; this module
never alerts (the evaluate_models DAG alerts champion moves).
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from include.lakehouse.ml import settings as ml
from include.lakehouse.tables.delta import append, merge_upsert, try_open

DECISION_SCHEMA = pa.schema([
    ("decided_at", pa.timestamp("us", tz="UTC")), ("model_name", pa.string()), ("action", pa.string()),
    ("from_version", pa.string()), ("to_version", pa.string()), ("reason", pa.string()), ("evidence", pa.string())])


# --------------------------------------------------------------------------- alias moves
def challenger(client):
    """The challenger ModelVersion, or None (also when it is the champion itself)."""
    from mlflow.exceptions import MlflowException

    from include.lakehouse.ml.training import champion

    try:
        version = client.get_model_version_by_alias(ml.MODEL_NAME, "challenger")
    except MlflowException:
        return None
    current = champion(client)
    return None if current is not None and str(current.version) == str(version.version) else version


def move_champion(client, to_version: str, *, action: str, reason: str, from_version: str | None = None,
                  evidence: dict[str, Any] | None = None) -> dict[str, Any]:
    """Point the champion alias at `to_version` and record why: tags on both versions and the
    registered model, one row in ops/model_decisions. A promotion remembers the champion it
    replaced (`previous_champion`), which is where a rollback goes."""
    now = datetime.now(timezone.utc)
    to_version, from_version = str(to_version), (str(from_version) if from_version is not None else None)
    client.set_registered_model_alias(ml.MODEL_NAME, "champion", to_version)
    tags = {"champion.action": action, "champion.reason": reason[:4000], "champion.since": now.isoformat()}
    if action.startswith("promote") and from_version is not None:
        tags["previous_champion"] = from_version
    for key, value in tags.items():
        client.set_model_version_tag(ml.MODEL_NAME, to_version, key, value)
    if from_version is not None:
        client.set_model_version_tag(ml.MODEL_NAME, from_version, "champion.replaced_by",
                                     f"v{to_version} ({action}) at {now.isoformat()}")
        if action == "rollback":
            client.set_model_version_tag(ml.MODEL_NAME, from_version, "rolled_back", reason[:4000])
    client.set_registered_model_tag(ml.MODEL_NAME, "last_decision",
                                    f"{action} v{from_version} -> v{to_version}: {reason}"[:4000])
    try:  # a promoted challenger is the champion now; a rolled-back champion must not be shadowed as challenger
        current_challenger = client.get_model_version_by_alias(ml.MODEL_NAME, "challenger")
        if str(current_challenger.version) in {to_version, from_version}:
            client.delete_registered_model_alias(ml.MODEL_NAME, "challenger")
    except Exception:  # no challenger alias
        pass
    row = {"decided_at": now, "model_name": ml.MODEL_NAME, "action": action, "from_version": from_version,
           "to_version": to_version, "reason": reason, "evidence": json.dumps(evidence or {}, default=str)}
    append(ml.DECISIONS_TABLE, pa.Table.from_pylist([row], schema=DECISION_SCHEMA))
    return row


def set_challenger(client, version: str, *, reason: str, evidence: dict[str, Any] | None = None) -> dict[str, Any]:
    """Point the challenger alias at a newly trained `version` (replacing an older challenger,
    which is tagged as superseded) and record it in ops/model_decisions. Not alerted: a new
    challenger serves nothing; only evaluate_models may make it champion."""
    from mlflow.exceptions import MlflowException

    now = datetime.now(timezone.utc)
    version = str(version)
    try:
        previous = str(client.get_model_version_by_alias(ml.MODEL_NAME, "challenger").version)
    except MlflowException:
        previous = None
    client.set_registered_model_alias(ml.MODEL_NAME, "challenger", version)
    client.set_model_version_tag(ml.MODEL_NAME, version, "challenger.since", now.isoformat())
    client.set_model_version_tag(ml.MODEL_NAME, version, "challenger.reason", reason[:4000])
    if previous is not None and previous != version:
        client.set_model_version_tag(ml.MODEL_NAME, previous, "challenger.superseded_by",
                                     f"v{version} at {now.isoformat()}")
    row = {"decided_at": now, "model_name": ml.MODEL_NAME, "action": "challenger", "from_version": previous,
           "to_version": version, "reason": reason, "evidence": json.dumps(evidence or {}, default=str)}
    append(ml.DECISIONS_TABLE, pa.Table.from_pylist([row], schema=DECISION_SCHEMA))
    return row


# --------------------------------------------------------------------------- metrics
def precision_at_top(y: np.ndarray, p: np.ndarray, share: float | None = None) -> float:
    """Share of churners among the top `share` of customers by score (at least one customer)."""
    share = ml.precision_top_share() if share is None else share
    k = max(1, int(round(len(p) * share)))
    top = np.argsort(-p, kind="stable")[:k]
    return float(np.mean(y[top]))


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Weighted mean |observed churn rate - mean score| over equal-width score bins."""
    index = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            total += mask.mean() * abs(y[mask].mean() - p[mask].mean())
    return float(total)


def realised_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    from sklearn.metrics import brier_score_loss, roc_auc_score

    both = len(np.unique(y)) == 2
    return {"labels": int(len(y)), "churned": int(np.sum(y)),
            "auc": float(roc_auc_score(y, p)) if both else None,
            "precision_at_top": precision_at_top(y, p) if len(y) else None,
            "brier": float(brier_score_loss(y, p)) if len(y) else None,
            "calibration_error": expected_calibration_error(y, p) if len(y) else None,
            "mean_score": float(np.mean(p)) if len(y) else None}


def rank_auc(y: np.ndarray, p: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney statistic (ties count half): sklearn's value, without its
    input validation, which dominates a bootstrap of hundreds of resamples."""
    from scipy.stats import rankdata

    ranks = rankdata(p)
    positives = int(np.sum(y))
    negatives = len(y) - positives
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def bootstrap_auc_difference(y: np.ndarray, champion_scores: np.ndarray, challenger_scores: np.ndarray,
                             samples: int | None = None, confidence: float | None = None,
                             seed: int = 0) -> tuple[float, float, float]:
    """(difference, lower, upper): AUC(challenger) - AUC(champion) on paired resamples of the same rows."""
    samples = samples or ml.BOOTSTRAP_SAMPLES
    confidence = confidence or ml.BOOTSTRAP_CONFIDENCE
    rng = np.random.default_rng(seed)
    n, diffs = len(y), []
    for _ in range(samples):
        idx = rng.integers(0, n, n)
        if y[idx].min() == y[idx].max():
            continue
        diffs.append(rank_auc(y[idx], challenger_scores[idx]) - rank_auc(y[idx], champion_scores[idx]))
    point = rank_auc(y, challenger_scores) - rank_auc(y, champion_scores)
    alpha = (1 - confidence) / 2
    return float(point), float(np.quantile(diffs, alpha)), float(np.quantile(diffs, 1 - alpha))


# --------------------------------------------------------------------------- evaluation
def matured_as_of_dates(run_day: str) -> list[str]:
    """Features partitions whose label window has passed by `run_day` and is covered by silver/orders."""
    from include.lakehouse.ml.training import label_complete

    features = try_open(ml.FEATURES_TABLE)
    if features is None:
        return []
    days = sorted({d for d in features.to_pyarrow_table(columns=["as_of_date"])["as_of_date"].to_pylist()})
    today = date.fromisoformat(run_day)
    oldest = today - timedelta(days=ml.EVALUATION_LOOKBACK_DAYS)
    return [d.isoformat() for d in days
            if oldest <= d and d + timedelta(days=ml.LABEL_WINDOW_DAYS) < today and label_complete(d.isoformat())]


def data_cutoff(client, version) -> date | None:
    """The newest day a version's training data reaches: its as-of date + the label window."""
    trained = client.get_run(version.run_id).data.params.get("as_of_date")
    return date.fromisoformat(trained) + timedelta(days=ml.LABEL_WINDOW_DAYS) if trained else None


@ml.bounded_threads
def evaluate(run_day: str) -> dict[str, Any]:
    """Evaluate champion and challenger on every matured as-of date each may be judged on; write
    ops/model_evaluation; take the promotion / rollback decision. Returns what happened."""
    import mlflow

    from include.lakehouse.ml.training import champion, features_at, labels, mlflow_client, scores
    from include.lakehouse.tables.delta import open_table

    client = mlflow_client()
    current = champion(client)
    if current is None:
        return {"run_day": run_day, "matured_dates": [], "rows": [],
                "decision": {"action": "none", "reason": "no champion yet"}}
    models = {"champion": current}
    contender = challenger(client)
    if contender is not None:
        models["challenger"] = contender
    cutoffs = {role: data_cutoff(client, v) for role, v in models.items()}
    loaded = {}  # a model is loaded when it first has a date to score (a fresh challenger often has none)

    def model(role: str):
        if role not in loaded:
            loaded[role] = mlflow.pyfunc.load_model(f"models:/{ml.MODEL_NAME}/{models[role].version}")
        return loaded[role]

    rows, paired, pooled = [], {"y": [], "champion": [], "challenger": []}, {"y": [], "p": []}
    dates = matured_as_of_dates(run_day)  # none without silver/orders
    orders_version = open_table("silver/orders").version() if dates else None
    evaluated_at = datetime.now(timezone.utc)
    for as_of in dates:
        eligible = [r for r in models if cutoffs[r] is None or date.fromisoformat(as_of) >= cutoffs[r]]
        if not eligible:
            continue
        frame, features_version = features_at(as_of)
        if frame.empty:
            continue
        y = labels(as_of, frame["customer_id"], orders_version).to_numpy()
        by_role = {}
        for role in eligible:
            p = scores(model(role), frame[model(role).metadata.get_input_schema().input_names()])
            by_role[role] = p
            rows.append({"as_of_date": date.fromisoformat(as_of), "model_name": ml.MODEL_NAME,
                         "model_version": str(models[role].version), "role": role, **realised_metrics(y, p),
                         "features_version": int(features_version), "orders_version": int(orders_version),
                         "evaluated_at": evaluated_at})
        if "champion" in by_role:
            pooled["y"].append(y)
            pooled["p"].append(by_role["champion"])
        if len(by_role) == 2:
            paired["y"].append(y)
            paired["champion"].append(by_role["champion"])
            paired["challenger"].append(by_role["challenger"])
    if rows:
        merge_upsert(ml.EVALUATION_TABLE, pa.Table.from_pylist(rows, schema=EVALUATION_SCHEMA))
    arrays = {k: np.concatenate(v) if v else np.array([]) for k, v in paired.items()}
    decision = decide(client, models, arrays, {k: np.concatenate(v) if v else np.array([]) for k, v in pooled.items()})
    return {"run_day": run_day, "matured_dates": dates, "rows": [{**r, "as_of_date": str(r["as_of_date"]),
                                                                   "evaluated_at": str(r["evaluated_at"])} for r in rows],
            "decision": decision}


EVALUATION_SCHEMA = pa.schema([
    ("as_of_date", pa.date32()), ("model_name", pa.string()), ("model_version", pa.string()), ("role", pa.string()),
    ("labels", pa.int64()), ("churned", pa.int64()), ("auc", pa.float64()), ("precision_at_top", pa.float64()),
    ("brier", pa.float64()), ("calibration_error", pa.float64()), ("mean_score", pa.float64()),
    ("features_version", pa.int64()), ("orders_version", pa.int64()), ("evaluated_at", pa.timestamp("us", tz="UTC"))])


# --------------------------------------------------------------------------- decisions
def decide(client, models: dict, paired: dict[str, np.ndarray], pooled: dict[str, np.ndarray]) -> dict[str, Any]:
    """Promotion first, then rollback; returns the decision (action promote | rollback | rollback_blocked | hold)."""
    current = models["champion"]
    held = []
    if "challenger" in models:
        contender = models["challenger"]
        y = paired["y"]
        if len(y) < ml.min_labels():
            held.append(f"challenger v{contender.version}: {len(y)} matured labels paired with the champion "
                        f"(< {ml.min_labels()})")
        elif len(np.unique(y)) < 2:
            held.append(f"challenger v{contender.version}: matured labels have one class only")
        else:
            diff, low, high = bootstrap_auc_difference(y, paired["champion"], paired["challenger"])
            evidence = {"labels": int(len(y)), "auc_difference": diff, "interval": [low, high],
                        "margin": ml.promotion_margin(), "confidence": ml.BOOTSTRAP_CONFIDENCE}
            interval = (f"AUC difference {diff:+.3f}, {ml.BOOTSTRAP_CONFIDENCE:.0%} bootstrap interval "
                        f"[{low:+.3f}, {high:+.3f}] on {len(y)} matured labels")
            if low > ml.promotion_margin():
                reason = (f"challenger v{contender.version} beats champion v{current.version}: {interval}, above "
                          f"the margin {ml.promotion_margin():+.3f}")
                move_champion(client, contender.version, action="promote", reason=reason,
                              from_version=current.version, evidence=evidence)
                return {"action": "promote", "from_version": str(current.version),
                        "to_version": str(contender.version), "reason": reason, **evidence}
            held.append(f"challenger v{contender.version} not promoted: {interval}, lower bound not above the "
                        f"margin {ml.promotion_margin():+.3f}")
    trigger = _rollback_trigger(current, pooled)
    if trigger is not None:
        reason, evidence = trigger
        previous = current.tags.get("previous_champion") if current.tags else None
        if previous is None:
            reason = f"champion v{current.version} should be rolled back ({reason}) but has no previous champion"
            row = {"decided_at": datetime.now(timezone.utc), "model_name": ml.MODEL_NAME, "action": "rollback_blocked",
                   "from_version": str(current.version), "to_version": None, "reason": reason,
                   "evidence": json.dumps(evidence, default=str)}
            append(ml.DECISIONS_TABLE, pa.Table.from_pylist([row], schema=DECISION_SCHEMA))
            return {"action": "rollback_blocked", "from_version": str(current.version), "reason": reason, **evidence}
        reason = f"champion v{current.version} rolled back to v{previous}: {reason}"
        move_champion(client, previous, action="rollback", reason=reason, from_version=current.version,
                      evidence=evidence)
        return {"action": "rollback", "from_version": str(current.version), "to_version": str(previous),
                "reason": reason, **evidence}
    held.append(f"champion v{current.version} holds (realised AUC "
                f"{_auc_text(pooled)} on {len(pooled['y'])} labels, floor {ml.auc_floor():.2f}; no severe drift streak)")
    return {"action": "hold", "reason": "; ".join(held)}


def _auc_text(pooled: dict[str, np.ndarray]) -> str:
    from sklearn.metrics import roc_auc_score

    y = pooled["y"]
    return f"{roc_auc_score(y, pooled['p']):.3f}" if len(np.unique(y)) == 2 else "n/a"


def _rollback_trigger(current, pooled: dict[str, np.ndarray]) -> tuple[str, dict] | None:
    """Why the champion must go (reason, evidence), or None."""
    from sklearn.metrics import roc_auc_score

    y = pooled["y"]
    if len(y) >= ml.min_labels() and len(np.unique(y)) == 2:
        auc = float(roc_auc_score(y, pooled["p"]))
        if auc < ml.auc_floor():
            return (f"realised AUC {auc:.3f} on {len(y)} matured labels is below the floor {ml.auc_floor():.2f}",
                    {"labels": int(len(y)), "realised_auc": auc, "floor": ml.auc_floor()})
    streak = severe_drift_streak(str(current.version))
    if len(streak) >= ml.severe_drift_days():
        return (f"severe drift (share >= {ml.severe_drift_share():.2f}) on {len(streak)} consecutive as-of days "
                f"{streak[0]}..{streak[-1]}", {"severe_drift_days": streak, "share": ml.severe_drift_share()})
    return None


def severe_drift_streak(model_version: str) -> list[str]:
    """The consecutive as-of days, ending at the newest one checked, on which drift_check found
    severe drift for `model_version` (the newest check of a day counts)."""
    log = try_open(ml.DRIFT_LOG)
    if log is None:
        return []
    rows = log.to_pyarrow_table(columns=["checked_at", "as_of_date", "model_version", "drift_share", "verdict"])
    rows = rows.filter(pc.equal(rows["model_version"], model_version)).to_pandas()
    rows = rows[rows["as_of_date"].notna()]
    if rows.empty:
        return []
    newest = rows.sort_values("checked_at").groupby("as_of_date").tail(1).sort_values("as_of_date", ascending=False)
    streak: list[str] = []
    for _, row in newest.iterrows():
        day = date.fromisoformat(row["as_of_date"])
        severe = row["verdict"] == "drift" and pd.notna(row["drift_share"]) and \
            row["drift_share"] >= ml.severe_drift_share()
        if not severe or (streak and date.fromisoformat(streak[-1]) - day != timedelta(days=1)):
            break
        streak.append(row["as_of_date"])
    return sorted(streak)
