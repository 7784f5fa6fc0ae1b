"""Airflow for real, in-process: one AIRFLOW_HOME (SQLite, migrated once) per test session.

The environment is set before anything imports Airflow (importing it writes its home).
Each test gets its own provgate home (``[provgate] home`` through ``AIRFLOW__PROVGATE__HOME``)
and writes its DAG into the session's dags folder, which ``dag.test()`` syncs to the
metadata database as a scheduler would.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import pytest

_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="provgate-airflow-"))
_DAGS = _AIRFLOW_HOME / "dags"
_DAGS.mkdir()
os.environ.update(
    {
        "AIRFLOW_HOME": str(_AIRFLOW_HOME),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(_DAGS),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(_AIRFLOW_HOME / "plugins"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}",
        "PROVGATE_SIGNING_WORKERS": "0",
    }
)
os.environ.pop("PROVGATE_HOME", None)


def pytest_configure(config: pytest.Config) -> None:
    """Warnings stay errors, except Airflow's own dependency deprecations (not ours to fix)."""
    for line in (
        # Airflow's in-process execution API imports svcs -> starlette.testclient -> httpx.
        "ignore:Using `httpx` with `starlette.testclient` is deprecated",
    ):
        config.addinivalue_line("filterwarnings", line)


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """The session's metadata database, migrated once."""
    from airflow.utils.db import initdb

    initdb()
    return _AIRFLOW_HOME


@pytest.fixture
def prov_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh provgate home for this test, configured as ``[provgate] home``."""
    home = tmp_path / "provgate"
    monkeypatch.setenv("AIRFLOW__PROVGATE__HOME", str(home))
    monkeypatch.setenv("AIRFLOW__PROVGATE__LISTENER", "True")
    return home


class DagRunResult:
    """A finished ``dag.test()`` run: its state and each task instance's state and XComs."""

    def __init__(self, dag: Any, dr: Any) -> None:
        from airflow.models.xcom import XComModel
        from airflow.settings import Session

        self.dag = dag
        self.run_id = dr.run_id
        self.state = str(dr.state)
        session = Session()
        self.tis = {(ti.task_id, ti.map_index): ti for ti in dr.get_task_instances(session=session)}
        self.states = {k: str(ti.state) for k, ti in self.tis.items()}
        self.xcoms: dict[tuple[str, int, str], Any] = {}
        for x in session.query(XComModel).filter(
            XComModel.dag_id == dag.dag_id, XComModel.run_id == dr.run_id
        ):
            self.xcoms[(x.task_id, x.map_index, x.key)] = XComModel.deserialize_value(x)
        session.close()

    def attestation(self, task_id: str, map_index: int = -1) -> dict[str, Any]:
        return self.xcoms[(task_id, map_index, "provgate_attestation")]


@pytest.fixture
def run_dag(airflow_db: Path, tmp_path: Path):
    """Write ``source`` as a DAG file, load it as the scheduler would, run ``dag.test()``."""

    def run(dag_id: str, source: str, **fmt: Any) -> DagRunResult:
        from airflow.dag_processing.dagbag import DagBag

        path = _DAGS / f"{dag_id}.py"
        text = textwrap.dedent(source)
        fmt.setdefault("dag_id", dag_id)
        for key, value in fmt.items():
            text = text.replace("{" + key + "}", str(value))
        path.write_text(text)
        bag = DagBag(dag_folder=str(path))
        assert not bag.import_errors, bag.import_errors
        dag = bag.get_dag(dag_id)
        dr = dag.test()
        return DagRunResult(dag, dr)

    return run
