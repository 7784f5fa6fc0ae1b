"""One place of truth: the indexes and the store's metadata in the home's database.

With the ledger on PostgreSQL, the content index, the lineage index and the
local store's refs live in the same database (prov_core._postgres); the same
statements run on SQLite (prov_core._sql). What is shown here: the schemas
``provgate init`` migrates, how versions are refused or migrated, that the two
dialects match (GLOB, statement rewriting), and that catch-ups from several
processes at once index every entry exactly once and agree with a single
catch-up.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prov_core._postgres import PostgresDialect, glob_regex
from prov_core.content_index import ContentIndex
from prov_core.errors import ConfigError
from prov_core.home import init_home
from prov_core.ingest import IngestRequest, ingest_path
from prov_core.lineage_index import SCHEMA_VERSION, LineageIndex
from prov_core.snapshots.local import LocalStore
from prov_core.statement import SLSA_PROVENANCE_V1, Statement, Subject
from prov_core.step import Artifact, Recorder, record_step

from . import _catch_up_worker
from .conftest import postgres_schema

LINEAGE_TABLES = ("nodes", "edges", "digests", "commits", "attempts")


@pytest.fixture
def schema_url(postgres_homes: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL schema of its own (its URL)."""
    with postgres_schema(postgres_homes) as url:
        yield url


def _tables(url: str) -> dict[str, int]:
    """The tables of the URL's schema, with the latest version of each migration table."""
    with psycopg.connect(url) as db:
        names = [
            r[0]
            for r in db.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            )
        ]
        versions = {}
        for name in names:
            if name.endswith("schema_migrations"):
                versions[name] = db.execute(f"SELECT max(version) FROM {name}").fetchone()[0]
    return {name: versions.get(name, 0) for name in names}


# -- schemas and migrations ----------------------------------------------------------


