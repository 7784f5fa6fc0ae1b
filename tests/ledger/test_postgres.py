"""PostgreSQL specifics: schema migrations, errors, secrets, connection loss, concurrent writers.

Every test runs on its own fresh database (the ``postgres_url`` fixture).
"""

from __future__ import annotations

import multiprocessing
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from prov_core.errors import ConfigError, LedgerError
from prov_core.ledger import NoteSigner, NoteVerifier, audit_log, open_checkpoint
from prov_core.ledger.base import Appended
from prov_core.ledger.merkle import check_inclusion, leaf_hash
from prov_core.ledger.postgres import PostgresLedger, mask_url

from . import _mp_worker
from .conftest import ORIGIN, SEED, LedgerFactory, admin, lock_waiters
from .contract import FailingSigner

try:
    import psycopg
except ImportError:  # the postgres_url fixture skips (or, in CI, fails) the tests needing it
    psycopg = None


def test_schema_is_migrated_on_open(postgres_factory: LedgerFactory, postgres_url: str) -> None:
    with postgres_factory() as ledger:
        ledger.append([b"x"])
    with admin(postgres_url) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM ledger_schema_migrations")]
        meta = dict(conn.execute("SELECT key, value FROM ledger_meta").fetchall())
        head = conn.execute("SELECT size, length(frontier) FROM ledger_head").fetchall()
    assert versions == [1, 2]
    assert meta == {"schema": "provgate-ledger", "origin": ORIGIN}
    assert head == [(1, 32)]
    postgres_factory().close()  # reopening applies nothing twice
    with admin(postgres_url) as conn:
        assert conn.execute("SELECT count(*) FROM ledger_schema_migrations").fetchone() == (2,)


