"""LakeFSStore: the SnapshotStore protocol on a real lakeFS, through lakefs-sdk.

Connection settings are lakectl's::

    LAKECTL_SERVER_ENDPOINT_URL             http://host:8000 or http://host:8000/api/v1
    LAKECTL_CREDENTIALS_ACCESS_KEY_ID       the access key id
    LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY   the secret access key
    PROVGATE_LAKEFS_STORAGE_NAMESPACE       root under which create_repository puts a
                                            repository's data (default local://provgate)

or explicit arguments to :class:`LakeFSStore`. Credentials are held only by the
SDK's configuration: they appear in no repr, log line or error message.

Integrity. lakeFS's object ``checksum`` is the MD5 of the content for
server-side uploads but a client-supplied ETag for presigned or linked
uploads: not a strong hash. :meth:`LakeFSStore.write` therefore computes the
content's BLAKE3 and size itself and stores them as object user metadata
(``provgate-blake3``, ``provgate-size``; lakeFS carries user metadata as
``X-Lakefs-Meta-*`` upload headers and keeps it per object version, so an old
commit keeps its old digest). :meth:`LakeFSStore.read` re-hashes what it
receives and raises :class:`~prov_core.errors.IntegrityError` when the
digest is missing or differs. Those two keys are reserved and left out of
:attr:`ObjectStat.metadata`, which holds the caller's metadata exactly.

User metadata travels as HTTP headers, so keys must be lowercase
``[a-z0-9-]`` (lakeFS lowercases them) and at most 8 KiB in all; values that
are not plain printable ASCII (non-ASCII, control characters, surrounding
spaces, or anything starting ``=?``) are sent RFC 2047-encoded
(``=?utf-8?b?BASE64?=``, as S3 does) and decoded again on stat/list. The
digest beside the object only shows the bytes are the bytes that were
written; that they are the bytes that were *attested* is the signed
manifest's job (the gate checks both).

Errors. Every lakefs-sdk, urllib3 and pydantic exception is mapped
(``raise ... from``)::

    404                                  NotFoundError  (names the repository/ref/path)
    400, 409, 412, 416                   InputError     (the server's message attached)
    401, 403                             StoreError     (credentials or policies: the fix named)
    429, 5xx, connection refused,
    timeouts, broken responses           StoreError     (the gate fails closed on these)

Ref resolution is lakeFS's own (``commits_api.get_commit`` dereferences a
commit id, branch, ``branch@``, tag or unique prefix). lakeFS reports an
ambiguous commit-id prefix as "not found": it names no candidates.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar, TypeVar
from urllib.parse import urlsplit, urlunsplit

from prov_core.errors import InputError, IntegrityError, NotFoundError, StoreError
from prov_core.snapshots.base import (
    MAX_LIST_AMOUNT,
    Commit,
    DiffEntry,
    ObjectPage,
    ObjectStat,
    check_path,
    is_commit_id,
)

if TYPE_CHECKING:
    from lakefs_sdk.client import LakeFSClient
    from lakefs_sdk.exceptions import ApiException
    from lakefs_sdk.models.object_stats import ObjectStats

__all__ = [
    "DEFAULT_STORAGE_NAMESPACE_ROOT",
    "ENV_ACCESS_KEY_ID",
    "ENV_ENDPOINT",
    "ENV_SECRET_ACCESS_KEY",
    "ENV_STORAGE_NAMESPACE",
    "METADATA_BLAKE3",
    "METADATA_SIZE",
    "LakeFSStore",
    "api_endpoint",
]

ENV_ENDPOINT = "LAKECTL_SERVER_ENDPOINT_URL"
ENV_ACCESS_KEY_ID = "LAKECTL_CREDENTIALS_ACCESS_KEY_ID"
ENV_SECRET_ACCESS_KEY = "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY"  # noqa: S105 (a variable name)
ENV_STORAGE_NAMESPACE = "PROVGATE_LAKEFS_STORAGE_NAMESPACE"
DEFAULT_STORAGE_NAMESPACE_ROOT = "local://provgate"

METADATA_BLAKE3 = "provgate-blake3"
"""METADATA_BLAKE3 is the user-metadata key holding the BLAKE3 (hex) of an object's content."""
METADATA_SIZE = "provgate-size"
"""METADATA_SIZE is the user-metadata key holding an object's size in bytes (decimal)."""
_RESERVED = frozenset({METADATA_BLAKE3, METADATA_SIZE})

