"""The home's indexes and the store's metadata on PostgreSQL: dialect, connection, migrations.

:class:`PostgresDialect` turns a statement written in SQLite's SQL (see
:mod:`prov_core._sql`) into PostgreSQL's, outside quoted literals:

- ``?`` becomes ``%s`` and ``:name`` becomes ``%(name)s`` (psycopg's
  placeholders; a literal ``%`` is doubled);
- each table and index a component declares gets the component's prefix
  (``nodes`` becomes ``lineage_nodes``), so that the ledger (``ledger_``), the
  lineage index (``lineage_``), the content index (``content_``) and the
  store (``store_``) share one database without sharing a name;
- ``INTEGER`` becomes ``BIGINT``, ``BLOB`` becomes ``BYTEA`` and
  ``WITHOUT ROWID`` is dropped; in ``CREATE TABLE``, ``TEXT`` columns get
  ``COLLATE "C"`` so that text compares by code point, as SQLite's BINARY
  collation does (listings, pages and ref prefixes are ordered by it).

:class:`PostgresDatabase` holds one connection (reconnected when it broke).
A write transaction runs in READ COMMITTED and takes the row locks its
queries ask for (:attr:`~prov_core._sql.Dialect.for_update`); a read
transaction is REPEATABLE READ READ ONLY, one snapshot as in SQLite.

:meth:`PostgresDatabase.migrate` brings a component's schema to its newest
version with :func:`~prov_core._pg_session.apply_migrations`
(``<prefix>schema_migrations``); ``provgate init`` applies them; so does
every open that finds the schema behind.

The password of a URL is never shown (:mod:`prov_core._pg_session`).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from prov_core._pg_session import (
    apply_migrations,
    connect_session,
    parse_url,
    require_psycopg,
    schema_version,
    scrub,
)
from prov_core._sql import Database, Dialect, Tx
from prov_core.errors import ConfigError, ProvgateError

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "PostgresDatabase",
    "PostgresDialect",
    "glob_regex",
    "open_database",
]

_LITERAL = re.compile(r"('(?:[^']|'')*')")
_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_DECLARED = re.compile(r"CREATE\s+(?:TABLE|INDEX)\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)", re.IGNORECASE)
_TYPES = (
    (re.compile(r"\s*\bWITHOUT ROWID\b"), ""),
    (re.compile(r"\bINTEGER\b"), "BIGINT"),
    (re.compile(r"\bBLOB\b"), "BYTEA"),
)
_TEXT = re.compile(r"\bTEXT\b")
_NEVER = "(?!)"  # a regex that matches nothing


def glob_regex(pattern: str) -> str:
    """glob_regex is a PostgreSQL regex (``~``) matching exactly what SQLite's GLOB does.

    ``*`` any characters, ``?`` one character, ``[...]`` one character of a
    set, read as SQLite's ``patternCompare`` reads it: ``^`` first inverts it,
    ``]`` first is literal, ``x-y`` is a range when a single character precedes
    the ``-`` and no ``]`` follows it (a reversed range matches nothing), any
    other ``-`` is literal; an unterminated ``[`` matches nothing. Matching is
    case-sensitive, by code point, over the whole value. A NUL matches
    nothing (PostgreSQL text cannot hold one).
    """
    if "\x00" in pattern:
        return _NEVER
    out = ["^"]
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        i += 1
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c != "[":
            out.append(_literal(c))
        else:
            invert = i < n and pattern[i] == "^"
            i += invert
            items: list[str] = []
            if i < n and pattern[i] == "]":
                items.append(_literal("]"))
                i += 1
            prior = ""  # a single character a following '-' starts a range from
            while i < n and pattern[i] != "]":
                c = pattern[i]
                i += 1
                if c == "-" and prior and i < n and pattern[i] != "]":
                    hi = pattern[i]
                    i += 1
                    if prior <= hi:
                        items.append(f"{_literal(prior)}-{_literal(hi)}")
                    prior = ""
                else:
                    items.append(_literal(c))
                    prior = c
            if i >= n:
                return _NEVER  # no closing ']'
            i += 1
            if items:
                out.append(f"[{'^' if invert else ''}{''.join(items)}]")
            elif invert:
                out.append(".")  # the complement of nothing: any one character
            else:
                return _NEVER  # a set of nothing
    out.append("$")
    return "".join(out)


def _literal(c: str) -> str:
    """_literal is character ``c`` in an ARE, inside brackets or out (``\\`` escapes it)."""
    return c if c.isalnum() else "\\" + c


class PostgresDialect(Dialect):
    """PostgresDialect rewrites SQLite's SQL for one component's prefixed tables."""

    name = "postgres"
    for_update = " FOR UPDATE"
    for_share = " FOR SHARE"

    def __init__(self, prefix: str, ddl: Iterable[str]) -> None:
        """__init__ prefixes with ``prefix`` every table and index ``ddl`` creates."""
        self.prefix = prefix
        names = sorted({m.group(1) for stmt in ddl for m in _DECLARED.finditer(stmt)})
        self._names = re.compile(rf"(?<![.\w])({'|'.join(names)})\b") if names else None
        self._cache: dict[str, str] = {}

    def table(self, name: str) -> str:
        """table is the name of table ``name`` in the database."""
        return self.prefix + name

    def sql(self, text: str) -> str:
        done = self._cache.get(text)
        if done is None:
            done = self._cache[text] = self._rewrite(text, params=True)
        return done

    def ddl(self, text: str) -> str:
        """ddl is :meth:`sql` for a statement run without parameters (no placeholders)."""
        return self._rewrite(text, params=False)

    def _rewrite(self, text: str, *, params: bool) -> str:
        create_table = text.lstrip().upper().startswith("CREATE TABLE")
        parts = _LITERAL.split(text.replace("%", "%%") if params else text)
        for k in range(0, len(parts), 2):  # even parts are outside quoted literals
            part = parts[k]
            if params:
                part = _NAMED.sub(r"%(\1)s", part.replace("?", "%s"))
            for pattern, repl in _TYPES:
                part = pattern.sub(repl, part)
            if create_table:
                part = _TEXT.sub('TEXT COLLATE "C"', part)
            if self._names is not None:
                part = self._names.sub(lambda m: self.prefix + m.group(1), part)
            parts[k] = part
        return "".join(parts)

    def ints(self, alias: str) -> str:
        return f"unnest(CAST(? AS BIGINT[])) AS {alias}(value)"

    def ints_param(self, values: Iterable[int]) -> Any:
        return list(values)

    def glob(self, column: str) -> str:
        return f"{column} ~ ?"

    def glob_param(self, pattern: str) -> str:
        return glob_regex(pattern)

    def text(self, value: str | None) -> str | None:
        # PostgreSQL text cannot hold NUL; what a record names is shown, not verified here.
        return None if value is None else value.replace("\x00", "\ufffd")


class PostgresDatabase(Database):
    """PostgresDatabase runs one component's transactions on a PostgreSQL connection."""

    def __init__(
        self,
        url: str,
        dialect: PostgresDialect,
        *,
        what: str,
        error: type[ProvgateError],
        connect_timeout: float = 10.0,
        lock_timeout: float = 30.0,
    ) -> None:
        """__init__ connects to ``url`` for the component ``what`` (named in messages).

        Raises ConfigError when psycopg is missing or the URL is bad, and
        ``error`` when the server cannot be reached.
        """
        require_psycopg(what)
        import psycopg

        self.where, self._secret = parse_url(url)
        self.dialect = dialect
        self.errors = (psycopg.Error,)
        self._dsn = url
        self._what = what
        self._error = error
        self._connect_timeout = connect_timeout
        self._lock_timeout = lock_timeout
        self._lock = threading.Lock()
        self._closed = False
        self._conn: psycopg.Connection[Any] | None = None
        self._connection()

    def message(self, exc: BaseException) -> str:
        """message is the text of ``exc`` without the URL's password."""
        return scrub(exc, self._secret)

    def _connection(self) -> psycopg.Connection[Any]:
        import psycopg

        if self._closed:
            raise psycopg.InterfaceError(f"{self.where} is closed")
        conn = self._conn
        if conn is not None and not conn.closed and not conn.broken:
            return conn
        conn = connect_session(
            self._dsn,
            where=f"the {self._what} {self.where}",
            secret=self._secret,
            error=self._error,
            connect_timeout=self._connect_timeout,
            lock_timeout=self._lock_timeout,
            synchronous_commit=True,  # every commit is durable
        )
        self._conn = conn
        return conn

    @contextlib.contextmanager
    def transaction(self, *, write: bool, durable: bool = False) -> Iterator[Tx]:  # noqa: ARG002
        # synchronous_commit is on for the connection: every commit is durable.
        import psycopg

        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN" if write else "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                yield Tx(conn, self.dialect)
                conn.execute("COMMIT")
            except BaseException:
                if conn.broken:
                    conn.close()  # the server rolled it back; reconnect next time
                elif not conn.closed:
                    with contextlib.suppress(psycopg.Error):
                        conn.execute("ROLLBACK")
                raise

    def is_busy(self, exc: BaseException) -> bool:
        # 55P03 lock_not_available (lock_timeout), 40P01 deadlock_detected
        return getattr(exc, "sqlstate", None) in {"55P03", "40P01"}

    def close(self) -> None:
        with self._lock:
            self._closed = True
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()

    def migrate(self, steps: Sequence[Sequence[str]], *, schema: str) -> None:
        """migrate applies the missing ``steps`` (SQLite's SQL) and checks ``meta.schema``.

        ``steps[v - 1]`` makes version ``v``; step 1 must create ``meta`` and
        insert its ``schema`` row. Raises ConfigError for a newer schema or a
        database whose ``meta`` is not this component's.
        """
        import psycopg

        dialect = self.dialect
        assert isinstance(dialect, PostgresDialect)
        table = dialect.table("schema_migrations")
        what = f"the {self._what} in {self.where}"
        with self._lock:
            conn = self._connection()
            try:
                if schema_version(conn, table) != len(steps):
                    with conn.transaction():
                        apply_migrations(
                            conn,
                            table=table,
                            steps=[[dialect.ddl(s) for s in step] for step in steps],
                            lock=_lock_key(table),
                            what=what,
                        )
                row = conn.execute(
                    f"SELECT value FROM {dialect.table('meta')} WHERE key = 'schema'"
                ).fetchone()
            except psycopg.errors.DuplicateTable as exc:
                raise ConfigError(
                    f"{self.where} holds {dialect.prefix}* tables that are not a provgate"
                    f" {self._what} (no {table} record): {self.message(exc)}"
                ) from exc
            except psycopg.Error as exc:
                raise self._error(
                    f"cannot open the {self._what} {self.where}: {self.message(exc)}"
                ) from exc
        if row is None or row[0] != schema:
            raise ConfigError(
                f"{self.where}: {dialect.table('meta')} is not a provgate {self._what}"
                f" (meta.schema is not {schema!r})"
            )


def open_database(
    url: str,
    *,
    prefix: str,
    migrations: Sequence[Sequence[str]],
    schema: str,
    what: str,
    error: type[ProvgateError],
    lock_timeout: float = 30.0,
) -> PostgresDatabase:
    """open_database connects one component (tables ``prefix*``) and migrates its schema.

    ``migrations`` are its steps in SQLite's SQL (:meth:`PostgresDatabase.migrate`);
    ``what`` names it in messages; ``error`` is raised when the server cannot be reached.
    """
    dialect = PostgresDialect(prefix, [ddl for step in migrations for ddl in step])
    db = PostgresDatabase(url, dialect, what=what, error=error, lock_timeout=lock_timeout)
    try:
        db.migrate(migrations, schema=schema)
    except BaseException:
        db.close()
        raise
    return db


def _lock_key(table: str) -> int:
    """_lock_key is the advisory-lock key serializing migrations of ``table``'s component."""
    return int.from_bytes(hashlib.sha256(table.encode()).digest()[:8], "big", signed=True)
