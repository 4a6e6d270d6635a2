"""
### stream_order_events

Structured Streaming over **`shop.order_events`** (`include/spark_jobs/stream_order_events.py`):
events are parsed and validated (bad ones to **`quarantine/stream.order_events`** with the
reason), aggregated per event-time window - 10-minute tumbling and 10-minute windows sliding by
5 - under a 30-minute watermark into **`gold/order_events_windows`** (events, revenue, distinct
customers), and events that arrive after their window closed are kept in
**`silver/order_events_late`** with how late they were (Spark drops them; nothing is silently
lost). Every micro-batch commits once per table (Delta app id = query id, version = batch id),
so a killed run restarts from its checkpoint (under the lakehouse) without double counting.
Per-batch metrics go to **`ops/streaming_metrics`**; latency or late share over the threshold
alerts on-call; the windows table has a GX suite.

**How it starts**: an `AssetWatcher` on the topic (common-messaging `MessageQueueTrigger`, Kafka
provider) starts a run when events arrive (at most one start a minute: a run reads everything
there is); the shop's `kafka/shop` announcement and a half-hourly schedule are the safety net. Here each run is `availableNow` (everything there is,
then stop); on a cluster the same job runs continuously with `--trigger "30 seconds"`.
Runs on spark-submit (JVM Spark): Sail does not run `foreachBatch`.
"""

from __future__ import annotations

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag, task

from lakehouse_airflow.assets import KAFKA_SHOP, table_asset
from lakehouse_airflow.defaults import dag_args
from lakehouse_airflow.operators.data_quality import DataQualityOperator
from lakehouse_airflow.operators.spark_job import SparkJobOperator
from lakehouse_airflow.watchers import topic_asset

ORDER_EVENTS = topic_asset("shop.order_events")
SCHEDULE = AssetOrTimeSchedule(timetable=CronTriggerTimetable("*/30 * * * *", timezone="UTC"),
                               assets=KAFKA_SHOP | ORDER_EVENTS)


@dag(**dag_args("stream_order_events", doc_md=__doc__, schedule=SCHEDULE,
                tags=["streaming", "spark", "kafka", "week:streaming"]))
def stream_order_events():
    windows = SparkJobOperator(
        task_id="aggregate_order_events_into_windows",
        job="stream_order_events",
        job_args=["--trigger", "availableNow"],
        warm_connect=False,
        kafka_conn_id="kafka_default",
        outlets=[table_asset("silver/order_events_late")],
    )
    check = DataQualityOperator(task_id="check_order_events_windows", suite="gold_order_events_windows")

    @task(outlets=[table_asset("gold/order_events_windows")])
    def alert_on_latency_and_late_share(result: dict):
        from airflow.sdk import get_current_context

        from include.lakehouse.streaming.metrics import batches, breaches
        from lakehouse_airflow.alerts import send_alert, task_fields

        lines = breaches([b for b in batches(result.get("query_id")) if b["batch_id"] in set(result.get("batches", []))])
        if lines:
            fields = task_fields(get_current_context())
            send_alert({"kind": "streaming_threshold", **fields, "summary": "; ".join(lines[:5]),
                        "dedup_key": f"{fields['dag_id']}/{fields['run_id']}/streaming"})
        return {"breaches": lines}

    windows >> check >> alert_on_latency_and_late_share(windows.output)


stream_order_events()
