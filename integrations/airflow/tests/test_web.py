"""The Provenance view in Airflow's own API app (in-process, the plugin loaded from its entry
point): listed by the plugins endpoint, the task instance's tab lands on its lineage page,
and every provgate route answers 401 without credentials and 403 with a bad token."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

SMALL = """
import pendulum
from airflow.sdk import dag, task

@dag(dag_id="{dag_id}", schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False)
def small():
    @task
    def a():
        return {"n": 1}

    @task
    def b(x):
        return x["n"] + 1

    b(a())

small()
"""


@pytest.fixture
def api(airflow_db: Path, prov_home: Path, monkeypatch: pytest.MonkeyPatch):
    """Airflow's API app with its auth manager (SimpleAuthManager) and our plugin mounted."""
    from airflow.api_fastapi.app import create_app, purge_cached_app
    from fastapi.testclient import TestClient

    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin")
    monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", "test-secret-" + "x" * 64)
    monkeypatch.setenv("AIRFLOW__API__HOST", "127.0.0.1")
    purge_cached_app()
    app = create_app()
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield client
    purge_cached_app()


def _token(client) -> str:
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

    passwords = json.loads(Path(SimpleAuthManager.get_generated_password_file()).read_text())
    r = client.post("/auth/token", json={"username": "admin", "password": passwords["admin"]})
    assert r.status_code in (200, 201), r.text
    return r.json()["access_token"]


def test_provenance_view_behind_airflow_auth(run_dag, api):
    res = run_dag("web_small", SMALL)
    assert res.state == "success"
    record = res.attestation("b")["log_index"]
    ti_path = f"/provgate/ti/web_small/{res.run_id}/b/{{MAP_INDEX}}"
    paths = [ti_path, "/provgate/", f"/provgate/records/{record}", "/provgate/api/recent"]
    for path in paths:  # no credentials
        assert api.get(path, follow_redirects=False).status_code == 401, path
    bad = {"Authorization": "Bearer not-a-token"}
    for path in paths:
        assert api.get(path, headers=bad, follow_redirects=False).status_code == 403, path

    good = {"Authorization": f"Bearer {_token(api)}"}
    r = api.get(ti_path, headers=good, follow_redirects=False)
    assert r.status_code == 307
    assert r.headers["location"] == f"/provgate/records/{record}"
    page = api.get(r.headers["location"], headers=good)
    assert page.status_code == 200
    assert "web_small.b" in page.text
    recent = api.get("/provgate/api/recent", headers=good)
    assert recent.status_code == 200
    assert recent.json()["size"] >= 2

    run = api.get(f"/provgate/run/web_small/{res.run_id}", headers=good)
    assert run.status_code == 200
    assert "web_small.a" in run.text
    assert "web_small.b" in run.text

    plugins = api.get("/api/v2/plugins", headers=good).json()["plugins"]
    (ours,) = [p for p in plugins if p["name"] == "provgate"]
    views = {(v["destination"], v["href"]) for v in ours["external_views"]}
    assert ("task_instance", "/provgate/ti/{DAG_ID}/{RUN_ID}/{TASK_ID}/{MAP_INDEX}") in views
    assert ("dag_run", "/provgate/run/{DAG_ID}/{RUN_ID}") in views
    assert any(d == "nav" for d, _ in views)
