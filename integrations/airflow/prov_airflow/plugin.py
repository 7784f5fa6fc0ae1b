"""The Airflow plugin (``airflow.plugins`` entry point): the listener and the Provenance view.

The ``fastapi_apps`` entry is built on its first request, so task runners, which
load plugins for their listeners, never import FastAPI or open the lineage app.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

from prov_airflow.links import ProvenanceLink
from prov_airflow.listener import ProvgateListener
from prov_airflow.web import URL_PREFIX, external_views

__all__ = ["ProvgatePlugin"]


class _LazyApp:
    """An ASGI app that builds :func:`~prov_airflow.web.create_provenance_app` on first use."""

    def __init__(self) -> None:
        self._app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            from prov_airflow.web import create_provenance_app

            self._app = create_provenance_app()
        await self._app(scope, receive, send)


class ProvgatePlugin(AirflowPlugin):
    """provgate in Airflow: the listener recording every task instance, the Provenance view."""

    name = "provgate"
    listeners = [ProvgateListener()]  # noqa: RUF012 - AirflowPlugin's class attribute
    external_views = external_views()
    operator_extra_links = [ProvenanceLink()]  # noqa: RUF012
    fastapi_apps = [  # noqa: RUF012
        {"app": _LazyApp(), "url_prefix": URL_PREFIX, "name": "provgate"},
    ]
