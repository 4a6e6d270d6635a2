"""Realised performance on matured labels and the champion decisions, on a real MLflow registry
and real tables, with label sets constructed so each rule's outcome is known in advance."""

from __future__ import annotations

import numpy as np
import pytest
from deltalake import DeltaTable

from include.lakehouse.ml import settings as ml
from tests.ml.conftest import fit_pipeline, register, write_world

TRAIN = "2024-01-01"          # the models' training as-of date: data cutoff 2024-01-31
BEFORE_CUTOFF = "2024-01-20"  # matured, but inside the models' training window: never judged on
MATURED = ["2024-02-05", "2024-02-06"]
IMMATURE = "2024-03-10"       # its label window ends 2024-04-09, after the run day
RUN_DAY = "2024-03-20"


@pytest.fixture()
def world(mlflow_store):
    return write_world([TRAIN, BEFORE_CUTOFF, *MATURED, IMMATURE])


def models(world, *kinds):
    """Register one model per kind ("good": learns the world's rule, "bad": learns its opposite)."""
    frame, churned = world[TRAIN]
    return [register(fit_pipeline(frame, churned, invert=kind == "bad"), TRAIN, frame) for kind in kinds]


def client():
    from include.lakehouse.ml.training import mlflow_client

    return mlflow_client()


def aliases():
    from include.lakehouse.ml.evaluation import challenger
    from include.lakehouse.ml.training import champion

    c = client()
    contender = challenger(c)
    return str(champion(c).version), (str(contender.version) if contender else None)


def decisions(root):
    path = root / ml.DECISIONS_TABLE
    return DeltaTable(str(path)).to_pandas().sort_values("decided_at", ignore_index=True) if path.exists() else None


def setup_registry(champion, challenger=None, previous=None):
    from include.lakehouse.ml.evaluation import move_champion

    c = client()
    if previous is not None:
        move_champion(c, previous, action="promote", reason="first model")
    move_champion(c, champion, action="promote", reason="test setup", from_version=previous)
    if challenger is not None:
        c.set_registered_model_alias(ml.MODEL_NAME, "challenger", challenger)


def test_labels_are_strictly_after_the_as_of_date_and_only_matured_dates_after_the_cutoff_are_judged(world):
    from include.lakehouse.ml import evaluation
    from include.lakehouse.ml.training import labels

    for as_of, (frame, churned) in world.items():  # orders on the as-of day and 31 days later never count
        np.testing.assert_array_equal(labels(as_of, frame["customer_id"]).to_numpy(), churned)
    assert evaluation.matured_as_of_dates(RUN_DAY) == [TRAIN, BEFORE_CUTOFF, *MATURED]
    champion, = models(world, "good")
    setup_registry(champion)
    result = evaluation.evaluate(RUN_DAY)
    judged = DeltaTable(ml_table(ml.EVALUATION_TABLE)).to_pandas()
    assert sorted(judged["as_of_date"].astype(str)) == MATURED  # not TRAIN / BEFORE_CUTOFF (seen), not IMMATURE
    assert set(judged["model_version"]) == {champion} and (judged["labels"] == len(world[TRAIN][0])).all()
    assert (judged["auc"] > 0.75).all() and judged["precision_at_top"].between(0, 1).all()
    assert judged["brier"].notna().all() and judged["calibration_error"].notna().all()
    assert result["decision"]["action"] == "hold" and len(result["rows"]) == 2
    evaluation.evaluate(RUN_DAY)  # a rerun replaces its rows
    assert len(DeltaTable(ml_table(ml.EVALUATION_TABLE)).to_pandas()) == 2


def test_a_challenger_with_no_matured_date_after_its_cutoff_is_neither_judged_nor_loaded(world, monkeypatch):
    """A fresh challenger (trained on the newest window) has no labels yet: evaluate judges the
    champion alone and does not load the challenger's model at all."""
    import mlflow

    from include.lakehouse.ml import evaluation

    frame, churned = world[TRAIN]
    champion = register(fit_pipeline(frame, churned), TRAIN, frame)
    fresh = register(fit_pipeline(frame, churned), MATURED[-1], frame)  # cutoff 2024-03-07: after every matured date
    setup_registry(champion, fresh)
    loads, load_model = [], mlflow.pyfunc.load_model
    monkeypatch.setattr(mlflow.pyfunc, "load_model", lambda uri, *a, **k: loads.append(uri) or load_model(uri, *a, **k))
    result = evaluation.evaluate(RUN_DAY)
    assert {r["model_version"] for r in result["rows"]} == {champion} and len(result["rows"]) == 2
    assert result["decision"]["action"] == "hold" and f"challenger v{fresh}: 0 matured labels" in result["decision"]["reason"]
    assert loads == [f"models:/{ml.MODEL_NAME}/{champion}"]


def ml_table(name):
    from include.lakehouse.config import lakehouse_root

    return f"{lakehouse_root()}/{name}"


