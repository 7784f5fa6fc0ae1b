"""Fixtures shared by the core tests: a CLI runner and an initialised home."""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import shutil
import sqlite3
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
DEMO_DATA = REPO / "examples" / "data"


def require_services() -> bool:
    """CI sets PROVGATE_REQUIRE_SERVICES=1: a missing service is then a failure."""
    return os.environ.get("PROVGATE_REQUIRE_SERVICES") == "1"


def vendor_dir() -> Path | None:
    """``../shared/vendor`` beside the repository (or PROVGATE_VENDOR_DIR)."""
    path = Path(os.environ.get("PROVGATE_VENDOR_DIR") or REPO.parent / "shared" / "vendor")
    return path if path.is_dir() else None


def load_example(name: str) -> ModuleType:
    """The module ``examples/NAME.py``, imported as NAME (its ``__main__`` part does not run)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "examples" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@dataclass
class Cli:
    """Runs ``provgate`` in-process with PROVGATE_HOME pointing at ``home``."""

    home: Path
    capsys: pytest.CaptureFixture[str]

    def __call__(self, *args: str) -> Result:
        from prov_core.cli import main

        self.capsys.readouterr()
        code = 0
        try:
            main(["--home", str(self.home), *args] if args[:1] != ("digest",) else list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
        captured = self.capsys.readouterr()
        return Result(code, captured.out, captured.err)


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.delenv("PROVGATE_SIGNING_KEY", raising=False)
    monkeypatch.delenv("PROVGATE_HOME", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    return Cli(home=tmp_path / "home", capsys=capsys)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A private copy of the bundled demo dataset."""
    dest = tmp_path / "data"
    shutil.copytree(DEMO_DATA, dest)
    return dest


@pytest.fixture
def populated(cli: Cli, data: Path) -> Cli:
    """A home with three ingest records: rows, files, rows again."""
    assert cli("init").code == 0
    for args in (
        [str(data / "reviews.csv"), "--source", "https://example.org/r", "--license", "CC0-1.0"],
        [str(data / "docs"), "--source", "file://docs", "--license", "CC-BY-4.0"],
        [str(data / "reviews.csv"), "--source", "https://example.org/r2", "--license", "MIT"],
    ):
        result = cli("ingest", *args, "--json")
        assert result.code == 0, result.err
    return cli


@contextmanager
def demo_home(tmp_path: Path) -> Iterator[tuple[Any, Any, Any, Any, Path]]:
    """A fresh home with its recorder, local store (repository "demo") and content index,
    and a private copy of the demo dataset: ``(home, recorder, store, index, data)``."""
    from prov_core.home import init_home
    from prov_core.step import Recorder

    home, _ = init_home(tmp_path / "home")
    data = tmp_path / "data"
    shutil.copytree(DEMO_DATA, data)
    with (
        Recorder.from_home(home) as recorder,
        home.open_store() as store,
        home.open_index() as index,
    ):
        store.create_repository("demo", "main")
        yield home, recorder, store, index, data


# PostgreSQL: the only server the tests use. Each test gets its own database.
POSTGRES_SERVER = "postgresql://postgres@127.0.0.1:5432"


def postgres_unavailable() -> str | None:
    """Why the test PostgreSQL server cannot be used, or None when it can."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install 'provgate[postgres]')"
    try:
        psycopg.connect(f"{POSTGRES_SERVER}/postgres", connect_timeout=3).close()
    except psycopg.Error as exc:
        return f"PostgreSQL at {POSTGRES_SERVER} is unreachable: {str(exc).strip()}"
    return None


def need_service(reason: str | None) -> None:
    """Skip visibly with ``reason``, or fail when PROVGATE_REQUIRE_SERVICES=1."""
    if reason is None:
        return
    if require_services():
        pytest.fail(f"{reason} (PROVGATE_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """The URL of a fresh, empty database on the test server, dropped afterwards."""
    need_service(postgres_unavailable())
    import uuid

    import psycopg
    from psycopg import sql

    name = f"provgate_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(f"{POSTGRES_SERVER}/postgres", autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"{POSTGRES_SERVER}/{name}"
    finally:
        with psycopg.connect(f"{POSTGRES_SERVER}/postgres", autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty database on the test server, dropped after the test."""
    with fresh_postgres_database() as url:
        yield url


