"""PostgreSQL sessions, shared by the ledger and the home's other components.

:func:`mask_url` and :func:`parse_url` name a database without its password,
and :func:`scrub` removes the password from a driver's error; the password of
a URL is never shown. :func:`require_psycopg` says how to install the driver,
:func:`connect_session` opens an autocommit connection with provgate's session
settings, and :func:`apply_migrations` brings a schema to its newest version:
a ``schema_migrations`` table records each applied step, under an advisory
lock so concurrent openers do not race, and a schema newer than the code is
refused naming both versions.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from prov_core.errors import ConfigError, InputError

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "apply_migrations",
    "connect_session",
    "is_postgres_url",
    "mask_url",
    "parse_url",
    "require_psycopg",
    "schema_version",
    "scrub",
]

_PASSWORD_KV = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def mask_url(url: str) -> str:
    """mask_url returns ``url`` with its password replaced by ``***``.

    Handles both URL (``postgresql://user:pw@host/db?password=pw``) and
    key/value (``host=h password=pw``) connection strings.
    """
    if "://" not in url:
        return _PASSWORD_KV.sub(r"\1***", url)
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if parts.password is not None:
            userinfo, _, hostport = netloc.rpartition("@")
            user = userinfo.partition(":")[0]
            netloc = f"{user}:***@{hostport}"
        query = re.sub(r"(?i)(^|&)(password=)[^&]*", r"\1\2***", parts.query)
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return "<unparsable PostgreSQL URL>"


def connect_session(
    dsn: str,
    *,
    where: str,
    secret: str | None,
    error: Callable[[str], Exception],
    connect_timeout: float,
    lock_timeout: float,
    synchronous_commit: bool,
) -> psycopg.Connection[Any]:
    """connect_session opens an autocommit connection to ``dsn`` with provgate's session settings.

    ``where`` names the database in messages (masked); ``secret``, the URL's
    password, is scrubbed from driver errors. A URL psycopg rejects raises ConfigError; a
    server that cannot be reached or set up raises ``error(message)``.
    """
    import psycopg

    try:
        conn = psycopg.connect(
            dsn,
            autocommit=True,
            connect_timeout=max(1, round(connect_timeout)),
            application_name="provgate",
        )
    except psycopg.ProgrammingError as exc:
        raise ConfigError(f"bad PostgreSQL URL {where}: {scrub(exc, secret)}") from exc
    except psycopg.Error as exc:
        raise error(f"cannot connect to {where}: {scrub(exc, secret)}") from exc
    commit = "on" if synchronous_commit else "off"
    try:
        conn.execute(
            f"SET lock_timeout = {int(lock_timeout * 1000)}; SET synchronous_commit = {commit}"
        )
    except psycopg.Error as exc:
        conn.close()
        raise error(f"cannot set up {where}: {scrub(exc, secret)}") from exc
    return conn


def is_postgres_url(location: object) -> bool:
    """is_postgres_url tells whether ``location`` is a ``postgresql://`` or ``postgres://`` URL."""
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def require_psycopg(what: str) -> None:
    """require_psycopg raises ConfigError, saying how to install it, when psycopg 3 is missing."""
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            f"the {what} on PostgreSQL needs psycopg 3; install it with:"
            " pip install 'provgate[postgres]'"
        ) from exc


def parse_url(url: str) -> tuple[str, str | None]:
    """parse_url returns ``url`` masked (to name it) and its password (to :func:`scrub`).

    ConfigError when psycopg cannot parse the connection string.
    """
    import psycopg.conninfo

    where = mask_url(url)
    try:
        password = psycopg.conninfo.conninfo_to_dict(url).get("password")
    except psycopg.Error as exc:
        raise ConfigError(f"bad PostgreSQL URL {where}: {scrub(exc, None)}") from exc
    return where, None if password is None else str(password)


def scrub(exc: BaseException | str, secret: str | None) -> str:
    """scrub returns the text of ``exc`` with the password ``secret`` replaced by ``***``."""
    text = str(exc).strip()
    if secret:
        text = text.replace(secret, "***")
    return text


def _exists(conn: psycopg.Connection[Any], table: str) -> bool:
    """_exists tells whether ``table`` is on the search path, as the statement's snapshot sees it.

    Read from pg_tables, not with ``to_regclass``: the backend's catalog cache
    may still hold "no such table" from before it waited for the migration
    lock, while another connection created it.
    """
    row = conn.execute(
        "SELECT EXISTS (SELECT FROM pg_catalog.pg_tables"
        " WHERE schemaname = ANY(current_schemas(false)) AND tablename = %s)",
        (table,),
    ).fetchone()
    return bool(row and row[0])


def schema_version(conn: psycopg.Connection[Any], table: str) -> int:
    """schema_version is the highest migration recorded in ``table`` (0: none, or no table)."""
    return _max_version(conn, table) if _exists(conn, table) else 0


def _max_version(conn: psycopg.Connection[Any], table: str) -> int:
    row = conn.execute(f"SELECT max(version) FROM {table}").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def apply_migrations(
    conn: psycopg.Connection[Any],
    *,
    table: str,
    steps: Sequence[Sequence[str]],
    lock: int,
    what: str,
) -> int:
    """apply_migrations brings a schema to version ``len(steps)`` inside the open transaction.

    Takes the advisory lock ``lock`` (so concurrent openers wait for one
    another), creates ``table`` if missing, reads the highest applied version,
    refuses a newer one than ``steps`` know (ConfigError naming ``what`` and
    both versions), then runs and records each missing step in order. Returns
    the version found. A failing step raises and the caller's transaction
    rolls back: the schema stays as it was.
    """
    if not re.fullmatch(r"[a-z_]+", table):
        raise InputError(f"migration table name {table!r} is not a plain identifier")
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock,))
    # Checked before creating: a role that may write but not create tables
    # (PostgreSQL 15's default on schema public) still opens a migrated schema.
    if not _exists(conn, table):
        conn.execute(
            f"CREATE TABLE {table} (version INTEGER PRIMARY KEY,"
            " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
    found = _max_version(conn, table)
    newest = len(steps)
    if found > newest:
        raise ConfigError(
            f"{what} has schema version {found}, newer than version {newest} this"
            " provgate knows: upgrade provgate"
        )
    for version in range(found + 1, newest + 1):
        for ddl in steps[version - 1]:
            conn.execute(ddl)
        conn.execute(f"INSERT INTO {table} (version) VALUES (%s)", (version,))
    return found
