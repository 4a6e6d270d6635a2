"""The project's DAGs obey the integrity rules, and each rule really catches a bad DAG."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.dags.integrity import folder_problems, load_dag_folder

DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def dagbag():
    return load_dag_folder(DAGS)


def test_every_dag_file_imports(dagbag):
    assert dagbag.import_errors == {}
    files = {p.name for p in DAGS.glob("*.py") if not p.name.startswith("_")}
    loaded = {Path(d.fileloc).name for d in dagbag.dags.values()}
    assert files == loaded, f"files without a DAG: {files - loaded}"


def test_project_dags_follow_every_rule():
    assert folder_problems(DAGS) == []


def test_smoke_dags_are_wired_by_assets(dagbag):
    spark = dagbag.dags["spark_smoke"]
    smoke = dagbag.dags["lakehouse_smoke"]
    consumed = {a.name for a in spark.timetable.asset_condition.objects}
    produced = {a.name for t in smoke.tasks for a in t.outlets}
    assert consumed <= produced


GOOD = '''
from airflow.sdk import dag, task
from lakehouse_airflow.defaults import dag_args

@dag(**dag_args("{dag_id}", doc_md="A DAG.", schedule=None))
def d():
    @task
    def build_orders():
        return 1
    build_orders()
d()
'''

BAD = {
    "dict_result_per_key": '''
from airflow.sdk import dag, task
from lakehouse_airflow.defaults import dag_args

@dag(**dag_args("per_key", doc_md="A DAG.", schedule=None))
def d():
    @task
    def build_orders() -> dict:
        return {"rows": 1, "version": 2}
    build_orders()
d()
''',
    "no_tags_no_doc_no_deadline": '''
from datetime import datetime
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator
with DAG("bare", start_date=datetime(2024, 1, 1), schedule=None, default_args={"owner": "me", "retries": 2}):
    EmptyOperator(task_id="publish_orders")
''',
    "low_retries_and_no_owner": '''
from datetime import datetime
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator
from lakehouse_airflow.defaults import deadline_for
with DAG("lazy", start_date=datetime(2024, 1, 1), schedule=None, tags=["x"], doc_md="x",
         deadline=deadline_for("lazy"), default_args={"retries": 0}):
    EmptyOperator(task_id="publish_orders")
''',
    "generic_task_id": GOOD.replace("build_orders", "task_1").format(dag_id="generic"),
    "variable_at_parse": "from airflow.sdk import Variable\nX = Variable.get('bucket')\n" + GOOD.format(dag_id="var"),
    "connection_at_parse": "from airflow.sdk import BaseHook\nC = BaseHook.get_connection('spark_default')\n"
                           + GOOD.format(dag_id="conn"),
    "network_at_parse": "import urllib.request\nurllib.request.urlopen('http://127.0.0.1:9/')\n" + GOOD.format(dag_id="net"),
    "syntax_error": "from airflow.sdk import dag\n\ndef broken(:\n",
}


@pytest.mark.parametrize("name,expected", [
    ("no_tags_no_doc_no_deadline", ["no tags", "no doc_md", "no deadline"]),
    ("dict_result_per_key", ["multiple_outputs pushes every key"]),
    ("low_retries_and_no_owner", ["retries 0 < 2", "no owner"]),
    ("generic_task_id", ["task id must be snake_case"]),
    ("variable_at_parse", ["Variable.get at parse time"]),
    ("connection_at_parse", ["connection lookup at parse time"]),
    ("network_at_parse", ["network access"]),
    ("syntax_error", ["import error"]),
])
def test_a_bad_dag_file_is_caught(tmp_path, name, expected):
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(BAD[name]))
    problems = "\n".join(folder_problems(tmp_path))
    for fragment in expected:
        assert fragment in problems, problems


def test_a_good_dag_file_passes(tmp_path):
    (tmp_path / "good.py").write_text(GOOD.format(dag_id="good"))
    assert folder_problems(tmp_path) == []
