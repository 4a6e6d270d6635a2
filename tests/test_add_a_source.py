"""Declaring a new Debezium topic in sources.yaml is the only edit needed: in a temp copy of the
project, a topic and its CDC table added to the configuration are announced by the DAGs,
ingested from a real broker into bronze, applied to silver, announced, and maintained."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from confluent_kafka import Producer

ROOT = Path(__file__).resolve().parents[1]
TOPIC = "shop.public.vouchers"

ADDED = f"""
  {TOPIC}:
    partitions: 2
"""
ADDED_CDC = f"""
  vouchers:
    topic: {TOPIC}
    keys: [voucher_id]
    columns: {{voucher_id: int64, code: string}}
    timestamps: [updated_at]
"""

CHECK = r"""
import json, sys
from airflow.dag_processing.dagbag import DagBag
from include.lakehouse.cdc.flow import apply_bronze_changes
from include.lakehouse.ingest.kafka import ingest_topic
from include.lakehouse.maintenance.policy import apply_policy
from include.lakehouse.tables.registry import registered_tables
from pathlib import Path

topic, config = sys.argv[1], json.loads(sys.argv[2])
bag = DagBag(str(Path("dags")))
assert not bag.import_errors, bag.import_errors
def names(assets):
    return sorted(getattr(a, "name", str(a)) for a in assets)
kafka = bag.dags["ingest_kafka"].get_task("check_bronze_topics")
cdc = bag.dags["cdc_apply"]
out = {
    "ingest_kafka_announces": names(kafka.outlets),
    "cdc_apply_schedule": sorted(a.name for a in cdc.timetable.asset_condition.iter_assets().values())
        if hasattr(cdc.timetable.asset_condition, "iter_assets") else str(cdc.timetable.asset_condition),
    "cdc_apply_announces": names(cdc.get_task("announce_silver").outlets),
}
ingested = ingest_topic(topic, config)
applied = apply_bronze_changes("vouchers")
out["bronze_rows"], out["silver_inserted"] = ingested["rows_inserted"], applied["rows_inserted"]
out["maintained"] = {t: apply_policy(t)["status"] for t in registered_tables() if "voucher" in t}
print("RESULT " + json.dumps(out, default=str))
"""


def project_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "project"
    for folder in ("dags", "include", "plugins", "scripts"):
        shutil.copytree(ROOT / folder, copy / folder, ignore=shutil.ignore_patterns("__pycache__", "target", "logs"))
    shutil.copytree(ROOT / "include" / "dbt" / "target", copy / "include" / "dbt" / "target")
    sources = copy / "include" / "lakehouse" / "sources.yaml"
    text = sources.read_text()
    text = text.replace("topics:\n", "topics:" + ADDED, 1).replace("cdc:\n", "cdc:" + ADDED_CDC, 1)
    sources.write_text(text)
    return copy


def test_a_topic_declared_in_sources_yaml_flows_through_ingest_cdc_and_maintenance(tmp_path, kafka_broker,
                                                                                    airflow_env):
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient(kafka_broker)
    for future in admin.create_topics([NewTopic(TOPIC, num_partitions=2)]).values():
        future.result(timeout=30)
    producer = Producer(kafka_broker)
    for i in range(20):
        envelope = {"op": "c", "before": None, "after": {"voucher_id": i, "code": f"V{i}", "updated_at": 1_700_000_000_000_000 + i},
                    "source": {"lsn": 100 + i, "ts_ms": 1_700_000_000_000 + i}}
        producer.produce(TOPIC, key=json.dumps({"voucher_id": i}), value=json.dumps(envelope))
    producer.flush(30)

    copy = project_copy(tmp_path)
    env = {**os.environ, **airflow_env, "PYTHONPATH": f"{copy}:{copy / 'plugins'}",
           "LAKEHOUSE_ROOT": str(tmp_path / "lakehouse"), "AIRFLOW__CORE__DAGS_FOLDER": str(copy / "dags")}
    done = subprocess.run([sys.executable, "-c", CHECK, TOPIC, json.dumps(kafka_broker)], cwd=copy, env=env,
                          capture_output=True, text=True, timeout=600)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    result = json.loads(lines[-1][len("RESULT "):])
    assert f"bronze/{TOPIC}" in result["ingest_kafka_announces"]
    assert f"bronze/{TOPIC}" in str(result["cdc_apply_schedule"])
    assert "silver/vouchers" in result["cdc_apply_announces"]
    assert result["bronze_rows"] == 20 and result["silver_inserted"] == 20
    assert result["maintained"] == {f"bronze/{TOPIC}": "success", "silver/vouchers": "success"}
