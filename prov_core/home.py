"""``$PROVGATE_HOME``: where the embedded defaults live.

Layout (created by :func:`init_home`, idempotently)::

    $PROVGATE_HOME/            default ./.provgate, mode 0700
      config.json              {"version": 1, "origin": "...", "ledger": "ledger.sqlite"}
      trust.json               the trust store (which keys may sign what)
      keys/                    mode 0700; KEYID.pem, mode 0600 (PKCS#8 Ed25519)
      ledger.sqlite            the append-only Merkle log (SQLite, WAL)
      index.sqlite             content index: BLAKE3 -> covering records, commit ->
                               snapshot record (prov_core.content_index; a locator)
      lineage.sqlite           lineage index: record -> the records it was made from
                               (prov_core.lineage_index; a cache rebuilt from the ledger)
      store/                   the embedded snapshot store (prov_core.snapshots.local)

When the ledger is on PostgreSQL (``PROVGATE_LEDGER_URL``, or a
``postgresql://`` URL as config ``ledger``), so are the content index, the
lineage index and the snapshot store's refs, commits and staging, each in
its own prefixed tables of that database (``ledger_``, ``content_``,
``lineage_``, ``store_``; docs/scaling.md): the home's ``*.sqlite`` files are
not created, and every worker pointed at the URL shares one truth. The
store's blobs stay under ``store/objects/``, which the workers then share.

``origin`` names the log in its checkpoints (C2SP tlog-checkpoint origin line)
and is the signed-note key name of every key of this home. The signing key is
the newest active key of the trust store held in ``keys/`` (the store may also
trust other parties' keys), unless ``PROVGATE_SIGNING_KEY`` holds a PEM key
(how an orchestrator's secret store hands a worker its key); such a key must
be in the trust store to produce records that verify.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prov_core._fs import write_atomic
from prov_core._pg_session import is_postgres_url
from prov_core.errors import ConfigError, KeyStoreError

if TYPE_CHECKING:
    from prov_core.content_index import ContentIndex
    from prov_core.ledger.base import Ledger
    from prov_core.lineage_index import LineageIndex
    from prov_core.sample_store import SampleStore
    from prov_core.signing import Ed25519Signer
    from prov_core.snapshots.local import LocalStore
    from prov_core.trust import TrustStore

__all__ = ["CONFIG_VERSION", "Home", "default_home_path", "init_home", "open_home"]

CONFIG_VERSION = 1
_CONFIG = "config.json"
_TRUST = "trust.json"
_KEYS = "keys"
_LEDGER = "ledger.sqlite"
_INDEX = "index.sqlite"
_LINEAGE = "lineage.sqlite"
_STORE = "store"


def default_home_path() -> Path:
    """``$PROVGATE_HOME`` if set, else ``./.provgate``."""
    return Path(os.environ.get("PROVGATE_HOME") or ".provgate")


@dataclass
class Home:
    """An opened ``$PROVGATE_HOME``: its config, trust store, signer and ledger."""

    path: Path
    origin: str
    ledger_name: str

    @property
    def trust_path(self) -> Path:
        return self.path / _TRUST

    @property
    def keys_dir(self) -> Path:
        return self.path / _KEYS

    @property
    def ledger_path(self) -> Path:
        return self.path / self.ledger_name

    @property
    def index_path(self) -> Path:
        return self.path / _INDEX

    @property
    def lineage_path(self) -> Path:
        return self.path / _LINEAGE

    @property
    def store_path(self) -> Path:
        return self.path / _STORE

    def open_index(self) -> ContentIndex:
        """Open (creating if needed) the content index of this home."""
        from prov_core.content_index import ContentIndex

        return ContentIndex(self.ledger_url or self.index_path)

    def open_samples(self) -> SampleStore:
        """The store of ingests' sorted sample ids (``samples/``, see prov_core.sample_store)."""
        from prov_core.sample_store import SAMPLES_DIR, SampleStore

        return SampleStore(self.path / SAMPLES_DIR)

    def open_lineage_index(self) -> LineageIndex:
        """Open (creating if needed) the lineage index of this home (not caught up)."""
        from prov_core.lineage_index import LineageIndex

        return LineageIndex(self.ledger_url or self.lineage_path)

    def open_store(self) -> LocalStore:
        """Open (creating if needed) the embedded snapshot store of this home."""
        from prov_core.snapshots.local import LocalStore

        return LocalStore(self.store_path, database=self.ledger_url)

    def trust(self) -> TrustStore:
        """Load the trust store (fresh from disk each call)."""
        from prov_core.trust import TrustStore

        return TrustStore.load(self.trust_path)

    @cached_property
    def signer(self) -> Ed25519Signer:
        """The signing key: ``PROVGATE_SIGNING_KEY`` (PEM) or the active key in ``keys/``."""
        from prov_core import signing

        if os.environ.get("PROVGATE_SIGNING_KEY"):
            return signing.signer_from_env()
        active = self.own_keyid()
        if active is None:
            raise KeyStoreError(
                f"no active signing key of {self.trust_path} is held in {self.keys_dir}; "
                "run `provgate keys rotate`"
            )
        return signing.load_signer(self.keys_dir / f"{active}.pem")

    def own_keyid(self) -> str | None:
        """The newest active key of the trust store whose private key is in ``keys/``, or None.

        The trust store also holds other parties' public keys (workers handed
        their key through ``PROVGATE_SIGNING_KEY``, federated clients) whose
        records this home verifies; only a key held here signs for the home.
        """
        held = [
            e.keyid
            for e in self.trust().entries()
            if e.status == "active" and (self.keys_dir / f"{e.keyid}.pem").is_file()
        ]
        return held[-1] if held else None

    @property
    def ledger_url(self) -> str | None:
        """The PostgreSQL ledger's URL: ``PROVGATE_LEDGER_URL``, or config ``ledger`` if a URL.

        None means the embedded SQLite ledger at :attr:`ledger_path`. Keep
        passwords in the environment (or ``~/.pgpass``), not in config.json.
        The indexes and the store's metadata live in the same database.
        """
        url = os.environ.get("PROVGATE_LEDGER_URL") or self.ledger_name
        return url if is_postgres_url(url) else None

    @property
    def ledger_sequencer(self) -> str | None:
        """The sequencer's ``host:port`` (``PROVGATE_LEDGER_SEQUENCER``), or None.

        Only with a PostgreSQL ledger: appends then go through the sequencer
        (:mod:`prov_core.ledger.sequencer`; docs/scaling.md).
        """
        address = os.environ.get("PROVGATE_LEDGER_SEQUENCER", "").strip()
        return address or None

    def open_ledger(self, *, sequenced: bool = True) -> Ledger:
        """Open the ledger (a PostgreSQL schema is migrated on opening).

        With ``PROVGATE_LEDGER_SEQUENCER`` set and a PostgreSQL ledger, a
        :class:`~prov_core.ledger.sequencer.SequencedLedger` (unless
        ``sequenced`` is False: the sequencer itself opens it so).
        """
        url = self.ledger_url
        if url is not None:
            from prov_core.ledger.postgres import PostgresLedger

            address = self.ledger_sequencer if sequenced else None
            if address is not None:
                from prov_core.ledger.sequencer import SequencedLedger

                return SequencedLedger(url, self.origin, _LazyNoteSigner(self), sequencer=address)
            return PostgresLedger(url, origin=self.origin, note_signer=_LazyNoteSigner(self))
        from prov_core.ledger.sqlite import SQLiteLedger

        return SQLiteLedger(self.ledger_path, origin=self.origin, note_signer=_LazyNoteSigner(self))

    def note_signer(self) -> Any:
        """The signed-note key that signs this home's checkpoints."""
        from prov_core.ledger.checkpoint import NoteSigner

        return NoteSigner(self.origin, self.signer.private_key)

    def note_verifiers(self) -> list[Any]:
        """A note verifier for every key in the trust store that is not revoked."""
        from prov_core.ledger.checkpoint import NoteVerifier

        return [
            NoteVerifier(self.origin, entry.public_key)
            for entry in self.trust().entries()
            if entry.status != "revoked"
        ]