def test_migrations_are_applied_in_order(
    postgres_factory: LedgerFactory,
    postgres_url: str,
    verifier: NoteVerifier,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from prov_core.ledger import postgres

    with postgres_factory() as ledger:
        ledger.append([b"before"])
    known = postgres.SCHEMA_VERSION
    step_a = ("CREATE TABLE ledger_probe (n INTEGER)", "INSERT INTO ledger_probe VALUES (2)")
    step_b = ("UPDATE ledger_probe SET n = n * 10",)  # fails unless step_a ran first
    monkeypatch.setattr(postgres, "MIGRATIONS", (*postgres.MIGRATIONS, step_a, step_b))
    monkeypatch.setattr(postgres, "SCHEMA_VERSION", known + 2)
    with postgres_factory() as ledger:
        assert [d for _, d in ledger.entries()] == [b"before"]
        assert audit_log(ledger, [verifier]).ok
    with admin(postgres_url) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM ledger_schema_migrations")]
        assert versions == list(range(1, known + 3))
        assert conn.execute("SELECT n FROM ledger_probe").fetchone() == (20,)


def test_failed_migration_changes_nothing(
    postgres_url: str, signer: NoteSigner, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prov_core.ledger import postgres

    bad = ("CREATE TABLE ledger_probe (n INTEGER)", "SELECT no_such_function()")
    monkeypatch.setattr(postgres, "MIGRATIONS", (*postgres.MIGRATIONS, bad))
    monkeypatch.setattr(postgres, "SCHEMA_VERSION", postgres.SCHEMA_VERSION + 1)
    with pytest.raises(LedgerError, match="no_such_function"):
        PostgresLedger(postgres_url, ORIGIN, signer)
    with admin(postgres_url) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables")}
    assert not tables & {"ledger_probe", "ledger_entries", "ledger_schema_migrations"}


def test_newer_schema_is_refused(postgres_factory: LedgerFactory, postgres_url: str) -> None:
    postgres_factory().close()
    with admin(postgres_url) as conn:
        conn.execute("INSERT INTO ledger_schema_migrations (version) VALUES (7)")
    with pytest.raises(ConfigError, match=r"schema version 7, newer than version 2") as info:
        postgres_factory()
    assert "upgrade provgate" in str(info.value)


def test_wrong_origin(
    postgres_factory: LedgerFactory, postgres_url: str, signer: NoteSigner
) -> None:
    postgres_factory().close()
    with pytest.raises(ConfigError, match=r"belongs to log 'provgate\.test/ledger'"):
        PostgresLedger(postgres_url, "another.example/log", signer)


def test_foreign_tables(postgres_url: str, signer: NoteSigner) -> None:
    with admin(postgres_url) as conn:
        conn.execute("CREATE TABLE ledger_entries (id INTEGER)")
    with pytest.raises(ConfigError, match="not a provgate ledger"):
        PostgresLedger(postgres_url, ORIGIN, signer)


def test_password_is_never_shown(postgres_url: str, signer: NoteSigner) -> None:
    secret = "s3cr3t-Pa55"
    url = postgres_url.replace("postgres@", f"postgres:{secret}@")
    with PostgresLedger(url, ORIGIN, signer) as ledger:  # trust auth: the password is unused
        assert secret not in repr(ledger)
        assert secret not in ledger.url
        assert "postgres:***@127.0.0.1" in repr(ledger)
    missing = url.rsplit("/", 1)[0] + "/provgate_no_such_db"
    with pytest.raises(LedgerError) as info:
        PostgresLedger(missing, ORIGIN, signer)
    assert "provgate_no_such_db" in str(info.value)
    assert secret not in str(info.value)
    assert mask_url("postgresql://u:pw@h:5432/db?sslmode=require&password=pw2") == (
        "postgresql://u:***@h:5432/db?sslmode=require&password=***"
    )
    assert (
        mask_url("host=h user=u password='a b' dbname=d") == "host=h user=u password=*** dbname=d"
    )
    assert mask_url("postgresql://h/db") == "postgresql://h/db"


def test_bad_url_is_a_config_error(signer: NoteSigner) -> None:
    with pytest.raises(ConfigError, match="bad PostgreSQL URL") as info:
        PostgresLedger("host=127.0.0.1 password=hunter2 dbname", ORIGIN, signer)
    assert "hunter2" not in str(info.value)


def test_a_role_without_create_privilege_opens_a_migrated_log(
    postgres_factory: LedgerFactory, postgres_url: str, signer: NoteSigner
) -> None:
    postgres_factory().close()
    role = "provgate_writer_" + postgres_url.rsplit("_", 1)[1][:8]
    with admin(postgres_url) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f"REVOKE CREATE ON SCHEMA public FROM PUBLIC, {role}")
        conn.execute(f"GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO {role}")
    try:
        url = postgres_url.replace("postgres@", f"{role}@")
        with PostgresLedger(url, ORIGIN, signer) as ledger:
            assert ledger.append([b"by the writer role"]).first_index == 0
    finally:
        with admin(postgres_url) as conn:
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")


def test_missing_psycopg_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, signer: NoteSigner
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(ConfigError, match=r"pip install 'provgate\[postgres\]'"):
        PostgresLedger("postgresql://postgres@127.0.0.1:5432/x", ORIGIN, signer)


def test_storage_errors_are_ledger_errors(
    postgres_factory: LedgerFactory, postgres_url: str
) -> None:
    with postgres_factory() as ledger:
        ledger.append([b"a"])
        with admin(postgres_url) as conn:
            conn.execute(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS"
                " $$ BEGIN RAISE EXCEPTION 'refused by trigger'; END $$;"
                " CREATE TRIGGER refuse BEFORE INSERT ON ledger_entries"
                " FOR EACH ROW EXECUTE FUNCTION refuse()"
            )
            with pytest.raises(LedgerError, match="refused by trigger") as info:
                ledger.append([b"b"])
            assert isinstance(info.value.__cause__, psycopg.Error)
            assert ledger.size() == 1
            assert list(ledger.entries()) == [(0, b"a")]
            conn.execute("DROP TABLE ledger_entries")
        with pytest.raises(LedgerError):
            list(ledger.entries())
        with pytest.raises(LedgerError):
            ledger.latest_checkpoint()


def test_two_handles_share_the_log(postgres_factory: LedgerFactory, verifier: NoteVerifier) -> None:
    with postgres_factory() as a, postgres_factory() as b:
        for i in range(30):
            assert (b if i % 3 else a).append([b"entry %d" % i]).first_index == i
        assert [d for _, d in a.entries()] == [b"entry %d" % i for i in range(30)]
        assert audit_log(b, [verifier]).ok


def test_reserve_holds_off_other_writers(
    postgres_factory: LedgerFactory, verifier: NoteVerifier
) -> None:
    with postgres_factory() as a, postgres_factory() as b:
        a.append([b"first"])
        other: list[int] = []
        with a.reserve() as index:
            worker = threading.Thread(target=lambda: other.append(b.append([b"b"]).first_index))
            worker.start()
            worker.join(0.3)
            assert worker.is_alive(), "the other writer appended during the reservation"
            assert a.append([b"reserved"]).first_index == index == 1
        worker.join(10)
        assert other == [2]
        assert [d for _, d in b.entries()] == [b"first", b"reserved", b"b"]
        assert audit_log(b, [verifier]).ok


def test_lock_timeout_is_a_ledger_error(postgres_url: str, signer: NoteSigner) -> None:
    with (
        PostgresLedger(postgres_url, ORIGIN, signer) as a,
        PostgresLedger(postgres_url, ORIGIN, signer, lock_timeout=0.2) as b,
    ):
        with a.reserve(), pytest.raises(LedgerError, match="lock timeout"):
            b.append([b"waits too long"])
        assert b.append([b"now"]).first_index == 0


# -- connection loss ------------------------------------------------------------


def terminate(postgres_url: str, pid: int) -> None:
    with admin(postgres_url) as conn:
        conn.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))


