"""The FastAPI app of the lineage view (the only module of prov_core importing FastAPI).

Routes (all GET: the app is read-only; HTML on the left, its JSON twin the
page's script reads on the right)::

    /                           api/recent               the latest records
    records/{log_index}         api/records/{log_index}  a record (attestation) page
    artifacts/{digest}          api/artifacts/{digest}   HEX64 | blake3:HEX64 | sha256:HEX64
    snapshots?uri=URI           api/snapshots?uri=URI    provgate://REPO/COMMIT, lakefs://...
    search?by=B&q=TEXT          api/search?by=B&q=TEXT   B: digest | source | license | run
    static/...                                           our CSS/JS and the vendored graph lib

Every parameter is validated before the ledger is touched; a bad one is a 400
(a well-formed target no record names, a 404) with a message naming the
parameter and the expected form, as JSON under ``api/`` and as a page
elsewhere. Links are relative to ``<base href="{root_path}/">``, so the app
can be mounted under any prefix of another ASGI app.
"""

from __future__ import annotations

import os
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from prov_core.errors import InputError, NotFoundError, ProvgateError
from prov_core.home import Home, open_home
from prov_core.web import _html
from prov_core.web._views import RunIndex, lineage_view, nodes_view, recent_view

STATIC = Path(__file__).resolve().parent / "static"
MAX_LOG_INDEX = 2**53 - 1
MAX_QUERY = 512
MAX_URI = 2048
_DIGEST = re.compile(r"(?:(blake3|sha256):)?([0-9a-fA-F]{64})")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; style-src-attr 'unsafe-inline'; "
        "img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
        "frame-ancestors 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

SearchBy = Literal["digest", "source", "license", "run"]
LogIndex = Annotated[
    int, PathParam(ge=0, le=MAX_LOG_INDEX, description="a log index of the ledger")
]
Digest = Annotated[str, PathParam(min_length=1, max_length=71)]
SnapshotQuery = Annotated[str, Query(min_length=1, max_length=MAX_URI)]
SearchText = Annotated[str, Query(min_length=1, max_length=MAX_QUERY)]


