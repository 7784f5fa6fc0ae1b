"""The lineage web view through FastAPI's TestClient: pages, JSON, bad parameters, read-only."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from prov_core.web import DEFAULT_HOST, DEFAULT_PORT, create_app, serve
from tests.conftest import HOME_DATABASES, home_database

from .pipeline import RUN_ID, SOURCES, Pipeline, built, tamper_step


@pytest.fixture(scope="module", params=HOME_DATABASES)
def pipe(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pipeline]:
    """The pipeline in a home on SQLite, then in one on PostgreSQL (every test runs on both)."""
    with (
        pytest.MonkeyPatch.context() as monkeypatch,
        home_database(request.param, request, monkeypatch),
        built(tmp_path_factory.mktemp("web")) as p,
    ):
        yield p


@pytest.fixture(scope="module")
def client(pipe: Pipeline) -> Iterator[TestClient]:
    with TestClient(create_app(pipe.home)) as c:
        yield c


def test_model_page_shows_sources_statuses_statement_proof_checkpoint(
    client: TestClient, pipe: Pipeline
) -> None:
    r = client.get(f"/records/{pipe.train}")
    assert r.status_code == 200
    page = r.text
    for _, source, lic in SOURCES.values():
        assert source in page
        assert lic in page
    assert "Chain of custody verifies." in page
    assert 'data-status="failing"' not in page
    assert page.count('data-status="ok"') == 5  # train, snapshot, clean, two ingests
    assert f'data-api="api/records/{pipe.train}"' in page
    assert "https://slsa.dev/provenance/v1" in page  # the signed statement
    assert "audit_path" in page  # the inclusion proof
    assert pipe.home.origin in page  # the checkpoint note
    assert '<script src="static/vendor/cytoscape.min.js"' in page
    assert "http://" not in page.replace("https://", "")  # no absolute URLs of ours


def test_api_twin_is_the_page_document(client: TestClient, pipe: Pipeline) -> None:
    doc = client.get(f"/api/records/{pipe.train}").json()
    assert doc["ok"] is True
    assert doc["roots"] == [pipe.train]
    sides = {n["log_index"]: n["side"] for n in doc["nodes"]}
    assert sides == {
        pipe.train: "target",
        pipe.snapshot: "up",
        pipe.clean: "up",
        **dict.fromkeys(pipe.ingests.values(), "up"),
    }
    assert {(e["child"], e["parent"]) for e in doc["edges"]} >= {
        (pipe.train, pipe.snapshot),
        (pipe.snapshot, pipe.clean),
    }
    assert {s["source_uri"] for s in doc["sources"]} == {s for _, s, _ in SOURCES.values()}
    proof = doc["records"][0]["inclusion_proof"]
    assert proof["leaf_index"] == pipe.train
    assert proof["tree_size"] == doc["checkpoint"]["size"]
    assert doc["checkpoint"]["verified"] is True


def test_downstream_of_a_source(client: TestClient, pipe: Pipeline) -> None:
    doc = client.get(f"/api/records/{pipe.ingests['docs']}").json()
    sides = {n["log_index"]: n["side"] for n in doc["nodes"]}
    assert sides[pipe.train] == "down"
    assert sides[pipe.ingests["docs"]] == "target"
    assert all(n["status"] == "ok" for n in doc["nodes"])


def test_artifact_and_snapshot_pages(client: TestClient, pipe: Pipeline) -> None:
    for url in (
        f"/artifacts/blake3:{pipe.model_b3}",
        f"/artifacts/{pipe.model_b3.upper()}",
        f"/snapshots?uri=provgate://demo/{pipe.commit_id}",
    ):
        r = client.get(url)
        assert r.status_code == 200, (url, r.text)
        assert "Chain of custody verifies." in r.text
    doc = client.get("/api/snapshots", params={"uri": f"provgate://demo/{pipe.commit_id}"}).json()
    assert doc["roots"] == [pipe.snapshot]
    assert client.get(f"/api/artifacts/{pipe.model_b3}").json()["roots"] == [pipe.train]


@pytest.mark.parametrize(
    ("by", "q", "expected"),
    [
        ("run", RUN_ID, "train"),
        ("source", "https://docs.example.org/*", "docs"),
        ("license", "CC0-1.0", "reviews"),
        ("digest", "blake3:{model}", "train"),
    ],
)
def test_search(client: TestClient, pipe: Pipeline, by: str, q: str, expected: str) -> None:
    want = pipe.train if expected == "train" else pipe.ingests[expected]
    q = q.format(model=pipe.model_b3)
    doc = client.get("/api/search", params={"by": by, "q": q}).json()
    assert [r["log_index"] for r in doc["results"]] == [want]
    page = client.get("/search", params={"by": by, "q": q})
    assert page.status_code == 200
    assert f'href="records/{want}"' in page.text


def test_search_finding_nothing_says_so(client: TestClient) -> None:
    doc = client.get("/api/search", params={"by": "digest", "q": "ab" * 32}).json()
    assert doc["results"] == []
    assert "no record in the ledger names" in doc["note"]
    assert client.get("/api/search", params={"by": "run", "q": "nope"}).json()["count"] == 0


def test_home_lists_the_latest_records(client: TestClient, pipe: Pipeline) -> None:
    r = client.get("/")
    assert r.status_code == 200
    assert f'href="records/{pipe.train}"' in r.text
    latest = client.get("/api/recent").json()["results"][0]
    assert latest["log_index"] == pipe.train


@pytest.mark.parametrize(
    ("url", "status", "message"),
    [
        ("/api/records/abc", 400, "log_index"),
        ("/api/records/-1", 400, "log_index"),
        (f"/api/records/{2**60}", 400, "log_index"),
        ("/api/records/999", 404, "out of range"),
        ("/api/artifacts/xyz", 400, "64 hex characters"),
        ("/api/artifacts/md5:" + "a" * 60, 400, "64 hex characters"),
        ("/api/artifacts/" + "a" * 200, 400, "digest"),
        ("/api/artifacts/" + "ab" * 32, 404, "no record in the ledger names"),
        ("/api/snapshots?uri=ftp://demo/x", 400, "not a snapshot URI"),
        ("/api/snapshots?uri=provgate://demo/main", 400, "not a commit id"),
        ("/api/snapshots?uri=provgate://X/" + "a" * 64, 400, "repository 'X'"),
        ("/api/snapshots?uri=provgate://demo/" + "a" * 64 + "/f.txt", 400, "object path"),
        ("/api/snapshots?uri=provgate://demo/" + "a" * 64, 404, "no snapshot record"),
        ("/api/snapshots?uri=" + "x" * 3000, 400, "uri"),
        ("/api/snapshots", 400, "uri"),
        ("/api/search?by=color&q=red", 400, "by"),
        ("/api/search?by=source&q=", 400, "q"),
        ("/api/search?by=source&q=" + "x" * 600, 400, "q"),
        ("/api/search?by=run&q=a%00b", 400, "control characters"),
        ("/api/search?by=digest&q=nothex", 400, "64 hex characters"),
        ("/api/nope", 404, "Not Found"),
    ],
)
def test_bad_parameters_are_clear_4xx(
    client: TestClient, url: str, status: int, message: str
) -> None:
    r = client.get(url)
    assert r.status_code == status, r.text
    assert message in r.json()["error"]
    html = client.get(url.replace("/api/", "/", 1))
    assert html.status_code == status
    assert html.headers["content-type"].startswith("text/html")
    assert "Traceback" not in html.text


def test_read_only_no_mutating_routes(client: TestClient, pipe: Pipeline) -> None:
    app = client.app
    assert isinstance(app, FastAPI)
    for route in app.routes:
        methods = getattr(route, "methods", None)
        if methods is not None:
            assert methods <= {"GET", "HEAD"}, (route, methods)
    for method in ("post", "put", "patch", "delete"):
        r = client.request(method, f"/api/records/{pipe.train}")
        assert r.status_code == 405


def test_no_cdn_docs_and_security_headers(client: TestClient) -> None:
    assert client.get("/docs").status_code == 404
    assert client.get("/redoc").status_code == 404
    r = client.get("/")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"


def test_static_files_ours_and_vendored(client: TestClient) -> None:
    js = client.get("/static/lineage.js")
    assert js.status_code == 200
    assert "cytoscape" in js.text
    vendored = client.get("/static/vendor/cytoscape.min.js")
    assert vendored.status_code == 200, "run: uv pip install -e . (hatch_build.py fetches it)"
    assert len(vendored.content) > 100_000


def test_mounted_under_a_prefix_uses_root_path(pipe: Pipeline) -> None:
    parent = FastAPI()
    parent.mount("/plugins/provgate", create_app(pipe.home))
    with TestClient(parent) as c:
        r = c.get(f"/plugins/provgate/records/{pipe.train}")
        assert r.status_code == 200
        assert '<base href="/plugins/provgate/">' in r.text
        assert c.get("/plugins/provgate/static/lineage.js").status_code == 200
        assert c.get(f"/plugins/provgate/api/records/{pipe.train}").json()["ok"] is True
        bad = c.get("/plugins/provgate/api/records/x")
        assert bad.status_code == 400
        assert "error" in bad.json()


def test_tampered_transform_is_marked_failing(tmp_path: Path, home_db: str) -> None:
    with built(tmp_path) as p, TestClient(create_app(p.home)) as c:
        assert c.get(f"/api/records/{p.train}").json()["ok"] is True  # indexed before
        tamper_step(p.home, p.clean)
        doc = c.get(f"/api/records/{p.train}").json()
        assert doc["ok"] is False
        status = {n["log_index"]: n["status"] for n in doc["nodes"]}
        assert status.pop(p.clean) == "failing"
        assert set(status.values()) == {"ok"}
        clean = next(n for n in doc["nodes"] if n["log_index"] == p.clean)
        assert any(r.startswith("signature:") for r in clean["reasons"])
        assert clean["checks"]["signature"] == "failed"
        page = c.get(f"/records/{p.train}").text
        assert f'<tr id="node-{p.clean}" class="node failing"' in page
        assert "does NOT verify" in page
        # downstream from a source also shows it
        down = c.get(f"/api/records/{p.ingests['reviews']}").json()
        assert {n["log_index"] for n in down["nodes"] if n["status"] == "failing"} == {p.clean}


def test_defaults_bind_loopback(monkeypatch: pytest.MonkeyPatch, pipe: Pipeline) -> None:
    assert (DEFAULT_HOST, DEFAULT_PORT) == ("127.0.0.1", 8765)
    params = inspect.signature(serve).parameters
    assert params["host"].default == "127.0.0.1"
    seen: dict[str, object] = {}

    def fake_run(app: object, **kwargs: object) -> None:
        seen.update(kwargs, app=app)

    import uvicorn

    monkeypatch.setattr(uvicorn, "run", fake_run)
    serve(pipe.home)
    assert (seen["host"], seen["port"]) == ("127.0.0.1", 8765)
    assert isinstance(seen["app"], FastAPI)


def test_serve_rejects_bad_port_and_missing_home(tmp_path: Path) -> None:
    from prov_core.errors import ConfigError, InputError

    with pytest.raises(InputError, match="port"):
        serve(tmp_path, port=0)
    with pytest.raises(ConfigError):
        create_app(tmp_path / "no-home")


def test_fastapi_is_imported_only_by_the_web_package() -> None:
    root = Path(__file__).resolve().parents[2] / "prov_core"
    for path in root.rglob("*.py"):
        if "web" in path.relative_to(root).parts:
            continue
        text = path.read_text()
        for name in ("fastapi", "starlette", "uvicorn"):
            assert f"import {name}" not in text, path
            assert f"from {name}" not in text, path