HOME_DATABASES = ("sqlite", "postgres")
"""Where a test home keeps its ledger, indexes and store metadata (the ``home_db`` fixture)."""


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run every test using ``home_db`` once per database (see pytest_collection_modifyitems)."""
    if "home_db" in metafunc.fixturenames:
        metafunc.parametrize("home_db", HOME_DATABASES, indirect=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the PostgreSQL run of a test marked sqlite_only (on the test, or on one of
    its fixture params): it edits a SQLite file, or repeats what another run covers."""
    keep, drop = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        postgres = params.get("home_db") == "postgres"
        (drop if postgres and item.get_closest_marker("sqlite_only") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def postgres_homes() -> Iterator[str]:
    """One database per test process; each PostgreSQL test home gets a schema in it
    (a schema costs milliseconds, a database a checkpoint)."""
    with fresh_postgres_database() as url:
        yield url


@contextmanager
def postgres_schema(database_url: str) -> Iterator[str]:
    """A URL whose connections create and find their tables in a fresh schema of the database."""
    import uuid

    import psycopg
    from psycopg import sql

    name = f"home_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    try:
        yield f"{database_url}?options=-csearch_path%3D{name}"
    finally:
        with psycopg.connect(database_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


@contextmanager
def home_database(
    name: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """Point the homes opened in the block at SQLite files, or ("postgres") at a fresh
    PostgreSQL schema through PROVGATE_LEDGER_URL; yields ``name``."""
    if name == "sqlite":
        monkeypatch.delenv("PROVGATE_LEDGER_URL", raising=False)
        yield name
        return
    with postgres_schema(request.getfixturevalue("postgres_homes")) as url:
        monkeypatch.setenv("PROVGATE_LEDGER_URL", url)
        yield name


@pytest.fixture
def home_db(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The test's homes keep everything in SQLite files, or in PostgreSQL: the test runs
    once with each (``sqlite_only`` marks the exceptions)."""
    with home_database(request.param, request, monkeypatch) as name:
        yield name


def tamper_statement(
    ledger: Path | Any, log_index: int, edit: Callable[[dict[str, Any]], None]
) -> None:
    """Edit a record's statement in its ledger row, as an attacker holding the database
    but not the key: the payload changes, the signature and the tree's hashes do not.

    ``ledger`` is a SQLite ledger's path, or a home (its SQLite or PostgreSQL ledger)."""
    url = getattr(ledger, "ledger_url", None)
    if url is None:
        path = getattr(ledger, "ledger_path", ledger)
        db: Any = sqlite3.connect(path, isolation_level=None)
        table, mark = "entries", "?"
    else:
        import psycopg

        db = psycopg.connect(url, autocommit=True)
        table, mark = "ledger_entries", "%s"
    try:
        (leaf,) = db.execute(
            f"SELECT leaf FROM {table} WHERE idx = {mark}", (log_index,)
        ).fetchone()
        envelope = json.loads(bytes(leaf))
        statement = json.loads(base64.b64decode(envelope["payload"]))
        edit(statement)
        envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
        db.execute(
            f"UPDATE {table} SET leaf = {mark} WHERE idx = {mark}",
            (json.dumps(envelope).encode(), log_index),
        )
    finally:
        db.close()


def rename_step(ledger_path: Path | Any, log_index: int, name: str) -> None:
    """Rename a transform step in its signed record (a tampered lineage node)."""

    def edit(statement: dict[str, Any]) -> None:
        statement["predicate"]["buildDefinition"]["externalParameters"]["step"] = name

    tamper_statement(ledger_path, log_index, edit)
