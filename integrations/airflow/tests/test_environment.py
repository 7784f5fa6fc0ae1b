"""The airflow session's environment: Airflow 3.3 beside provgate."""

import importlib.metadata

import prov_airflow


def test_targets_airflow_3_3(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    monkeypatch.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    assert importlib.metadata.version("apache-airflow").startswith("3.3.")
    from airflow.sdk import DAG, task  # the Task SDK the adapter will target

    assert callable(task)
    assert DAG.__module__.startswith("airflow.sdk")
    assert prov_airflow.__version__ == "0.1.0"