def create_app(home: Home | str | os.PathLike[str]) -> FastAPI:
    """create_app builds the read-only lineage view of ``home`` (a Home or its path).

    The home is opened now, so a missing or broken one fails here with its
    :class:`~prov_core.errors.ConfigError`, not on the first request.
    """
    opened = home if isinstance(home, Home) else open_home(Path(home))
    runs = RunIndex()
    app = FastAPI(
        title="provgate lineage",
        docs_url=None,  # Swagger UI and ReDoc load from a CDN: nothing here leaves loopback
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.home = opened
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.middleware("http")
    async def _security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        for name, value in _HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    _install_error_handlers(app)

    # -- the documents ----------------------------------------------------------

    def target_doc(target: str | int) -> dict[str, Any]:
        from prov_core.lineage import open_lineage

        with open_lineage(opened) as lineage:
            return lineage_view(lineage, target)

    def search_doc(by: str, q: str) -> dict[str, Any]:
        from prov_core.lineage import open_lineage

        q = _search_text(by, q)
        with open_lineage(opened) as lineage:
            note = ""
            if by == "digest":
                try:
                    found = list(lineage.resolve(q).roots)
                except NotFoundError as exc:
                    found, note = [], str(exc)
            elif by == "run":
                lineage.catch_up()
                found = runs.find(lineage.ledger, opened.ledger_path, q)
            else:
                lineage.catch_up()
                found = lineage.index.find(**{by: q})
            results = nodes_view(lineage, found)
        if not note:
            more = len(found) - len(results)
            note = f"{len(found)} record(s)" + (f", the first {len(results)} shown" if more else "")
        return {"by": by, "q": q, "note": note, "count": len(found), "results": results}

    def recent_doc() -> dict[str, Any]:
        from prov_core.lineage import open_lineage

        with open_lineage(opened) as lineage:
            return {"size": lineage.ledger.size(), "results": recent_view(lineage)}

    # -- JSON -------------------------------------------------------------------

    @app.get("/api/recent")
    def api_recent() -> dict[str, Any]:
        return recent_doc()

    @app.get("/api/records/{log_index}")
    def api_record(log_index: LogIndex) -> dict[str, Any]:
        return target_doc(log_index)

    @app.get("/api/artifacts/{digest}")
    def api_artifact(digest: Digest) -> dict[str, Any]:
        return target_doc(_digest(digest))

    @app.get("/api/snapshots")
    def api_snapshot(uri: SnapshotQuery) -> dict[str, Any]:
        return target_doc(_snapshot(uri))

    @app.get("/api/search")
    def api_search(by: SearchBy, q: SearchText) -> dict[str, Any]:
        return search_doc(by, q)

    # -- HTML -------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse)
    def home_page(request: Request) -> str:
        doc = recent_doc()
        return _html.home_page(_base(request), doc["results"], doc["size"])

    @app.get("/records/{log_index}", response_class=HTMLResponse)
    def record_page(request: Request, log_index: LogIndex) -> str:
        doc = target_doc(log_index)
        root = next((n for n in doc["nodes"] if n["log_index"] == log_index), None)
        title = f"Record {log_index}" + (f" · {root['kind']} {root['name']}" if root else "")
        return _html.lineage_page(_base(request), title, f"api/records/{log_index}", doc)

    @app.get("/artifacts/{digest}", response_class=HTMLResponse)
    def artifact_page(request: Request, digest: Digest) -> str:
        target = _digest(digest)
        doc = target_doc(target)
        api = f"api/artifacts/{_html.quoted(target)}"
        return _html.lineage_page(_base(request), f"Artifact {target}", api, doc)

    @app.get("/snapshots", response_class=HTMLResponse)
    def snapshot_page(request: Request, uri: SnapshotQuery) -> str:
        target = _snapshot(uri)
        doc = target_doc(target)
        api = f"api/snapshots?uri={_html.quoted(target)}"
        return _html.lineage_page(_base(request), f"Snapshot {target}", api, doc)

    @app.get("/search", response_class=HTMLResponse)
    def search_page(request: Request, by: SearchBy, q: SearchText) -> str:
        doc = search_doc(by, q)
        return _html.search_page(_base(request), by, doc["q"], doc["results"], doc["note"])

    return app


# -- parameters ------------------------------------------------------------------


def _digest(text: str) -> str:
    """_digest checks an artifact digest: 64 hex characters, optionally blake3:/sha256:."""
    m = _DIGEST.fullmatch(text)
    if m is None:
        raise InputError(
            f"digest {text[:80]!r} must be 64 hex characters, optionally prefixed "
            "blake3: or sha256:"
        )
    algo, hex_part = m.groups()
    return f"{algo}:{hex_part.lower()}" if algo else hex_part.lower()


def _snapshot(text: str) -> str:
    """_snapshot checks a pinned snapshot URI (``SnapshotURI.parse``) with no object path."""
    from prov_core.snapshots.base import SnapshotURI

    uri = SnapshotURI.parse(text)
    if uri.path:
        raise InputError(
            f"uri {text[:200]!r}: lineage is per snapshot commit; drop the object path "
            f"{uri.path!r} (give {uri.scheme}://{uri.repository}/{uri.ref})"
        )
    if not uri.pinned:
        raise InputError(
            f"uri {text[:200]!r}: {uri.ref!r} is not a commit id; give "
            f"{uri.scheme}://{uri.repository}/<64-hex commit id>"
        )
    return str(uri)


def _search_text(by: str, q: str) -> str:
    q = q.strip()
    if not q or _CONTROL.search(q):
        raise InputError("q must be non-empty text without control characters")
    if by == "digest":
        return _digest(q)
    if by == "run" and len(q) > 256:
        raise InputError("a run id is at most 256 characters")
    return q


# -- errors ----------------------------------------------------------------------


def _base(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/") + "/"


def _wants_json(request: Request) -> bool:
    path = str(request.scope.get("path", ""))
    root = str(request.scope.get("root_path", ""))
    if root and path.startswith(root):
        path = path[len(root) :]
    return path.startswith("/api/")


def _error(request: Request, status: int, message: str) -> Response:
    if _wants_json(request):
        return JSONResponse({"error": message, "status": status}, status_code=status)
    return HTMLResponse(_html.error_page(_base(request), status, message), status_code=status)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        parts = []
        for err in exc.errors():
            where = ".".join(str(x) for x in err.get("loc", ()) if x not in ("path", "query"))
            parts.append(f"{where}: {err.get('msg', 'invalid')}")
        return _error(request, 400, "bad parameter: " + "; ".join(parts))

    @app.exception_handler(NotFoundError)
    async def _not_found(request: Request, exc: NotFoundError) -> Response:
        return _error(request, 404, str(exc))

    @app.exception_handler(InputError)
    async def _input(request: Request, exc: InputError) -> Response:
        return _error(request, 400, str(exc))

    @app.exception_handler(ProvgateError)
    async def _provgate(request: Request, exc: ProvgateError) -> Response:
        return _error(request, 503, f"the ledger or its indexes cannot be read: {exc}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        response = _error(request, exc.status_code, str(exc.detail))
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response