def backend_pid(ledger: PostgresLedger) -> int:
    assert ledger._conn is not None
    return int(ledger._conn.info.backend_pid)


def test_dropped_connection_without_retry_is_a_clear_error(
    postgres_url: str, signer: NoteSigner, verifier: NoteVerifier
) -> None:
    with PostgresLedger(postgres_url, ORIGIN, signer, retries=0) as ledger:
        ledger.append([b"a"])
        terminate(postgres_url, backend_pid(ledger))
        with pytest.raises(LedgerError, match=r"connection was lost.*rolled back") as info:
            ledger.append([b"b"])
        assert isinstance(info.value.__cause__, psycopg.OperationalError)
        assert ledger.append([b"c"]).first_index == 1  # reconnects
        assert [d for _, d in ledger.entries()] == [b"a", b"c"]
        assert audit_log(ledger, [verifier]).ok


def test_dropped_connection_is_retried(postgres_url: str, signer: NoteSigner) -> None:
    with PostgresLedger(postgres_url, ORIGIN, signer) as ledger:
        ledger.append([b"a"])
        terminate(postgres_url, backend_pid(ledger))
        assert ledger.append([b"b"]).first_index == 1
        assert [d for _, d in ledger.entries()] == [b"a", b"b"]


def test_dropped_connection_during_reserve(
    postgres_factory: LedgerFactory, postgres_url: str, verifier: NoteVerifier
) -> None:
    with postgres_factory() as ledger, postgres_factory() as other:
        ledger.append([b"a"])

        def append_reserved() -> None:
            with ledger.reserve() as index:
                assert index == 1
                terminate(postgres_url, backend_pid(ledger))
                ledger.append([b"never"])

        with pytest.raises(LedgerError):
            append_reserved()
        assert other.append([b"b"]).first_index == 1  # the lock died with the connection
        assert [d for _, d in ledger.entries()] == [b"a", b"b"]
        assert audit_log(ledger, [verifier]).ok


def test_reserve_reconnects_a_dropped_idle_connection(
    postgres_url: str, signer: NoteSigner, verifier: NoteVerifier
) -> None:
    with PostgresLedger(postgres_url, ORIGIN, signer) as ledger:
        ledger.append([b"a"])
        terminate(postgres_url, backend_pid(ledger))
        with ledger.reserve() as index:
            assert ledger.append([b"b %d" % index]).first_index == index == 1
        assert audit_log(ledger, [verifier]).ok


class _LoseConnection(PostgresLedger):
    """Loses its connection around the COMMIT of the next append, once."""

    when = ""  # "before": the COMMIT never reaches the server; "after": it committed

    def _write_and_commit(self, conn: Any, params: tuple[Any, ...]) -> None:
        when, self.when = self.when, ""
        if when == "before":
            terminate(self._dsn, conn.info.backend_pid)
        super()._write_and_commit(conn, params)
        if when == "after":
            conn.close()
            raise psycopg.OperationalError("server closed the connection unexpectedly")


@pytest.mark.parametrize("when", ["before", "after"])
def test_connection_lost_at_commit_appends_exactly_once(
    postgres_url: str, signer: NoteSigner, verifier: NoteVerifier, when: str
) -> None:
    with _LoseConnection(postgres_url, ORIGIN, signer) as ledger:
        ledger.append([b"a"])
        ledger.when = when
        got = ledger.append([b"b", b"c"])
        assert (got.first_index, got.size) == (1, 3)
        assert ledger.latest_checkpoint() == got.checkpoint_note
        assert [d for _, d in ledger.entries()] == [b"a", b"b", b"c"]
        assert audit_log(ledger, [verifier]).ok


