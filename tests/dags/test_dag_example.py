"""Astro's example DAG tests (what `astro dev init` ships and `astro dev pytest` runs): every DAG
file imports, every DAG has tags and retries >= 2. As Astro's file, except that the DAG folder
is parsed once (Astro's parses it six times while collecting) and DagBag gets no
`include_examples=` (Airflow 3.3 rejects it). tests/astro/test_fresh_clone.py runs this file
against a fresh export of the repository, with no build step."""

import logging
import os
from contextlib import contextmanager
from functools import lru_cache

import pytest
from airflow.models import DagBag


@contextmanager
def suppress_logging(namespace):
    logger = logging.getLogger(namespace)
    old_value = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = old_value


@lru_cache(maxsize=1)
def dag_bag():
    with suppress_logging("airflow"):
        return DagBag()


def strip_path_prefix(path):
    return os.path.relpath(path, os.environ.get("AIRFLOW_HOME"))


def get_import_errors():
    """Tuples (file, error) for import errors in the dag bag."""
    # prepend "(None,None)" to ensure that a test object is always created even if it's a no op.
    return [(None, None)] + [(strip_path_prefix(k), v.strip()) for k, v in dag_bag().import_errors.items()]


def get_dags():
    """Tuples (dag_id, DAG, file) of the dag bag."""
    return [(k, v, strip_path_prefix(v.fileloc)) for k, v in dag_bag().dags.items()]


@pytest.mark.parametrize("rel_path,rv", get_import_errors(), ids=[x[0] for x in get_import_errors()])
def test_file_imports(rel_path, rv):
    """Test for import errors on a file"""
    if rel_path and rv:
        raise Exception(f"{rel_path} failed to import with message \n {rv}")


APPROVED_TAGS = {}


@pytest.mark.parametrize("dag_id,dag,fileloc", get_dags(), ids=[x[2] for x in get_dags()])
def test_dag_tags(dag_id, dag, fileloc):
    """test if a DAG is tagged and if those TAGs are in the approved list"""
    assert dag.tags, f"{dag_id} in {fileloc} has no tags"
    if APPROVED_TAGS:
        assert not set(dag.tags) - APPROVED_TAGS


@pytest.mark.parametrize("dag_id,dag, fileloc", get_dags(), ids=[x[2] for x in get_dags()])
def test_dag_retries(dag_id, dag, fileloc):
    """test if a DAG has retries set"""
    assert dag.default_args.get("retries", None) >= 2, \
        f"{dag_id} in {fileloc} must have task retries >= 2 it has {dag.default_args.get('retries', None)}."
