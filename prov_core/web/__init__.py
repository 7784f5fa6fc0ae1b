"""The lineage web view: a read-only FastAPI app over one ``$PROVGATE_HOME``.

``create_app(home)`` is a factory, so another ASGI app can mount it (the
Airflow adapter does); ``serve(home)`` runs it with uvicorn on 127.0.0.1.
FastAPI and uvicorn are the optional extra ``provgate[ui]``; nothing else in
prov_core imports them. The graph is drawn with cytoscape.js, fetched at build
time (hatch_build.py) into ``static/vendor/``: no CDN, the page works offline.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from typing import TYPE_CHECKING

from prov_core.errors import ConfigError, InputError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from prov_core.home import Home

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "create_app", "serve"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
_log = logging.getLogger(__name__)


def _require_ui() -> None:
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            f"the lineage web view needs {exc.name}: pip install 'provgate[ui]'"
        ) from exc


def create_app(home: Home | str | os.PathLike[str]) -> FastAPI:
    """create_app builds the read-only lineage view of ``home`` (see ``_app``)."""
    _require_ui()
    from prov_core.web._app import create_app as factory

    return factory(home)


def serve(
    home: Home | str | os.PathLike[str],
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    log_level: str = "info",
) -> None:
    """serve runs the lineage view with uvicorn until interrupted (127.0.0.1 by default).

    The view has no authentication of its own: binding anything but a
    loopback address shows the ledger to the network, so it is logged loudly.
    """
    if not 0 < port < 65536:
        raise InputError(f"port {port} must be between 1 and 65535")
    if not host or any(c.isspace() for c in host):
        raise InputError(f"host {host!r} must be a host name or IP address")
    app = create_app(home)
    if not _is_loopback(host):
        _log.warning(
            "provgate ui: binding %s exposes the lineage view (no authentication) "
            "beyond this machine",
            host,
        )
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level=log_level, proxy_headers=False)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
