"""A small in-process lakeFS for tests, validated against lakeFS's own OpenAPI spec.

It implements ONLY the operations LakeFSStore calls (plus getRepository), with
lakeFS's semantics as read from treeverse/lakeFS (pkg/api/controller.go,
pkg/graveler): a staging area per branch; commits with 64-hex ids (opaque:
SHA-256 over this server's own fields, never comparable with a real lakeFS);
ref resolution in graveler's order (full commit id, branch, tag, unique
commit-id prefix; an ambiguous prefix is "not found") and ``branch@`` for a
branch's committed head; pagination with ``after``/``amount`` (default 100,
at most 1000) answered with ``pagination{has_more,next_offset,results,
max_per_page}``; two-dot diff (a branch on the right includes its staging);
user metadata from ``X-Lakefs-Meta-*`` upload headers, keys lowercased; 409
on an existing repository, branch or tag, and on a branch or tag named like
an existing tag, branch or commit id (catalog.CreateBranch/CreateTag); 400
"no changes" on an empty commit; HTTP basic auth with one key pair (401 otherwise).

Uploads are accepted as multipart/form-data (what lakefs-sdk sends) and as
application/octet-stream, with or without chunked transfer encoding (what the
high-level ``lakefs`` client streams).

Every request and every response is validated with openapi-core against
``swagger.yml`` of lakeFS (``$PROVGATE_VENDOR_DIR/lakefs/``, default
``../shared/vendor/lakefs/`` beside the repository; read in place, never
copied). A request that violates the spec is answered 400 (as lakeFS's
validator middleware does); a response of this server that violates it is
replaced by a 500. Either is recorded in :attr:`FakeLakeFS.violations`, as are
operations the spec has but this server does not implement; tests call
:meth:`FakeLakeFS.check` (the fixtures do it at teardown) so any of these
fails the test.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import hmac
import json
import os
import re
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.http import http_date
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

REPO_ROOT = Path(__file__).resolve().parents[2]
API_BASE = "/api/v1"
DEFAULT_PER_PAGE = 100  # lakeFS DefaultPerPage
MAX_PER_PAGE = 1000  # lakeFS DefaultMaxPerPage
_COMMIT_ID = re.compile(r"[0-9a-f]{64}")
_HEX_PREFIX = re.compile(r"[0-9a-fA-F]{1,64}")
_BRANCH_ID = re.compile(r"\w[-\w]*")  # lakeFS ReValidBranchID
_META_PREFIX = "x-lakefs-meta-"


def spec_path() -> Path | None:
    """spec_path is lakeFS's swagger.yml in the vendor directory, or None when absent."""
    vendor = Path(os.environ.get("PROVGATE_VENDOR_DIR") or REPO_ROOT.parent / "shared" / "vendor")
    path = vendor / "lakefs" / "swagger.yml"
    return path if path.is_file() else None


def required_spec() -> Any:
    """The loaded lakeFS spec; without it, skip the test (fail it under REQUIRE_SERVICES)."""
    import pytest

    from tests.conftest import require_services

    path = spec_path()
    if path is None:
        reason = (
            "lakeFS OpenAPI spec not found (../shared/vendor/lakefs/swagger.yml or "
            "$PROVGATE_VENDOR_DIR/lakefs/swagger.yml): the fake lakeFS cannot be validated"
        )
        if require_services():
            pytest.fail(reason)
        pytest.skip(reason)
    return load_spec(path)


@contextlib.contextmanager
def served_store(
    spec: Any, access_key: str, secret: str, repo: str = "lake"
) -> Iterator[tuple[Any, FakeLakeFS]]:
    """A LakeFSStore on a fresh fake server with repository ``repo`` (branch main).

    On exit the server's record of spec violations and unimplemented calls is
    checked: any of them fails the test.
    """
    from prov_core.snapshots.lakefs import LakeFSStore

    with (
        FakeLakeFS(access_key, secret, spec) as server,
        LakeFSStore(server.url, access_key, secret) as store,
    ):
        store.create_repository(repo, "main")
        yield store, server
        server.check()


