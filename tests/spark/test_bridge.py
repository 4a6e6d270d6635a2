"""The Spark <-> Delta bridge (delta-rs path): types survive a round trip, versions are readable."""

from __future__ import annotations

import json
import datetime as dt
from decimal import Decimal

import pytest

pyspark = pytest.importorskip("pyspark")

from include.lakehouse.spark.bridge import read_delta, write_delta  # noqa: E402
from include.lakehouse.spark.session import get_spark  # noqa: E402


@pytest.fixture(scope="module")
def spark():
    session = get_spark("test_bridge", master="local[1]")
    yield session
    session.stop()


def test_round_trip_keeps_timestamps_dates_decimals_and_partitions(spark, tmp_path):
    from pyspark.sql import types as T

    schema = T.StructType([
        T.StructField("order_id", T.LongType()),
        T.StructField("placed_at", T.TimestampType()),
        T.StructField("order_date", T.DateType()),
        T.StructField("amount", T.DecimalType(12, 2)),
        T.StructField("region_id", T.IntegerType()),
    ])
    utc = dt.timezone.utc
    rows = [
        (1, dt.datetime(2024, 3, 1, 23, 30, tzinfo=utc), dt.date(2024, 3, 1), Decimal("10.25"), 7),
        (2, dt.datetime(2024, 3, 2, 0, 15, tzinfo=utc), dt.date(2024, 3, 2), Decimal("99999.99"), 8),
    ]
    uri = str(tmp_path / "orders")
    result = write_delta(spark.createDataFrame(rows, schema), uri, mode="append", partition_by=["region_id", "order_date"])
    assert result.rows_inserted == 2

    back = read_delta(spark, uri)
    assert back.schema == schema
    got = sorted(back.collect(), key=lambda r: r.order_id)
    assert [r.placed_at.astimezone(utc) for r in got] == [r[1] for r in rows]
    assert [(r.order_date, r.amount, r.region_id) for r in got] == [(r[2], r[3], r[4]) for r in rows]


def test_merge_through_the_bridge_and_read_an_older_version(spark, tmp_path):
    uri = str(tmp_path / "customers")
    first = write_delta(spark.createDataFrame([(1, "a"), (2, "b")], "id long, name string"), uri, mode="merge",
                        keys=["id"])
    result = write_delta(spark.createDataFrame([(2, "B"), (3, "c")], "id long, name string"), uri,
                         mode="merge", keys=["id"])
    assert (result.rows_inserted, result.rows_updated) == (1, 1)
    assert sorted(tuple(r) for r in read_delta(spark, uri).collect()) == [(1, "a"), (2, "B"), (3, "c")]
    assert sorted(tuple(r) for r in read_delta(spark, uri, version=first.version).collect()) == [(1, "a"), (2, "b")]


def test_reads_a_table_reached_through_a_symlinked_folder(spark, tmp_path):
    # a lakehouse root behind a symlink (macOS /tmp, a volume linked into place): delta-rs
    # reports the files at their real path, so the partition base path must be the real one too
    import pyarrow as pa
    from deltalake import write_deltalake

    (tmp_path / "volume").mkdir()
    (tmp_path / "lakehouse_state").symlink_to(tmp_path / "volume", target_is_directory=True)
    uri = str(tmp_path / "lakehouse_state" / "orders")
    write_deltalake(uri, pa.table({"id": [1, 2], "day": ["d1", "d2"]}), partition_by=["day"])
    assert sorted(tuple(r) for r in read_delta(spark, uri).collect()) == [(1, "d1"), (2, "d2")]


def test_empty_table_reads_as_empty_frame_with_schema(spark, tmp_path):
    import pyarrow as pa
    from deltalake import write_deltalake

    uri = str(tmp_path / "empty")
    write_deltalake(uri, pa.table({"id": pa.array([], pa.int64())}))
    frame = read_delta(spark, uri)
    assert frame.count() == 0 and frame.columns == ["id"]


def test_session_target_comes_from_the_spark_default_connection(monkeypatch):
    from include.lakehouse.spark.session import connection_target

    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps({
        "conn_type": "spark", "host": "spark://10.0.0.5", "port": 7077,
        "extra": {"conf": {"spark.executor.memory": "2g"}}}))
    assert connection_target() == {"master": "spark://10.0.0.5:7077", "remote": None,
                                   "conf": {"spark.executor.memory": "2g"}}
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps({"conn_type": "spark", "host": "local[2]"}))
    assert connection_target()["master"] == "local[2]"
    monkeypatch.delenv("AIRFLOW_CONN_SPARK_DEFAULT")
    assert connection_target("no_such_spark_conn") == {}


def test_delta_mode_is_configuration_not_code(monkeypatch, tmp_path):
    from include.lakehouse.spark.session import DELTA_EXTENSION, check_mode, classic_delta_conf, connection_target

    assert classic_delta_conf("auto", []) == ({}, False)  # no jars here: the bridge
    assert classic_delta_conf("bridge", ["/opt/delta-jars/delta-spark_2.13-4.4.1.jar"]) == ({}, False)
    (tmp_path / "delta-spark_2.13-4.4.1.jar").write_bytes(b"")
    (tmp_path / "delta-storage-4.4.1.jar").write_bytes(b"")
    monkeypatch.setenv("LAKEHOUSE_DELTA_JARS", str(tmp_path))  # what the Dockerfile sets
    conf, from_maven = classic_delta_conf("auto")
    assert conf["spark.sql.extensions"] == DELTA_EXTENSION and not from_maven
    assert conf["spark.jars"].split(",") == sorted(str(p) for p in tmp_path.glob("*.jar"))
    conf, from_maven = classic_delta_conf("native", [])  # asked for, no jars baked in: Maven
    assert from_maven and "spark.jars" not in conf
    with pytest.raises(ValueError, match="LAKEHOUSE_SPARK_DELTA"):
        check_mode("delta-please")
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps({"conn_type": "spark", "host": "local[2]",
                                                                 "extra": {"delta": "native"}}))
    assert connection_target()["delta"] == "native"