_API_BASE = "/api/v1"
_META_HEADER = "X-Lakefs-Meta-"
# lakeFS lowercases user-metadata keys (they travel as HTTP header names) and
# proxies drop headers with underscores: accept only keys that round-trip.
_META_KEY = re.compile(r"[a-z0-9][a-z0-9-]{0,127}")
_META_VALUE = re.compile(r"[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?|")
_MAX_META_BYTES = 8192
_REPO = re.compile(r"[a-z0-9][a-z0-9-]{2,62}")  # lakeFS ReValidRepositoryID
_BRANCH = re.compile(r"\w[-\w]*")  # lakeFS ReValidBranchID
_MAX_MESSAGE = 300
_BAD_REF_CHARS = frozenset(" \t\n\r~^:?*[\\$")
# Values that are not plain printable ASCII travel RFC 2047-encoded, as S3
# does for user metadata; so does any value that merely looks encoded.
_ENCODED_WORD = re.compile(r"=\?utf-8\?b\?([A-Za-z0-9+/]*={0,2})\?=")

_T = TypeVar("_T")
_M = TypeVar("_M")


def api_endpoint(url: str) -> str:
    """api_endpoint returns lakeFS's API base URL for ``url``, as lakectl reads it.

    ``http://host:8000``, ``http://host:8000/`` and ``http://host:8000/api/v1``
    all give ``http://host:8000/api/v1``; a path prefix (a proxy) is kept.
    A URL carrying credentials (``user:pass@``) is refused: credentials go in
    their own settings, never in a URL that ends up in messages.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(
            f"lakeFS endpoint {url!r} must be an http:// or https:// URL "
            f"(set {ENV_ENDPOINT}, e.g. http://127.0.0.1:8000)"
        )
    if parts.username is not None or parts.password is not None:
        raise InputError(
            "lakeFS endpoint must not carry credentials in the URL: set "
            f"{ENV_ACCESS_KEY_ID} and {ENV_SECRET_ACCESS_KEY} instead"
        )
    if parts.query or parts.fragment:
        raise InputError(f"lakeFS endpoint {url!r} must have no query or fragment")
    path = parts.path.rstrip("/")
    if not path.endswith(_API_BASE):
        path += _API_BASE
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _check_repo(repo: str) -> None:
    if not _REPO.fullmatch(repo):
        raise InputError(f"lakeFS repository {repo!r} must match {_REPO.pattern}")


def _check_ref(ref: str) -> None:
    """_check_ref refuses what provgate never passes as a ref (SnapshotURI's rules).

    lakeFS's ``~N``/``^N``/``$`` modifiers are refused too: a provenance
    record names commits, branches or tags, never positions relative to them.
    """
    if not ref or len(ref) > 1024 or any(c in _BAD_REF_CHARS or not c.isprintable() for c in ref):
        raise InputError(
            f"malformed ref {ref!r}: expected a commit id, branch, 'branch@' or tag, "
            "without whitespace or any of ~^:?*[\\"
        )
    if "@" in ref[:-1]:
        raise InputError(f"malformed ref {ref!r}: '@' may only end a branch name")


def _check_branch(branch: str) -> None:
    if not _BRANCH.fullmatch(branch):
        raise InputError(f"lakeFS branch {branch!r} must match {_BRANCH.pattern}")


def _check_str_map(what: str, metadata: Mapping[str, str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in (metadata or {}).items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise InputError(f"{what} must map str to str, got {key!r}: {value!r}")
        out[key] = value
    return out


def _encode_value(value: str) -> str:
    if _META_VALUE.fullmatch(value) and not value.startswith("=?"):
        return value
    return "=?utf-8?b?" + base64.b64encode(value.encode("utf-8")).decode("ascii") + "?="


def _decode_value(value: str) -> str:
    match = _ENCODED_WORD.fullmatch(value)
    if match is None:
        return value
    try:
        return base64.b64decode(match.group(1), validate=True).decode("utf-8")
    except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
        return value


def _object_headers(
    metadata: Mapping[str, str] | None, blake3_hex: str, size: int
) -> dict[str, str]:
    """_object_headers turns user metadata plus provgate's digests into upload headers."""
    user = _check_str_map("object metadata", metadata)
    headers: dict[str, str] = {}
    total = 0
    for key, value in user.items():
        if key in _RESERVED:
            raise InputError(f"object metadata key {key!r} is reserved for provgate's own digest")
        if not _META_KEY.fullmatch(key):
            raise InputError(
                f"object metadata key {key!r} must match {_META_KEY.pattern} "
                "(lakeFS carries it as an HTTP header name and lowercases it)"
            )
        encoded = _encode_value(value)
        total += len(key) + len(encoded)
        headers[_META_HEADER + key] = encoded
    if total > _MAX_META_BYTES:
        raise InputError(
            f"object metadata is {total} bytes encoded; the limit is {_MAX_META_BYTES}"
        )
    headers[_META_HEADER + METADATA_BLAKE3] = blake3_hex
    headers[_META_HEADER + METADATA_SIZE] = str(size)
    return headers


def _model(cls: type[_M], data: dict[str, Any]) -> _M:
    """_model builds an SDK request model, turning its validation errors into InputError."""
    try:
        model: _M = cls.from_dict(data)  # type: ignore[attr-defined]
    except ValueError as exc:  # pydantic's ValidationError
        raise InputError(f"lakeFS would refuse {data!r}: {exc}") from exc
    return model


def _server_message(exc: ApiException) -> str:
    """_server_message is the ``message`` of lakeFS's Error body, shortened; never headers."""
    body = exc.body
    if isinstance(body, bytes | bytearray):
        body = bytes(body).decode("utf-8", "replace")
    message = ""
    if isinstance(body, str) and body:
        try:
            decoded = json.loads(body)
        except ValueError:
            message = body
        else:
            message = str(decoded.get("message", "")) if isinstance(decoded, dict) else body
    message = " ".join(message.split()) or str(exc.reason or "")
    return message[:_MAX_MESSAGE]


def _connection_reason(exc: BaseException) -> str:
    """_connection_reason says in a few words why urllib3 could not talk to lakeFS."""
    import urllib3.exceptions as u3

    reason: BaseException = exc
    if isinstance(exc, u3.MaxRetryError) and exc.reason is not None:
        reason = exc.reason
    cause = reason.__cause__ or reason.__context__
    if isinstance(reason, u3.NewConnectionError):  # a ConnectTimeoutError subclass, too
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror.lower()
        return "cannot connect"
    if isinstance(reason, u3.ConnectTimeoutError):
        return "connection timed out"
    if isinstance(reason, u3.ReadTimeoutError | TimeoutError):
        return "no response in time"
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror.lower()
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror.lower()
    if isinstance(reason, u3.ProtocolError):
        return "connection broken"
    return type(reason).__name__


class LakeFSStore:
    """LakeFSStore is a :class:`~prov_core.snapshots.base.SnapshotStore` on lakeFS.

    ``endpoint`` is lakeFS's URL, with or without ``/api/v1``;
    ``storage_namespace_root`` is where :meth:`create_repository` puts a new
    repository's data (``ROOT/REPO``). ``timeout`` bounds connecting and each
    wait for a response (seconds); idempotent requests are retried
    ``retries`` times on connection failures. Use as a context manager, or
    call :meth:`close`, to release pooled connections.
    """

    kind: ClassVar[str] = "lakefs"
    scheme: ClassVar[str] = "lakefs"

    def __init__(
        self,
        endpoint: str,
        access_key_id: str,
        secret_access_key: str,
        *,
        storage_namespace_root: str = DEFAULT_STORAGE_NAMESPACE_ROOT,
        timeout: float = 30.0,
        retries: int = 2,
    ) -> None:
        self.endpoint = api_endpoint(endpoint)
        if not access_key_id or not secret_access_key:
            raise InputError(
                f"lakeFS credentials are missing: set {ENV_ACCESS_KEY_ID} and "
                f"{ENV_SECRET_ACCESS_KEY}"
            )
        if timeout <= 0 or retries < 0:
            raise InputError("timeout must be positive and retries non-negative")
        self.storage_namespace_root = storage_namespace_root.rstrip("/")
        self._timeout = timeout
        try:
            from lakefs_sdk.client import LakeFSClient
            from lakefs_sdk.configuration import Configuration
            from urllib3.util.retry import Retry
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise InputError(
                "the lakeFS backend needs lakefs-sdk: pip install 'provgate[lakefs]'"
            ) from exc
        config = Configuration(
            host=self.endpoint, username=access_key_id, password=secret_access_key
        )
        config.retries = Retry(  # type: ignore[assignment]  # the SDK annotates it None
            total=retries,
            connect=retries,
            read=retries,
            status=0,
            backoff_factor=0.1,
            allowed_methods=frozenset({"GET", "HEAD"}),
            raise_on_status=False,
        )
        self._client: LakeFSClient = LakeFSClient(config)  # type: ignore[no-untyped-call]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **kwargs: Any) -> LakeFSStore:
        """from_env builds a store from lakectl's environment variables (module docstring)."""
        env = os.environ if environ is None else environ
        missing = [
            name
            for name in (ENV_ENDPOINT, ENV_ACCESS_KEY_ID, ENV_SECRET_ACCESS_KEY)
            if not env.get(name)
        ]
        if missing:
            raise InputError(f"lakeFS is not configured: set {', '.join(missing)}")
        kwargs.setdefault(
            "storage_namespace_root",
            env.get(ENV_STORAGE_NAMESPACE) or DEFAULT_STORAGE_NAMESPACE_ROOT,
        )
        return cls(env[ENV_ENDPOINT], env[ENV_ACCESS_KEY_ID], env[ENV_SECRET_ACCESS_KEY], **kwargs)

    def __repr__(self) -> str:
        return f"LakeFSStore(endpoint={self.endpoint!r})"

    def close(self) -> None:
        """close releases pooled connections; the store can still be used afterwards."""
        self._client.objects_api.api_client.rest_client.pool_manager.clear()

    def __enter__(self) -> LakeFSStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- error mapping ---------------------------------------------------------------

    def _call(self, what: str, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        """_call runs one SDK call, mapping every failure to a provgate error about ``what``."""
        import urllib3.exceptions
        from lakefs_sdk import exceptions as sdk

        try:
            return fn(*args, _request_timeout=self._timeout, **kwargs)
        except sdk.ApiException as exc:
            raise self._status_error(what, exc) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise StoreError(
                f"cannot reach lakeFS at {self.endpoint} ({_connection_reason(exc)}) while "
                f"{what}: check {ENV_ENDPOINT} and that lakeFS is running"
            ) from exc
        except sdk.OpenApiException as exc:
            raise StoreError(f"lakeFS client refused the request while {what}: {exc}") from exc
        except ValueError as exc:  # pydantic models: a response the SDK cannot parse
            raise StoreError(
                f"lakeFS at {self.endpoint} sent a response that does not match its API "
                f"while {what}"
            ) from exc
        except OSError as exc:
            raise StoreError(
                f"cannot reach lakeFS at {self.endpoint} ({(exc.strerror or str(exc)).lower()}) "
                f"while {what}"
            ) from exc

    def _status_error(self, what: str, exc: ApiException) -> Exception:
        status = int(exc.status or 0)
        message = _server_message(exc)
        if status == 404:
            return NotFoundError(f"{what}: not found (lakeFS: {message})")
        if status == 401:
            return StoreError(
                f"lakeFS at {self.endpoint} rejected the credentials (401: {message}) while "
                f"{what}: check {ENV_ACCESS_KEY_ID} and {ENV_SECRET_ACCESS_KEY}"
            )
        if status == 403:
            return StoreError(
                f"lakeFS at {self.endpoint} does not permit {what} for these credentials "
                f"(403: {message}): check the user's lakeFS policies"
            )
        if status in (400, 409, 412, 416, 422):
            return InputError(f"{what}: lakeFS refused it ({status}: {message})")
        return StoreError(
            f"lakeFS at {self.endpoint} failed while {what} ({status or 'no status'}: {message})"
        )

    # -- the SnapshotStore protocol ------------------------------------------------------

    def create_repository(
        self, repo: str, default_branch: str = "main", *, storage_namespace: str | None = None
    ) -> None:
        """create_repository creates ``repo`` with its data under ``storage_namespace``.

        The namespace defaults to ``storage_namespace_root/repo``; lakeFS refuses
        a namespace another repository used.
        """
        from lakefs_sdk.models.repository_creation import RepositoryCreation

        _check_repo(repo)
        _check_branch(default_branch)
        namespace = storage_namespace or f"{self.storage_namespace_root}/{repo}"
        self._call(
            f"creating repository lakefs://{repo} in {namespace}",
            self._client.repositories_api.create_repository,
            _model(
                RepositoryCreation,
                {"name": repo, "storage_namespace": namespace, "default_branch": default_branch},
            ),
        )

    def create_branch(self, repo: str, name: str, source: str) -> str:
        """create_branch creates branch ``name`` at ``source``; returns its commit id."""
        from lakefs_sdk.models.branch_creation import BranchCreation

        _check_repo(repo)
        _check_branch(name)
        _check_ref(source)
        created = self._call(
            f"creating branch {name!r} from lakefs://{repo}/{source}",
            self._client.branches_api.create_branch,
            repo,
            _model(BranchCreation, {"name": name, "source": source}),
        )
        # lakeFS answers with the commit id as text; a client may have decoded it as JSON.
        created = str(created).strip()
        return created if is_commit_id(created) else self.resolve(repo, name)

    def resolve(self, repo: str, ref: str) -> str:
        """resolve returns the full commit id ``ref`` points at (lakeFS resolves it)."""
        return self.get_commit(repo, ref).id

    def get_commit(self, repo: str, ref: str) -> Commit:
        """get_commit returns the commit ``ref`` (commit id, branch, ``branch@``, tag) names."""
        _check_repo(repo)
        _check_ref(ref)
        got = self._call(
            f"resolving ref lakefs://{repo}/{ref}",
            self._client.commits_api.get_commit,
            repo,
            ref,
        )
        if not is_commit_id(got.id):
            raise StoreError(
                f"lakeFS returned {got.id!r} for lakefs://{repo}/{ref}: not a commit id"
            )
        return Commit(
            id=got.id,
            parents=tuple(got.parents),
            message=got.message,
            metadata=dict(got.metadata or {}),
            creation_date=int(got.creation_date),
            committer=got.committer,
        )

    def list_objects(
        self, repo: str, ref: str, prefix: str = "", after: str = "", amount: int = 1000
    ) -> ObjectPage:
        """list_objects returns one page of objects at ``ref`` in path order after ``after``."""
        _check_repo(repo)
        _check_ref(ref)
        if not 1 <= amount <= MAX_LIST_AMOUNT:
            raise InputError(f"amount {amount} must be 1..{MAX_LIST_AMOUNT}")
        page = self._call(
            f"listing lakefs://{repo}/{ref}/{prefix}",
            self._client.objects_api.list_objects,
            repo,
            ref,
            user_metadata=True,
            prefix=prefix or None,
            after=after or None,
            amount=amount,
        )
        results = [self._stat(s) for s in page.results if s.path_type == "object"]
        return ObjectPage(
            results=results,
            has_more=bool(page.pagination.has_more),
            next_after=page.pagination.next_offset if page.pagination.has_more else "",
        )

    def stat(self, repo: str, ref: str, path: str) -> ObjectStat:
        """stat returns the object's stat at ``ref``, its user metadata included."""
        return self._stat(self._stat_object(repo, ref, path))

    def _stat_object(self, repo: str, ref: str, path: str) -> ObjectStats:
        _check_repo(repo)
        _check_ref(ref)
        check_path(path)
        return self._call(
            f"reading object lakefs://{repo}/{ref}/{path}",
            self._client.objects_api.stat_object,
            repo,
            ref,
            path,
            user_metadata=True,
        )

    def read(self, repo: str, ref: str, path: str) -> bytes:
        """read returns the object's bytes at ``ref`` after checking them against their digest.

        Raises IntegrityError when the object has no ``provgate-blake3``
        metadata (it was not written by provgate) or the bytes differ from it.
        On a branch (not a commit id) the stat and the read are two requests,
        so a concurrent writer can make a read fail; pinned reads cannot.
        """
        recorded = dict(self._stat_object(repo, ref, path).metadata or {})
        uri = f"lakefs://{repo}/{ref}/{path}"
        data = bytes(
            self._call(
                f"reading object {uri}", self._client.objects_api.get_object, repo, ref, path
            )
        )
        _verify(uri, recorded, data)
        return data

    def read_unverified(self, repo: str, ref: str, path: str) -> bytes:
        """read_unverified returns the object's bytes at ``ref`` without checking its metadata.

        For callers that check the bytes against a signed manifest themselves:
        an object written to the branch outside provgate has no digest
        metadata, and a snapshot must still hash (and name) it.
        """
        uri = f"lakefs://{repo}/{ref}/{path}"
        return bytes(
            self._call(
                f"reading object {uri}", self._client.objects_api.get_object, repo, ref, path
            )
        )

    def write(
        self,
        repo: str,
        branch: str,
        path: str,
        data: bytes | BinaryIO,
        metadata: Mapping[str, str] | None = None,
    ) -> ObjectStat:
        """write stages ``data`` at ``path`` on ``branch`` with its BLAKE3 and size as metadata."""
        from prov_core.digest import digest_bytes

        _check_repo(repo)
        _check_branch(branch)
        check_path(path)
        payload = bytes(data) if isinstance(data, bytes | bytearray | memoryview) else data.read()
        if not isinstance(payload, bytes):
            raise InputError(f"data for {path!r} must be bytes or a binary file")
        headers = _object_headers(metadata, digest_bytes(payload), len(payload))
        what = f"writing object lakefs://{repo}/{branch}/{path}"
        if payload:
            got = self._call(
                what,
                self._client.objects_api.upload_object,
                repo,
                branch,
                path,
                content=payload,
                _headers=headers,
            )
        else:
            got = self._call(what, self._upload_empty, repo, branch, path, headers)
        return self._stat(got)

    def _upload_empty(
        self,
        repo: str,
        branch: str,
        path: str,
        headers: Mapping[str, str],
        _request_timeout: float,
    ) -> ObjectStats:
        """_upload_empty uploads zero bytes as application/octet-stream.

        The SDK's ``upload_object`` drops an empty ``content`` and sends a
        multipart body without the part, which lakeFS rejects; the spec's
        other body type (octet-stream) carries an empty object fine.
        """
        api = self._client.objects_api.api_client
        result: ObjectStats = api.call_api(
            "/repositories/{repository}/branches/{branch}/objects",
            "POST",
            {"repository": repo, "branch": branch},
            [("path", path)],
            {
                **headers,
                "Accept": "application/json",
                "Content-Type": "application/octet-stream",
            },
            body=b"",
            response_types_map={"201": "ObjectStats"},
            auth_settings=["basic_auth"],
            _return_http_data_only=True,
            _request_timeout=_request_timeout,
        )
        return result

    def commit(
        self, repo: str, branch: str, message: str, metadata: Mapping[str, str] | None = None
    ) -> Commit:
        """commit commits ``branch``'s staged changes with ``metadata`` (``str -> str``)."""
        from lakefs_sdk.models.commit_creation import CommitCreation

        _check_repo(repo)
        _check_branch(branch)
        meta = _check_str_map("commit metadata", metadata)
        got = self._call(
            f"committing lakefs://{repo}/{branch}",
            self._client.commits_api.commit,
            repo,
            branch,
            _model(CommitCreation, {"message": message, "metadata": meta}),
        )
        return Commit(
            id=got.id,
            parents=tuple(got.parents),
            message=got.message,
            metadata=dict(got.metadata or {}),
            creation_date=int(got.creation_date),
            committer=got.committer,
        )

    def tag(self, repo: str, name: str, ref: str) -> str:
        """tag creates tag ``name`` at ``ref`` and returns the commit id it points at.

        A tag that exists is an InputError (lakeFS 409); tags are refs, never pins.
        """
        from lakefs_sdk.models.tag_creation import TagCreation

        _check_repo(repo)
        _check_ref(name)
        _check_ref(ref)
        got = self._call(
            f"creating tag {name!r} at lakefs://{repo}/{ref}",
            self._client.tags_api.create_tag,
            repo,
            _model(TagCreation, {"id": name, "ref": ref}),
        )
        return str(got.commit_id)

    def diff(self, repo: str, left: str, right: str) -> list[DiffEntry]:
        """diff lists the paths that differ from ``left`` to ``right`` (lakeFS two-dot diff).

        ``added`` exists only at ``right``; a branch on the right includes its
        staged changes.
        """
        _check_repo(repo)
        _check_ref(left)
        _check_ref(right)
        entries: list[DiffEntry] = []
        after = ""
        while True:
            page = self._call(
                f"diffing lakefs://{repo}/{left} against {right}",
                self._client.refs_api.diff_refs,
                repo,
                left,
                right,
                after=after or None,
                amount=MAX_LIST_AMOUNT,
                type="two_dot",
            )
            for d in page.results:
                if d.path_type == "object" and d.type in ("added", "removed", "changed"):
                    entries.append(DiffEntry(path=d.path, type=d.type))
            if not page.pagination.has_more:
                return entries
            after = page.pagination.next_offset

    @staticmethod
    def _stat(got: ObjectStats) -> ObjectStat:
        """_stat is the protocol's view: user metadata decoded, provgate's own keys left out."""
        return ObjectStat(
            path=got.path,
            size=int(got.size_bytes or 0),
            checksum=got.checksum,
            mtime=int(got.mtime),
            metadata={
                key: _decode_value(value)
                for key, value in (got.metadata or {}).items()
                if key not in _RESERVED
            },
        )


def _verify(uri: str, recorded: Mapping[str, str], data: bytes) -> None:
    """_verify checks ``data`` against the BLAKE3 and size provgate stored beside it."""
    from prov_core.digest import digest_bytes

    expected = recorded.get(METADATA_BLAKE3)
    if not expected:
        raise IntegrityError(
            f"{uri} has no {METADATA_BLAKE3} metadata: it was not written by provgate, "
            "so its content cannot be verified",
            reason="missing digest",
        )
    size = recorded.get(METADATA_SIZE)
    if size is not None and size != str(len(data)):
        raise IntegrityError(
            f"{uri} is {len(data)} bytes but its {METADATA_SIZE} metadata says {size}",
            reason="size mismatch",
        )
    actual = digest_bytes(data)
    if actual != expected.lower():
        raise IntegrityError(
            f"{uri}: content BLAKE3 {actual} differs from its {METADATA_BLAKE3} "
            f"metadata {expected}",
            reason="digest mismatch",
        )
