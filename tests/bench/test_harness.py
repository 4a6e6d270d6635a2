"""The benchmark harness: every bench module is a family with run(), ratios mean the same thing
in every family, results and the markdown report (with a chart per family) are written."""

import ast
import json

import pytest

from bench import harness


def test_every_bench_module_is_a_family_with_run():
    families = harness.families()
    assert {"cdc", "kafka", "scd2", "spark_engines", "ml"} <= set(families)
    for family in families:
        tree = ast.parse((harness.ROOT / "bench" / f"{family}.py").read_text())
        assert any(isinstance(n, ast.FunctionDef) and n.name == "run" for n in tree.body), family


@pytest.mark.parametrize("project, peer, higher, ratio", [
    (2.0, 1.0, False, 2.0),     # twice the peer's time: ratio 2 (slower)
    (50.0, 100.0, True, 2.0),   # half the peer's throughput: ratio 2 (slower)
    (200.0, 100.0, True, 0.5),  # twice the peer's throughput: ratio 0.5 (faster)
])
def test_ratio_above_one_always_means_slower_than_the_peer(project, peer, higher, ratio):
    c = harness.compare("m", project, peer, peer_name="p", higher_is_better=higher)
    assert c["ratio"] == ratio


def test_record_and_report(tmp_path):
    harness.record("alpha", {"seconds": 1.5, "comparisons": [
        harness.compare("apply", 1.5, 1.0, peer_name="raw merge", target="<= 1.5")]}, tmp_path)
    harness.record("beta", {"rows": 10, "note": "no peer here"}, tmp_path)
    harness.record("alpha", {"seconds": 1.2, "comparisons": [
        harness.compare("apply", 1.2, 1.0, peer_name="raw merge", target="<= 1.5")]}, tmp_path)
    latest = json.loads((tmp_path / "latest.json").read_text())
    assert set(latest["results"]) == {"alpha", "beta"} and latest["results"]["alpha"]["seconds"] == 1.2
    report = harness.write_report(tmp_path).read_text()
    assert "| apply | 1.2 s | 1.0 s | raw merge | 1.2 | <= 1.5 |" in report
    assert "![alpha](alpha.png)" in report and (tmp_path / "alpha.png").stat().st_size > 1000
    assert "- rows = 10" in report and "no peer here" in report
    assert not (tmp_path / "beta.png").exists()


def test_the_report_takes_each_family_from_its_own_newest_file(tmp_path):
    """Two branches each ran a family; after the merge latest.json holds one branch's view, with
    the other family's older figure. The report (and latest.json) follow each family's own file."""
    harness.record("cdc", {"comparisons": [harness.compare("apply", 1.8, 1.5, peer_name="raw merge")]}, tmp_path)
    stale = (tmp_path / "latest.json").read_text()
    harness.record("cdc", {"comparisons": [harness.compare("apply", 1.1, 1.0, peer_name="raw merge")]}, tmp_path)
    (tmp_path / "latest.json").write_text(stale)  # the other branch's latest.json won the merge
    report = harness.write_report(tmp_path).read_text()
    assert "| apply | 1.1 s | 1.0 s | raw merge | 1.1 |" in report and "1.8 s" not in report
    assert json.loads((tmp_path / "latest.json").read_text())["results"]["cdc"]["comparisons"][0]["project"] == 1.1