@functools.cache
def load_spec(path: Path) -> Any:
    """load_spec parses the spec once per process (openapi-core's OpenAPI object)."""
    from openapi_core import Config, OpenAPI

    # The vendored spec is lakeFS's own, unmodified: skip re-validating the
    # spec itself (3 s) and validate every exchange against it instead.
    return OpenAPI.from_file_path(str(path), config=Config(spec_validator_cls=None))


class ApiError(Exception):
    """ApiError is an error answer: an HTTP status and lakeFS's Error ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Entry:
    """Entry is one object version: its bytes and what lakeFS keeps about it."""

    data: bytes
    address: str
    checksum: str
    mtime: int
    metadata: dict[str, str]
    content_type: str


@dataclass(frozen=True)
class CommitRecord:
    id: str
    parents: tuple[str, ...]
    committer: str
    message: str
    creation_date: int
    metadata: dict[str, str]
    meta_range_id: str
    generation: int
    tree: dict[str, Entry]


@dataclass
class Branch:
    head: str
    staging: dict[str, Entry] = field(default_factory=dict)


@dataclass
class Repository:
    name: str
    storage_namespace: str
    default_branch: str
    creation_date: int
    commits: dict[str, CommitRecord] = field(default_factory=dict)
    branches: dict[str, Branch] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


def _meta_range_id(tree: dict[str, Entry]) -> str:
    listing = "".join(f"{path}\0{e.address}\0{e.checksum}\n" for path, e in sorted(tree.items()))
    return hashlib.sha256(listing.encode()).hexdigest()


def _commit_id(
    committer: str,
    message: str,
    meta_range_id: str,
    date: int,
    metadata: dict[str, str],
    parents: Iterable[str],
) -> str:
    doc = [committer, message, meta_range_id, date, sorted(metadata.items()), list(parents)]
    return hashlib.sha256(json.dumps(doc, separators=(",", ":")).encode()).hexdigest()


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass

    def log(self, *args: Any, **kwargs: Any) -> None:
        pass


_ROUTES = Map(
    [
        Rule(f"{API_BASE}/repositories", methods=["POST"], endpoint="create_repository"),
        Rule(f"{API_BASE}/repositories/<repo>", methods=["GET"], endpoint="get_repository"),
        Rule(
            f"{API_BASE}/repositories/<repo>/branches", methods=["POST"], endpoint="create_branch"
        ),
        Rule(
            f"{API_BASE}/repositories/<repo>/branches/<branch>/objects",
            methods=["POST"],
            endpoint="upload_object",
        ),
        Rule(
            f"{API_BASE}/repositories/<repo>/branches/<branch>/commits",
            methods=["POST"],
            endpoint="commit",
        ),
        Rule(
            f"{API_BASE}/repositories/<repo>/commits/<commit_id>",
            methods=["GET"],
            endpoint="get_commit",
        ),
        Rule(f"{API_BASE}/repositories/<repo>/tags", methods=["POST"], endpoint="create_tag"),
        Rule(
            f"{API_BASE}/repositories/<repo>/refs/<ref>/objects",
            methods=["GET"],
            endpoint="get_object",
        ),
        Rule(
            f"{API_BASE}/repositories/<repo>/refs/<ref>/objects/stat",
            methods=["GET"],
            endpoint="stat_object",
        ),
        Rule(
            f"{API_BASE}/repositories/<repo>/refs/<ref>/objects/ls",
            methods=["GET"],
            endpoint="list_objects",
        ),
        Rule(
            f"{API_BASE}/repositories/<repo>/refs/<left>/diff/<right>",
            methods=["GET"],
            endpoint="diff_refs",
        ),
    ]
)


class FakeLakeFS:
    """FakeLakeFS serves the lakeFS API subset on 127.0.0.1 (an ephemeral port) in a thread.

    ``spec`` is an openapi-core ``OpenAPI`` (see :func:`load_spec`), or None to
    run unvalidated. Use as a context manager, or :meth:`start` / :meth:`stop`.
    """

    committer = "provgate-test"

    def __init__(self, access_key_id: str, secret_access_key: str, spec: Any | None) -> None:
        self.access_key_id = access_key_id
        self._secret = secret_access_key
        self.spec = spec
        self.repos: dict[str, Repository] = {}
        self.violations: list[str] = []
        self.requests: list[tuple[str, str, str]] = []  # method, path, transfer-encoding
        self._lock = threading.RLock()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        # Tests may replace a handler (to prove response validation is real).
        self.handlers: dict[str, Callable[..., Response]] = {
            rule.endpoint: getattr(self, f"_op_{rule.endpoint}") for rule in _ROUTES.iter_rules()
        }

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        """url is the server's root URL, without ``/api/v1`` (as a user would write it)."""
        assert self._server is not None, "server not started"
        return f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> FakeLakeFS:
        self._server = make_server(
            "127.0.0.1", 0, self, threaded=True, request_handler=_QuietHandler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="fake-lakefs",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeLakeFS:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def check(self) -> None:
        """check fails (AssertionError) if any exchange violated the spec or was unimplemented."""
        with self._lock:
            found, self.violations = list(self.violations), []
        assert not found, "fake lakeFS saw violations:\n" + "\n".join(found)

    # -- WSGI --------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        try:
            request.get_data()  # cache the body: validation and the handler both read it
            self.requests.append(
                (request.method, request.path, request.headers.get("Transfer-Encoding", ""))
            )
            response = self._respond(request)
            if self.spec is not None:
                response = self._validate_response(request, response)
        except Exception as exc:  # a bug here must fail the test, not hang or pass it
            self._violation(f"fake lakeFS crashed on {request.method} {request.path}: {exc!r}")
            response = _error(500, f"internal error: {type(exc).__name__}")
        finally:
            request.close()  # multipart parts are spooled to temporary files
        return response(environ, start_response)

    def _violation(self, text: str) -> None:
        with self._lock:
            self.violations.append(text)

    def _respond(self, request: Request) -> Response:
        from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest
        from openapi_core.validation.request.exceptions import SecurityValidationError

        where = f"{request.method} {request.full_path.rstrip('?')}"
        if self.spec is not None:
            with _spec_warnings_ignored():
                errors = list(self.spec.iter_request_errors(WerkzeugOpenAPIRequest(request)))
            if any(isinstance(e, SecurityValidationError) for e in errors):
                return _error(401, "error authenticating request")
            if errors:
                detail = "; ".join(_describe(e) for e in errors)
                self._violation(f"request {where} violates the lakeFS spec: {detail}")
                return _error(400, f"request does not match the lakeFS API: {detail}")
        if not self._authenticated(request):
            return _error(401, "error authenticating request")
        try:
            endpoint, args = _ROUTES.bind_to_environ(request.environ).match()
        except HTTPException:
            self._violation(f"unimplemented: {where}")
            return _error(501, f"fake lakeFS does not implement {request.method} {request.path}")
        try:
            with self._lock:
                return self.handlers[str(endpoint)](request, **args)
        except ApiError as exc:
            if exc.status == 501:
                self._violation(f"unimplemented: {where}: {exc.message}")
            return _error(exc.status, exc.message)
        except Exception as exc:
            self._violation(f"fake lakeFS crashed on {where}: {exc!r}")
            return _error(500, f"internal error: {type(exc).__name__}")

    def _validate_response(self, request: Request, response: Response) -> Response:
        from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
        from openapi_core.validation.response.exceptions import MissingData

        assert self.spec is not None
        with _spec_warnings_ignored():
            found = list(
                self.spec.iter_response_errors(
                    WerkzeugOpenAPIRequest(request), WerkzeugOpenAPIResponse(response)
                )
            )
        errors = [
            e
            for e in found
            # openapi-core calls every empty body "missing"; for a binary
            # (octet-stream) body an empty object's zero bytes are valid.
            if not (isinstance(e, MissingData) and response.mimetype == "application/octet-stream")
        ]
        if not errors:
            return response
        detail = "; ".join(_describe(e) for e in errors)
        where = f"{request.method} {request.full_path.rstrip('?')} -> {response.status_code}"
        self._violation(f"response to {where} violates the lakeFS spec: {detail}")
        return _error(500, f"fake lakeFS sent a response outside the spec: {detail}")

    def _authenticated(self, request: Request) -> bool:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(token, validate=True).decode().partition(":")
        except ValueError:
            return False
        return hmac.compare_digest(user, self.access_key_id) and hmac.compare_digest(
            password, self._secret
        )

    # -- state helpers -----------------------------------------------------------------

    def _repo(self, name: str) -> Repository:
        repo = self.repos.get(name)
        if repo is None:
            raise ApiError(404, "repository not found")
        return repo

    def _resolve(self, repo: Repository, raw: str) -> tuple[str, Branch | None]:
        """_resolve returns (commit id, branch whose staging applies or None), graveler's way."""
        if any(c in raw for c in "~^$") or not raw or any(c.isspace() for c in raw):
            raise ApiError(501, f"ref modifiers are not implemented: {raw!r}")
        base, at, rest = raw.partition("@")
        if rest:
            raise ApiError(400, "invalid ref")
        if base in repo.commits:  # 1. a full commit id
            commit_id, branch = base, None
        elif base in repo.branches:  # 2. a branch
            commit_id, branch = repo.branches[base].head, repo.branches[base]
        elif base in repo.tags:  # 3. a tag
            commit_id, branch = repo.tags[base], None
        elif _HEX_PREFIX.fullmatch(base):  # 4. a unique commit-id prefix
            matches = [c for c in repo.commits if c.startswith(base.lower())]
            if len(matches) != 1:  # lakeFS: ambiguous counts as not found
                raise ApiError(404, "not found")
            commit_id, branch = matches[0], None
        else:
            raise ApiError(404, "not found")
        if at:
            if branch is None:
                raise ApiError(400, "invalid ref")  # '@' applies to branches only
            branch = None
        return commit_id, branch

    def _view(self, repo: Repository, raw: str) -> dict[str, Entry]:
        commit_id, branch = self._resolve(repo, raw)
        tree = dict(repo.commits[commit_id].tree)
        if branch is not None:
            tree.update(branch.staging)
        return tree

    def _new_commit(
        self,
        repo: Repository,
        parents: tuple[str, ...],
        message: str,
        metadata: dict[str, str],
        tree: dict[str, Entry],
        committer: str,
    ) -> CommitRecord:
        date = int(time.time())
        meta_range_id = _meta_range_id(tree)
        commit_id = _commit_id(committer, message, meta_range_id, date, metadata, parents)
        generation = 1 + max((repo.commits[p].generation for p in parents), default=0)
        record = CommitRecord(
            commit_id, parents, committer, message, date, metadata, meta_range_id, generation, tree
        )
        repo.commits[commit_id] = record
        return record

    # -- operations --------------------------------------------------------------------

    def _op_create_repository(self, request: Request) -> Response:
        body = _json(request)
        name = body["name"]
        if name in self.repos:
            raise ApiError(409, "repository already exists")
        if any(r.storage_namespace == body["storage_namespace"] for r in self.repos.values()):
            raise ApiError(400, "storage namespace already in use")
        default_branch = body.get("default_branch") or "main"
        if not _BRANCH_ID.fullmatch(default_branch):
            raise ApiError(400, "invalid branch ID")
        repo = Repository(name, body["storage_namespace"], default_branch, int(time.time()))
        first = self._new_commit(repo, (), "Repository created", {}, {}, "")
        repo.branches[default_branch] = Branch(first.id)
        self.repos[name] = repo
        return _json_response(201, _repository_json(repo))

    def _op_get_repository(self, request: Request, repo: str) -> Response:
        return _json_response(200, _repository_json(self._repo(repo)))

    def _op_create_branch(self, request: Request, repo: str) -> Response:
        r = self._repo(repo)
        body = _json(request)
        name = body["name"]
        if not _BRANCH_ID.fullmatch(name):
            raise ApiError(400, "invalid branch ID")
        if name in r.branches:
            raise ApiError(409, "branch already exists: not unique")
        if name in r.tags:  # catalog.CreateBranch: names are shared by branches and tags
            raise ApiError(409, f"tag ID {name}: conflict found")
        if name in r.commits:
            raise ApiError(409, f"commit ID {name}: conflict found")
        commit_id, _ = self._resolve(r, body["source"])
        r.branches[name] = Branch(commit_id)
        return Response(commit_id, status=201, content_type="text/html")

    def _op_upload_object(self, request: Request, repo: str, branch: str) -> Response:
        r = self._repo(repo)
        if branch not in r.branches:
            raise ApiError(404, f"branch '{branch}' not found")
        path = request.args["path"]
        mimetype = request.mimetype or "application/octet-stream"
        if mimetype == "multipart/form-data":
            part = request.files.get("content")
            if part is None:
                raise ApiError(500, "multipart upload missing key 'content'")
            data = part.read()
            content_type = part.mimetype or "application/octet-stream"
        else:
            data = request.get_data()
            content_type = mimetype
        metadata = {
            key.lower()[len(_META_PREFIX) :]: value
            for key, value in request.headers.items()
            if key.lower().startswith(_META_PREFIX)
        }
        entry = Entry(
            data=data,
            address=f"{r.storage_namespace}/data/{uuid.uuid4().hex}",
            checksum=hashlib.md5(data, usedforsecurity=False).hexdigest(),
            mtime=int(time.time()),
            metadata=metadata,
            content_type=content_type,
        )
        r.branches[branch].staging[path] = entry
        return _json_response(201, _stats_json(path, entry))

    def _op_commit(self, request: Request, repo: str, branch: str) -> Response:
        r = self._repo(repo)
        if branch not in r.branches:
            raise ApiError(404, "branch not found")
        body = _json(request)
        b = r.branches[branch]
        if not b.staging and not body.get("allow_empty"):
            raise ApiError(400, "commit: no changes")
        tree = {**r.commits[b.head].tree, **b.staging}
        record = self._new_commit(
            r, (b.head,), body["message"], dict(body.get("metadata") or {}), tree, self.committer
        )
        b.head, b.staging = record.id, {}
        return _json_response(201, _commit_json(record))

    def _op_get_commit(self, request: Request, repo: str, commit_id: str) -> Response:
        r = self._repo(repo)
        try:
            resolved, _ = self._resolve(r, commit_id)
        except ApiError as exc:
            if exc.status == 404:
                raise ApiError(404, "commit not found") from exc
            raise
        return _json_response(200, _commit_json(r.commits[resolved]))

    def _op_create_tag(self, request: Request, repo: str) -> Response:
        r = self._repo(repo)
        body = _json(request)
        tag = body["id"]
        if not tag or tag == "@" or any(c in tag for c in "^:?*[\\/") or ".." in tag:
            raise ApiError(400, "invalid tag ID")
        if tag in r.branches:  # catalog.CreateTag
            raise ApiError(409, f"branch name {tag}: conflict found")
        if tag in r.commits:
            raise ApiError(409, f"commit ID {tag}: conflict found")
        if tag in r.tags and not body.get("force"):
            raise ApiError(409, "tag already exists: not unique")
        commit_id, _ = self._resolve(r, body["ref"])
        r.tags[tag] = commit_id
        return _json_response(201, {"id": tag, "commit_id": commit_id})

    def _op_stat_object(self, request: Request, repo: str, ref: str) -> Response:
        path = request.args["path"]
        entry = self._view(self._repo(repo), ref).get(path)
        if entry is None:
            raise ApiError(404, "object not found")
        with_meta = request.args.get("user_metadata", "true") != "false"
        return _json_response(200, _stats_json(path, entry, with_meta))

    def _op_get_object(self, request: Request, repo: str, ref: str) -> Response:
        if "Range" in request.headers:
            raise ApiError(501, "Range is not implemented")
        path = request.args["path"]
        entry = self._view(self._repo(repo), ref).get(path)
        if entry is None:
            raise ApiError(404, "object not found")
        return Response(
            entry.data,
            status=200,
            content_type="application/octet-stream",
            headers={"ETag": f'"{entry.checksum}"', "Last-Modified": http_date(entry.mtime)},
        )

    def _op_list_objects(self, request: Request, repo: str, ref: str) -> Response:
        if request.args.get("delimiter"):
            raise ApiError(501, "delimiter is not implemented")
        tree = self._view(self._repo(repo), ref)
        with_meta = request.args.get("user_metadata", "true") != "false"
        paths, has_more = _page(sorted(tree), request)
        results = [_stats_json(p, tree[p], with_meta) for p in paths]
        return _json_response(200, {"pagination": _pagination(paths, has_more), "results": results})

    def _op_diff_refs(self, request: Request, repo: str, left: str, right: str) -> Response:
        if request.args.get("type", "three_dot") != "two_dot":
            raise ApiError(501, "only type=two_dot diffs are implemented")
        if request.args.get("delimiter"):
            raise ApiError(501, "delimiter is not implemented")
        r = self._repo(repo)
        left_id, _ = self._resolve(r, left)
        before = r.commits[left_id].tree  # the left side is always a commit
        after = self._view(r, right)
        changes: dict[str, tuple[str, int]] = {}
        for path in before.keys() | after.keys():
            if path not in after:
                changes[path] = ("removed", len(before[path].data))
            elif path not in before:
                changes[path] = ("added", len(after[path].data))
            elif before[path].address != after[path].address:
                changes[path] = ("changed", len(after[path].data))
        paths, has_more = _page(sorted(changes), request)
        results = [
            {"type": changes[p][0], "path": p, "path_type": "object", "size_bytes": changes[p][1]}
            for p in paths
        ]
        return _json_response(200, {"pagination": _pagination(paths, has_more), "results": results})


_WARNINGS_LOCK = threading.Lock()


@contextlib.contextmanager
def _spec_warnings_ignored() -> Iterator[None]:
    """_spec_warnings_ignored silences openapi-core's warning about the spec itself.

    lakeFS's spec uses ``allowEmptyValue`` (deprecated in OpenAPI 3.0.3) on
    its pagination parameters; openapi-core warns on every such request,
    which pytest turns into an error inside the server thread. The warning
    is about lakeFS's document, not about the request. ``catch_warnings``
    changes process-wide state, hence the lock (the client thread is blocked
    on this very request meanwhile).
    """
    with _WARNINGS_LOCK, warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message="Use of allowEmptyValue property is deprecated",
            category=DeprecationWarning,
        )
        yield