def test_init_migrates_every_component_into_the_ledger_database(
    schema_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROVGATE_LEDGER_URL", schema_url)
    home, created = init_home(tmp_path / "home")
    assert created
    tables = _tables(schema_url)
    assert tables["lineage_schema_migrations"] == SCHEMA_VERSION
    assert tables["content_schema_migrations"] == 1
    assert tables["store_schema_migrations"] == 1
    assert "ledger_schema_migrations" in tables
    for name in ("lineage_nodes", "lineage_attempts", "content_content", "store_branches"):
        assert name in tables
    assert not list(home.path.rglob("*.sqlite"))  # nothing of the truth is in files
    assert init_home(tmp_path / "home")[1] is False  # idempotent


def test_a_newer_schema_is_refused_naming_both_versions(schema_url: str) -> None:
    LineageIndex(schema_url).close()
    with psycopg.connect(schema_url) as db:
        db.execute("INSERT INTO lineage_schema_migrations (version) VALUES (%s)", (99,))
    newer = f"schema version 99, newer than version {SCHEMA_VERSION}"
    with pytest.raises(ConfigError, match=newer):
        LineageIndex(schema_url)


def test_tables_of_another_program_are_refused(schema_url: str, tmp_path: Path) -> None:
    with psycopg.connect(schema_url) as db:
        db.execute("CREATE TABLE store_meta (key TEXT PRIMARY KEY, value TEXT)")
    with pytest.raises(ConfigError, match="not a provgate snapshot store"):
        LocalStore(tmp_path / "store", database=schema_url)
    with psycopg.connect(schema_url) as db:  # refused, and left as it was
        assert db.execute("SELECT to_regclass('store_branches')").fetchone() == (None,)


def test_an_unreachable_database_is_a_clear_error(tmp_path: Path) -> None:
    from prov_core.errors import LedgerError, StoreError

    url = "postgresql://postgres:s3cret@127.0.0.1:1/none"
    with pytest.raises(LedgerError, match="cannot connect to the content index") as caught:
        ContentIndex(url)
    assert "s3cret" not in str(caught.value)
    with pytest.raises(StoreError, match="cannot connect to the snapshot store"):
        LocalStore(tmp_path / "store", database=url)


def test_an_unparsable_url_is_a_config_error_without_its_password(tmp_path: Path) -> None:
    url = "postgresql://u:s3cret@h:5432/db?foo=bar=baz"
    with pytest.raises(ConfigError, match="bad PostgreSQL URL") as caught:
        ContentIndex(url)
    assert "s3cret" not in str(caught.value)
    with pytest.raises(ConfigError, match="bad PostgreSQL URL"):
        LocalStore(tmp_path / "store", database=url)


def test_an_older_lineage_schema_is_migrated_and_rebuilt(
    schema_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROVGATE_LEDGER_URL", schema_url)
    home, _ = init_home(tmp_path / "home")
    with Recorder.from_home(home) as recorder:
        record_step(recorder, "a", outputs=[Artifact.from_bytes("a", b"a")])
        with home.open_lineage_index() as index:
            assert index.catch_up(recorder.ledger) == 1
    with psycopg.connect(schema_url) as db:  # as version 1 left it
        db.execute("DROP TABLE lineage_attempts")
        db.execute("DELETE FROM lineage_schema_migrations WHERE version = 2")
    with home.open_lineage_index() as index, home.open_ledger() as ledger:
        assert index.indexed_to() == 0  # version 2 emptied the cache
        assert index.catch_up(ledger) == 1
        assert index.find(kind="transform") == [0]
    assert _tables(schema_url)["lineage_schema_migrations"] == SCHEMA_VERSION


def test_first_opens_racing_make_one_schema(schema_url: str, tmp_path: Path) -> None:
    errors: list[BaseException] = []

    def open_all(n: int) -> None:
        try:
            LineageIndex(schema_url).close()
            ContentIndex(schema_url).close()
            LocalStore(tmp_path / f"s{n}", database=schema_url).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_all, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with psycopg.connect(schema_url) as db:
        for table in ("lineage", "content", "store"):
            rows = db.execute(f"SELECT version FROM {table}_schema_migrations").fetchall()
            assert sorted(r[0] for r in rows) == list(range(1, len(rows) + 1))


# -- one SQL text, two dialects -------------------------------------------------------


def test_statements_are_rewritten_outside_literals_only() -> None:
    dialect = PostgresDialect(
        "lineage_", ["CREATE TABLE meta (k TEXT)", "CREATE INDEX nodes_kind ON nodes (kind)"]
    )
    assert dialect.sql(
        "SELECT m.value FROM meta m WHERE key = '?:a%meta' AND value LIKE ? AND x = :x"
    ) == (
        "SELECT m.value FROM lineage_meta m WHERE key = '?:a%%meta' AND value LIKE %s AND x = %(x)s"
    )
    assert dialect.sql("CREATE INDEX nodes_kind ON nodes (kind)") == (
        "CREATE INDEX nodes_kind ON nodes (kind)".replace("nodes_kind", "lineage_nodes_kind")
    )
    assert dialect.ddl("CREATE TABLE meta (k TEXT, n INTEGER, b BLOB) WITHOUT ROWID") == (
        'CREATE TABLE lineage_meta (k TEXT COLLATE "C", n BIGINT, b BYTEA)'
    )


_GLOB_PATTERN = st.text(alphabet="ab-^]*?[\\.é", max_size=8)
_GLOB_TEXT = st.text(alphabet="ab-^]\\.é[", max_size=6)


@pytest.fixture(scope="module")
def both_databases(postgres_homes: str) -> Iterator[tuple[sqlite3.Connection, Any]]:
    lite = sqlite3.connect(":memory:")
    with psycopg.connect(postgres_homes, autocommit=True) as pg:
        yield lite, pg
    lite.close()


@settings(max_examples=300, deadline=None)
@given(pattern=_GLOB_PATTERN, texts=st.lists(_GLOB_TEXT, min_size=1, max_size=6))
def test_glob_means_the_same_on_both_databases(
    both_databases: tuple[sqlite3.Connection, Any], pattern: str, texts: list[str]
) -> None:
    lite, pg = both_databases
    regex = glob_regex(pattern)
    for text in texts:
        want = lite.execute("SELECT ? GLOB ?", (text, pattern)).fetchone()[0]
        got = pg.execute("SELECT %s ~ %s", (text, regex)).fetchone()[0]
        assert bool(got) == bool(want), (pattern, regex, text)


def test_a_record_naming_a_nul_is_indexed_on_postgres(
    schema_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL text cannot hold NUL: the index shows U+FFFD rather than stall catch-up."""
    monkeypatch.setenv("PROVGATE_LEDGER_URL", schema_url)
    home, _ = init_home(tmp_path / "home")
    with Recorder.from_home(home) as recorder:
        recorder.record(Statement([Subject("x", "ab" * 32)], "https://x.example/\x00", {}))
        with home.open_lineage_index() as index:
            assert index.catch_up(recorder.ledger) == 1
            [node] = index.nodes([0]).values()
    assert node.predicate_type == "https://x.example/\ufffd"


# -- catch-ups from several processes ----------------------------------------------------


def _append_pipeline(home: Any, src: Path, *, ingests: int, steps: int) -> None:
    """Ingests of two-file directories, then steps each reading a file of an ingest (found
    through the content index) and the previous step's output (found by its BLAKE3)."""
    with Recorder.from_home(home) as recorder, home.open_index() as index:
        files = []
        for i in range(ingests):
            d = src / f"in{i}"
            d.mkdir(parents=True)
            for k in range(2):
                (d / f"f{k}.txt").write_text(f"ingest {i} file {k}\n")
            request = IngestRequest(source=f"https://example.org/{i}", license="MIT")
            ingest_path(recorder, d, request, index=index)
            files.append(Artifact.from_path(d / "f1.txt"))
        previous = Artifact.from_bytes("seed", b"seed")
        for j in range(steps):
            out = Artifact.from_bytes(f"out{j}", b"output %d\n" % j)
            record_step(recorder, f"s{j}", inputs=[files[j % ingests], previous], outputs=[out])
            previous = out


def _dump(index: LineageIndex) -> dict[str, list[tuple[Any, ...]]]:
    with index._tx(write=False) as tx:
        return {
            t: sorted(tuple(r) for r in tx.execute(f"SELECT * FROM {t}").fetchall())
            for t in LINEAGE_TABLES
        }


def test_concurrent_catch_ups_index_every_entry_once(home_db: str, tmp_path: Path) -> None:
    import os

    url = os.environ.get("PROVGATE_LEDGER_URL")
    home, _ = init_home(tmp_path / "home")
    ready = [tmp_path / f"ready{w}" for w in range(3)]
    stop = tmp_path / "stop"
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(len(ready)) as pool:
        pending = pool.starmap_async(
            _catch_up_worker.catch_up_until,
            [(str(home.path), url, 3, str(r), str(stop)) for r in ready],
        )
        deadline = time.monotonic() + 120
        while not all(r.exists() for r in ready):  # every worker is catching up already
            assert time.monotonic() < deadline, "catch-up workers did not start"
            assert not pending.ready(), pending.get()
            time.sleep(0.05)
        _append_pipeline(home, tmp_path / "src", ingests=4, steps=40)
        stop.touch()
        done = pending.get(timeout=300)
    with home.open_ledger() as ledger, home.open_index() as content:
        size = ledger.size()
        assert size == 44
        # each entry was indexed by exactly one catch-up: none twice, none skipped
        assert sum(d[0] for d in done) == size
        assert sum(d[1] for d in done) == size
        with home.open_lineage_index() as shared:
            assert shared.indexed_to() == size
            got = _dump(shared)
        with LineageIndex(tmp_path / "alone.sqlite") as alone:  # one process, one pass
            alone.catch_up(ledger, content)
            want = _dump(alone)
        with ContentIndex(tmp_path / "alone-content.sqlite") as alone_content:
            alone_content.catch_up(ledger)
            outputs = alone_content.covering([f"{b3}" for b3 in _step_outputs(want)])
        found = content.covering(list(outputs))
    assert got == want
    inputs = [e for e in got["edges"] if e[2] == "input"]
    assert len(inputs) == 2 * 40 - 1  # its ingest's file and the previous output (step 0: a seed)
    assert {b3: [r.log_index for r in refs] for b3, refs in outputs.items()} == {
        b3: [r.log_index for r in refs if r.predicate_type == SLSA_PROVENANCE_V1]
        for b3, refs in found.items()
    }


def _step_outputs(dump: dict[str, list[tuple[Any, ...]]]) -> set[str]:
    return {row[0] for row in dump["digests"] if row[2] == "output" and row[3] == "blake3"}