@pytest.mark.parametrize("retries", [0, 1])
def test_connections_killed_mid_run_lose_and_duplicate_nothing(
    postgres_url: str, signer: NoteSigner, verifier: NoteVerifier, retries: int
) -> None:
    """pg_terminate_backend hits the writers' connections again and again while they append.

    Without retries the writers get clear errors; with them the appends go through.
    Either way no acknowledged append is lost and none is stored twice.
    """
    writers = 3
    ledgers = [
        PostgresLedger(postgres_url, ORIGIN, signer, retries=retries) for _ in range(writers)
    ]
    acked: list[list[bytes]] = [[] for _ in range(writers)]
    unknown: list[bytes] = []  # appends whose outcome the ledger said is unknown
    failed: list[bytes] = []  # appends the ledger said took nothing
    kills: list[int] = []
    msgs: dict[bytes, str] = {}
    done = threading.Event()

    def write(w: int) -> None:
        with ledgers[w] as ledger:
            for i in range(200):
                leaf = b"writer %d entry %d" % (w, i)
                try:
                    ledger.append([leaf])
                except LedgerError as exc:
                    (unknown if "unknown" in str(exc) else failed).append(leaf)
                    msgs[leaf] = repr(exc) + repr(exc.__cause__)
                else:
                    acked[w].append(leaf)

    def kill() -> None:
        with admin(postgres_url) as conn:
            while not done.wait(0.1):
                cur = conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    " AND application_name = 'provgate'"
                )
                kills.append(len(cur.fetchall()))

    killer = threading.Thread(target=kill)
    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    killer.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    done.set()
    killer.join()
    everything = {leaf for a in acked for leaf in a}
    with PostgresLedger(postgres_url, ORIGIN, signer) as ledger:
        stored = [d for _, d in ledger.entries()]
        assert [i for i, _ in ledger.entries()] == list(range(len(stored)))
        assert len(stored) == len(set(stored)), "an entry was appended twice"
        assert everything <= set(stored), "an acknowledged append was lost"
        assert not set(failed) & set(stored), [msgs[x] for x in set(failed) & set(stored)][:3]
        assert set(stored) - everything <= set(unknown)
        for w in range(writers):  # each writer's acknowledged appends are in its order
            mine = [d for d in stored if d.startswith(b"writer %d " % w) and d in everything]
            assert mine == acked[w]
        report = audit_log(ledger, [verifier])
        assert report.ok, report.problems
    assert sum(kills) >= 3, "the connections were not terminated during the run"
    # Enough appends went through for the run to mean something: without retries an
    # append fails whenever a kill lands while it is in flight, about half of them here.
    assert len(everything) > (300 if retries else 150), (len(everything), len(failed), len(unknown))
    if retries == 0:
        assert failed, "no writer saw its connection die"


# -- group append -----------------------------------------------------------------


def wait_until(what: str, check: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.02)


def pending(postgres_url: str) -> int:
    with admin(postgres_url) as conn:
        row = conn.execute("SELECT count(*) FROM ledger_submissions WHERE first_idx IS NULL")
        return int(row.fetchone()[0])


class Appender(threading.Thread):
    """Appends one entry in a thread of its own; keeps what append returned or raised."""

    def __init__(self, ledger: PostgresLedger, leaf: bytes) -> None:
        super().__init__()
        self.ledger, self.leaf = ledger, leaf
        self.got: Appended | None = None
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self.got = self.ledger.append([self.leaf])
        except BaseException as exc:
            self.error = exc


def test_waiting_appends_share_one_batch_and_checkpoint(
    postgres_factory: LedgerFactory, postgres_url: str, verifier: NoteVerifier
) -> None:
    """Appends submitted while another writer holds the lock are integrated together.

    The first of them to get the lock leads: one transaction, one checkpoint
    for all four; the others find their entries integrated and sign nothing.
    """
    handles = [postgres_factory() for _ in range(5)]
    holder, writers = handles[0], handles[1:]
    try:
        holder.append([b"first"])
        with holder.reserve():
            threads = [Appender(w, b"waiter %d" % i) for i, w in enumerate(writers)]
            wait_until("all four are submitted", lambda: pending(postgres_url) == 4)
            holder.append([b"reserved"])
        for t in threads:
            t.join(30)
        got = [t.got for t in threads]
        assert all(g is not None for g in got), [t.error for t in threads]
        assert sorted(g.first_index for g in got if g) == [2, 3, 4, 5]
        assert {(g.size, g.checkpoint_note, g.count) for g in got if g} == {
            (6, holder.checkpoint(6), 1)
        }
        head = open_checkpoint(holder.checkpoint(6), [verifier], origin=ORIGIN)
        for t in threads:
            assert t.got is not None
            i = t.got.first_index
            assert holder.entry(i) == t.leaf
            check_inclusion(i, 6, leaf_hash(t.leaf), holder.prove_inclusion(i, 6), head.root)
        assert [s for s, _ in holder.checkpoints()] == [1, 2, 6]
        assert pending(postgres_url) == 0
        assert audit_log(holder, [verifier]).ok
    finally:
        for h in handles:
            h.close()