class _LazyNoteSigner:
    """_LazyNoteSigner loads the home's signing key at the first checkpoint it signs.

    So reading a ledger (verify, trace, the web view) never needs the private
    key: a read-only process can run where the key file is not readable.
    """

    def __init__(self, home: Home) -> None:
        self._home = home
        self._signer: Any = None

    def sign_note(self, text: bytes) -> bytes:
        if self._signer is None:
            self._signer = self._home.note_signer()
        return bytes(self._signer.sign_note(text))


def _read_config(path: Path) -> dict[str, Any]:
    file = path / _CONFIG
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"{path} is not a provgate home (no {_CONFIG}); run `provgate init` "
            "or set PROVGATE_HOME"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read {file}: {exc.strerror}") from exc
    try:
        config = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file} is corrupt (not JSON): {exc}") from exc
    if (
        not isinstance(config, dict)
        or config.get("version") != CONFIG_VERSION
        or not isinstance(config.get("origin"), str)
        or not isinstance(config.get("ledger"), str)
    ):
        raise ConfigError(
            f"{file} is corrupt: expected version {CONFIG_VERSION} with origin and ledger"
        )
    return config


def open_home(path: Path | None = None) -> Home:
    """Open an existing home, or raise :class:`ConfigError` saying how to create one."""
    path = path or default_home_path()
    config = _read_config(path)
    home = Home(path=path, origin=config["origin"], ledger_name=config["ledger"])
    if not home.trust_path.exists():
        raise ConfigError(f"{home.trust_path} is missing; the home at {path} is incomplete")
    return home