@pytest.mark.parametrize("case", ["better challenger", "too few labels", "equal challenger",
                                  "equal challenger, negative margin"])
def test_the_challenger_is_promoted_exactly_when_it_beats_the_champion_by_the_margin(world, monkeypatch, case):
    from include.lakehouse.ml import evaluation

    kinds = {"better challenger": ("bad", "good"), "too few labels": ("bad", "good"),
             "equal challenger": ("good", "good"), "equal challenger, negative margin": ("good", "good")}[case]
    if case == "too few labels":  # 2 matured dates x 300 customers = 600 paired labels
        monkeypatch.setenv("LAKEHOUSE_MIN_LABELS", "601")
    if case == "equal challenger, negative margin":
        monkeypatch.setenv("LAKEHOUSE_PROMOTION_MARGIN", "-0.001")  # identical scores: difference exactly 0
    champion, challenger = models(world, *kinds)
    setup_registry(champion, challenger)
    decision = evaluation.evaluate(RUN_DAY)["decision"]
    promoted = case in ("better challenger", "equal challenger, negative margin")
    assert decision["action"] == ("promote" if promoted else "hold"), decision["reason"]
    assert aliases() == ((challenger, None) if promoted else (champion, challenger))
    moves = decisions(ml_path())
    if promoted:
        assert list(moves["action"]) == ["promote", "promote"]
        row = moves.iloc[-1]
        assert (row["from_version"], row["to_version"]) == (champion, challenger) and "beats" in row["reason"]
        tags = client().get_model_version(ml.MODEL_NAME, challenger).tags
        assert tags["champion.action"] == "promote" and tags["previous_champion"] == champion
        assert tags["champion.reason"] == row["reason"]
    else:
        assert list(moves["action"]) == ["promote"]
        assert ("601" in decision["reason"]) == (case == "too few labels")


def ml_path():
    from pathlib import Path

    from include.lakehouse.config import lakehouse_root

    return Path(lakehouse_root())


@pytest.mark.parametrize("case", ["below floor", "above floor", "below floor, no previous champion"])
def test_the_champion_is_rolled_back_exactly_when_its_realised_auc_falls_below_the_floor(world, case):
    from include.lakehouse.ml import evaluation

    if case == "below floor, no previous champion":
        bad, = models(world, "bad")
        setup_registry(bad)
        decision = evaluation.evaluate(RUN_DAY)["decision"]
        assert decision["action"] == "rollback_blocked" and aliases() == (bad, None)
        assert decisions(ml_path()).iloc[-1]["action"] == "rollback_blocked"
        return
    previous, current = models(world, "good", "bad" if case == "below floor" else "good")
    setup_registry(current, previous=previous)
    decision = evaluation.evaluate(RUN_DAY)["decision"]
    if case == "above floor":
        assert decision["action"] == "hold" and aliases() == (current, None)
        assert list(decisions(ml_path())["action"]) == ["promote", "promote"]
        return
    assert decision["action"] == "rollback" and aliases() == (previous, None)
    row = decisions(ml_path()).iloc[-1]
    assert (row["action"], row["from_version"], row["to_version"]) == ("rollback", current, previous)
    assert "below the floor" in row["reason"]
    tags = client().get_model_version(ml.MODEL_NAME, current).tags
    assert tags["rolled_back"] == row["reason"]
    assert client().get_model_version(ml.MODEL_NAME, previous).tags["champion.action"] == "rollback"


@pytest.mark.parametrize("severe_days, expected", [(["2024-03-01", "2024-03-02", "2024-03-03"], "rollback"),
                                                   (["2024-03-02", "2024-03-03"], "hold"),
                                                   (["2024-03-01", "2024-03-02", "2024-03-04"], "hold")])
def test_severe_drift_on_n_consecutive_days_rolls_the_champion_back(world, severe_days, expected):
    from include.lakehouse.ml import drift, evaluation

    previous, current = models(world, "good", "good")
    setup_registry(current, previous=previous)
    for day in ["2024-02-28", "2024-03-01", "2024-03-02", "2024-03-03", "2024-03-04"]:
        severe = day in severe_days
        drift._log({"as_of_date": day, "model_version": current, "threshold": 0.5, "verdict": "drift" if severe
                    else "pass", "drift_share": 0.9 if severe else 0.1, "detail": "constructed"})
        if day == severe_days[-1]:
            break
    decision = evaluation.evaluate(RUN_DAY)["decision"]
    assert decision["action"] == expected, decision["reason"]
    if expected == "rollback":
        assert aliases() == (previous, None)
        assert "severe drift" in decision["reason"] and decision["severe_drift_days"] == severe_days
        assert "severe drift" in decisions(ml_path()).iloc[-1]["reason"]
    else:
        assert aliases() == (current, None)


def test_rank_auc_is_sklearns_auc():
    from sklearn.metrics import roc_auc_score

    from include.lakehouse.ml.evaluation import rank_auc

    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 500)
    p = np.round(rng.random(500) + y * 0.3, 2)  # with ties
    assert rank_auc(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)