def test_a_dead_writers_submission_is_integrated_exactly_once(
    postgres_factory: LedgerFactory, postgres_url: str, verifier: NoteVerifier
) -> None:
    """A writer killed after its submission committed: the next leader integrates it, once."""
    with postgres_factory() as holder, postgres_factory() as other:
        holder.append([b"first"])
        ctx = multiprocessing.get_context("spawn")
        with holder.reserve():
            child = ctx.Process(
                target=_mp_worker.append_many_to,
                args=("postgres", postgres_url, ORIGIN, SEED, 9, 1),
            )
            child.start()
            wait_until("the child's entry is submitted", lambda: pending(postgres_url) == 1)
            child.kill()  # SIGKILL
            child.join(30)
            assert child.exitcode == -9
            holder.append([b"reserved"])
        assert other.append([b"after"]).first_index == 3
        other.append([b"later"])
        assert [d for _, d in other.entries()] == [
            b"first",
            b"reserved",
            b"worker 9 entry 0",
            b"after",
            b"later",
        ]
        assert pending(postgres_url) == 0
        assert audit_log(other, [verifier]).ok


def test_a_waiter_that_loses_its_connection_is_appended_once(
    postgres_factory: LedgerFactory, postgres_url: str, verifier: NoteVerifier
) -> None:
    """The connection of a writer waiting for the lock drops: it submits again, idempotently."""
    with postgres_factory() as holder, postgres_factory() as writer:
        holder.append([b"first"])
        with holder.reserve():
            thread = Appender(writer, b"waiter")
            wait_until("the writer waits for the lock", lambda: len(lock_waiters(postgres_url)))
            (first_pid,) = lock_waiters(postgres_url)
            terminate(postgres_url, first_pid)
            wait_until(
                "the writer reconnected and waits again",
                lambda: bool(lock_waiters(postgres_url) - {first_pid}),
            )
            assert pending(postgres_url) == 1  # its second submission stored nothing new
            holder.append([b"reserved"])
        thread.join(30)
        assert thread.got is not None, thread.error
        assert thread.got.first_index == 2
        assert [d for _, d in holder.entries()] == [b"first", b"reserved", b"waiter"]
        assert audit_log(holder, [verifier]).ok


def test_a_leader_that_fails_withdraws_its_own_and_the_next_leads(
    postgres_url: str, signer: NoteSigner, verifier: NoteVerifier
) -> None:
    """The leader's checkpoint signer fails: its append fails and is withdrawn, nothing else."""
    failing = FailingSigner(signer.name, signer._key)
    with (
        PostgresLedger(postgres_url, ORIGIN, signer) as holder,
        PostgresLedger(postgres_url, ORIGIN, failing) as unlucky,
        PostgresLedger(postgres_url, ORIGIN, signer) as lucky,
    ):
        holder.append([b"first"])
        with holder.reserve():
            first = Appender(unlucky, b"unlucky")  # first in line for the lock: it will lead
            wait_until("it waits for the lock", lambda: len(lock_waiters(postgres_url)) == 1)
            second = Appender(lucky, b"lucky")
            wait_until("both wait for the lock", lambda: len(lock_waiters(postgres_url)) == 2)
            failing.fail = True
            holder.append([b"reserved"])
        first.join(30)
        second.join(30)
        assert isinstance(first.error, RuntimeError), first.error
        assert "signing service down" in str(first.error)
        assert second.got is not None, second.error
        assert second.got.first_index == 2
        assert [d for _, d in holder.entries()] == [b"first", b"reserved", b"lucky"]
        assert pending(postgres_url) == 0
        with admin(postgres_url) as conn:
            assert conn.execute(
                "SELECT count(*) FROM ledger_submissions WHERE first_idx = -1"
            ).fetchone() == (1,)  # the withdrawn one, kept so that a retry cannot resurrect it
        assert unlucky.append([b"unlucky again"]).first_index == 3
        assert audit_log(holder, [verifier]).ok


def test_missing_service_skips_or_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the server the PostgreSQL tests skip visibly, or fail when CI requires it."""
    from tests.conftest import need_service

    monkeypatch.delenv("PROVGATE_REQUIRE_SERVICES", raising=False)
    need_service(None)  # available: nothing happens
    with pytest.raises(pytest.skip.Exception, match="unreachable"):
        need_service("PostgreSQL at 127.0.0.1:5432 is unreachable")
    monkeypatch.setenv("PROVGATE_REQUIRE_SERVICES", "1")
    with pytest.raises(pytest.fail.Exception, match="PROVGATE_REQUIRE_SERVICES=1"):
        need_service("PostgreSQL at 127.0.0.1:5432 is unreachable")