def init_home(path: Path | None = None) -> tuple[Home, bool]:
    """Create a home with a signing key, trust store and empty ledger; idempotent.

    Returns the home and whether anything was created. An existing complete home is
    left as it is; a half-created one (e.g. interrupted) is completed.
    """
    from prov_core import signing
    from prov_core.trust import TrustStore

    path = path or default_home_path()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{path} exists and is not a directory")
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the provgate home {path}: {exc.strerror}") from exc
    with _init_lock(path):  # processes creating the same home at once make one home
        created = False
        if not (path / _CONFIG).exists():
            config: dict[str, Any] = {
                "version": CONFIG_VERSION,
                "origin": f"provgate.local/{secrets.token_hex(8)}",
                "ledger": _LEDGER,
            }
            write_atomic(path / _CONFIG, json.dumps(config, indent=2).encode() + b"\n")
            created = True
        stored = _read_config(path)
        home = Home(path=path, origin=stored["origin"], ledger_name=stored["ledger"])
        home.keys_dir.mkdir(mode=0o700, exist_ok=True)
        if not home.trust_path.exists():
            signer = signing.generate_key(home.keys_dir)
            store = TrustStore.empty()
            store.add(signer, note_name=home.origin)
            store.save(home.trust_path)
            created = True
        ledger_existed = home.ledger_url is not None or home.ledger_path.exists()
        if home.ledger_url is not None or not ledger_existed:  # create (or migrate) it
            home.open_ledger().close()
        if home.ledger_url is not None:  # apply the other components' migrations too
            home.open_index().close()
            home.open_lineage_index().close()
            home.open_store().close()
    return home, created or not ledger_existed


@contextmanager
def _init_lock(path: Path) -> Iterator[None]:
    """_init_lock holds an exclusive lock on ``path/.init.lock`` (POSIX flock; no-op elsewhere)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    try:
        fd = os.open(path / ".init.lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise ConfigError(f"cannot lock the provgate home {path}: {exc.strerror}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
