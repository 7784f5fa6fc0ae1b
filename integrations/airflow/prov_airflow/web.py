"""The Provenance view inside the Airflow UI: provgate's lineage app behind Airflow's auth.

The plugin mounts :func:`create_provenance_app` at :data:`URL_PREFIX` of the Airflow API
server (``fastapi_apps``). Plugin FastAPI apps are not behind Airflow's authentication in
3.3, so every route here depends on ``requires_access_dag("GET", TASK_INSTANCE)``: the
auth manager the deployment configured decides (no credentials -> 401, a bad token ->
403). Routes:

- ``/ti/{dag_id}/{run_id}/{task_id}/{map_index}``: the lineage page of that task
  instance's record (found by its ``provgate_attestation`` XCom); the task-instance tab;
- ``/run/{dag_id}/{run_id}``: every record of the DAG run (a search by run id);
- everything of ``prov_core.web.create_app`` (``/``, ``/records/N``, ``/api/...``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["URL_PREFIX", "create_provenance_app", "external_views"]

URL_PREFIX = "/provgate"
"""URL_PREFIX is where the plugin mounts the provenance app on the Airflow API server."""


def external_views() -> list[dict[str, Any]]:
    """The plugin's ``external_views``: a tab per task instance and DAG run, a nav entry."""
    return [
        {
            "name": "Provenance",
            "href": URL_PREFIX + "/ti/{DAG_ID}/{RUN_ID}/{TASK_ID}/{MAP_INDEX}",
            "destination": "task_instance",
            "url_route": "provenance",
        },
        {
            "name": "Provenance",
            "href": URL_PREFIX + "/run/{DAG_ID}/{RUN_ID}",
            "destination": "dag_run",
            "url_route": "provenance-run",  # url routes are unique across every plugin
        },
        {
            "name": "Provenance",
            "href": URL_PREFIX + "/",
            "destination": "nav",
            "category": "browse",
        },
    ]


def _map_index(text: str) -> int:
    """The UI leaves ``{MAP_INDEX}`` literal for unmapped tasks: that, or junk, is -1."""
    try:
        return int(text)
    except ValueError:
        return -1


def create_provenance_app() -> Any:
    """The FastAPI app the plugin mounts (see the module docstring)."""
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.core_api.security import requires_access_dag
    from fastapi import Depends, FastAPI, HTTPException
    from fastapi.responses import RedirectResponse
    from starlette.routing import Mount

    from prov_airflow._node import XCOM_ATTESTATION
    from prov_airflow.config import Settings
    from prov_core.web import create_app

    lineage = create_app(Settings.load().open_home())
    guard = [Depends(requires_access_dag("GET", DagAccessEntity.TASK_INSTANCE))]
    app = FastAPI(title="provgate", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/ti/{dag_id}/{run_id}/{task_id}/{map_index}", dependencies=guard)
    def task_instance(dag_id: str, run_id: str, task_id: str, map_index: str) -> Any:
        from airflow.models.xcom import XComModel
        from airflow.settings import Session

        session = Session()
        try:
            row = (
                session.query(XComModel)
                .filter(
                    XComModel.dag_id == dag_id,
                    XComModel.run_id == run_id,
                    XComModel.task_id == task_id,
                    XComModel.map_index == _map_index(map_index),
                    XComModel.key == XCOM_ATTESTATION,
                )
                .one_or_none()
            )
            value = None if row is None else XComModel.deserialize_value(row)
        finally:
            session.close()
        if not isinstance(value, dict) or not isinstance(value.get("log_index"), int):
            raise HTTPException(
                404, f"task instance {dag_id}/{run_id}/{task_id} has no provgate record"
            )
        return RedirectResponse(f"{URL_PREFIX}/records/{value['log_index']}", status_code=307)

    @app.get("/run/{dag_id}/{run_id}", dependencies=guard)
    def dag_run(dag_id: str, run_id: str) -> Any:  # noqa: ARG001 - the guard reads dag_id
        from urllib.parse import quote

        return RedirectResponse(f"{URL_PREFIX}/search?by=run&q={quote(run_id)}", status_code=307)

    # The lineage app's routes, each behind the guard; its static files, styles and errors.
    app.include_router(lineage.router, dependencies=guard)
    for route in lineage.router.routes:
        if isinstance(route, Mount):
            app.router.routes.append(route)
    app.user_middleware.extend(lineage.user_middleware)
    app.exception_handlers.update(lineage.exception_handlers)
    return app