def _page(paths: list[str], request: Request) -> tuple[list[str], bool]:
    """_page applies prefix, after and amount (lakeFS's paginationAmount rules)."""
    prefix = request.args.get("prefix", "")
    after = request.args.get("after", "")
    amount = int(request.args.get("amount", DEFAULT_PER_PAGE))
    amount = DEFAULT_PER_PAGE if amount <= 0 else min(amount, MAX_PER_PAGE)
    selected = [p for p in paths if p.startswith(prefix) and p > after]
    return selected[:amount], len(selected) > amount


def _pagination(paths: list[str], has_more: bool) -> dict[str, Any]:
    return {
        "has_more": has_more,
        "next_offset": paths[-1] if has_more and paths else "",
        "results": len(paths),
        "max_per_page": MAX_PER_PAGE,
    }


def _json(request: Request) -> dict[str, Any]:
    body = json.loads(request.get_data() or b"{}")
    if not isinstance(body, dict):
        raise ApiError(400, "body must be a JSON object")
    return body


def _json_response(status: int, body: Any) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json")


def _error(status: int, message: str) -> Response:
    return _json_response(status, {"message": message})


def _describe(error: Exception) -> str:
    cause = error.__cause__
    inner = getattr(cause, "schema_errors", None)
    if inner:
        return f"{error}: " + ", ".join(getattr(e, "message", str(e)) for e in inner)
    return f"{error}" + (f": {cause}" if cause is not None else "")


def _repository_json(repo: Repository) -> dict[str, Any]:
    return {
        "id": repo.name,
        "creation_date": repo.creation_date,
        "default_branch": repo.default_branch,
        "storage_namespace": repo.storage_namespace,
        "read_only": False,
    }


def _commit_json(c: CommitRecord) -> dict[str, Any]:
    return {
        "id": c.id,
        "parents": list(c.parents),
        "committer": c.committer,
        "message": c.message,
        "creation_date": c.creation_date,
        "meta_range_id": c.meta_range_id,
        "metadata": c.metadata,
        "generation": c.generation,
        "version": 1,
    }


def _stats_json(path: str, e: Entry, with_metadata: bool = True) -> dict[str, Any]:
    return {
        "path": path,
        "path_type": "object",
        "physical_address": e.address,
        "checksum": e.checksum,
        "size_bytes": len(e.data),
        "mtime": e.mtime,
        "metadata": e.metadata if with_metadata else {},
        "content_type": e.content_type,
    }
