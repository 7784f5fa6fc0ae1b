"""LakeFSStore through the real lakefs-sdk against the spec-validated fake lakeFS.

The shared contract runs here, plus what only the lakeFS backend can show:
endpoint forms, credentials kept out of reprs, errors and logs, digests kept
per object version, integrity failures on content provgate did not write,
fail-closed errors when lakeFS is down or slow, the mapping of every SDK
exception, and that the fake's spec validation is real.
"""

from __future__ import annotations

import base64
import logging
import socket
from collections.abc import Iterator
from typing import Any

import blake3
import pytest
import urllib3
from lakefs_sdk import exceptions as sdk_exc
from lakefs_sdk.client import LakeFSClient
from lakefs_sdk.configuration import Configuration
from lakefs_sdk.models.repository_creation import RepositoryCreation

from prov_core.errors import (
    InputError,
    IntegrityError,
    NotFoundError,
    ProvgateError,
    StoreError,
)
from prov_core.snapshots.base import SnapshotStore
from prov_core.snapshots.lakefs import (
    ENV_ACCESS_KEY_ID,
    ENV_ENDPOINT,
    ENV_SECRET_ACCESS_KEY,
    ENV_STORAGE_NAMESPACE,
    METADATA_BLAKE3,
    METADATA_SIZE,
    LakeFSStore,
    api_endpoint,
)

from .contract import SnapshotStoreContract, commit_files
from .lakefs_server import ApiError, FakeLakeFS, required_spec

ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI-K7MDENG-provgate-test-secret"


@pytest.fixture(scope="session")
def lakefs_spec() -> Any:
    return required_spec()


@pytest.fixture
def server(lakefs_spec: Any) -> Iterator[FakeLakeFS]:
    with FakeLakeFS(ACCESS_KEY, SECRET, lakefs_spec) as fake:
        yield fake
        fake.check()  # any spec violation or unimplemented call fails the test


@pytest.fixture
def store(server: FakeLakeFS) -> Iterator[LakeFSStore]:
    with LakeFSStore(server.url, ACCESS_KEY, SECRET) as lakefs:
        yield lakefs


@pytest.fixture
def raw(server: FakeLakeFS) -> Iterator[LakeFSClient]:
    """The bare SDK client: writes that bypass LakeFSStore (and its digests)."""
    client = LakeFSClient(
        Configuration(host=server.url + "/api/v1", username=ACCESS_KEY, password=SECRET)
    )
    yield client
    client.objects_api.api_client.rest_client.pool_manager.clear()


class TestLakeFSContract(SnapshotStoreContract):
    """The shared SnapshotStore contract, on lakeFS."""


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- connection settings --------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", "/", "/api/v1", "/api/v1/"])
def test_endpoint_with_or_without_api_v1(server: FakeLakeFS, suffix: str) -> None:
    with LakeFSStore(server.url + suffix, ACCESS_KEY, SECRET) as lakefs:
        assert lakefs.endpoint == server.url + "/api/v1"
        lakefs.create_repository("endpoint-repo")
        assert len(lakefs.resolve("endpoint-repo", "main")) == 64


def test_api_endpoint_keeps_a_proxy_prefix() -> None:
    assert api_endpoint("https://h.example/lakefs/") == "https://h.example/lakefs/api/v1"
    assert api_endpoint(" http://h:8000 ") == "http://h:8000/api/v1"


@pytest.mark.parametrize("bad", ["127.0.0.1:8000", "ftp://h/", "http://", "http://h/?x=1"])
def test_api_endpoint_refuses_non_urls(bad: str) -> None:
    with pytest.raises(InputError, match="endpoint"):
        api_endpoint(bad)


def test_api_endpoint_refuses_credentials_without_echoing_them() -> None:
    with pytest.raises(InputError, match="must not carry credentials") as info:
        api_endpoint(f"http://{ACCESS_KEY}:{SECRET}@127.0.0.1:8000")
    assert SECRET not in str(info.value)


def test_from_env(server: FakeLakeFS, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_ENDPOINT, server.url + "/api/v1")
    monkeypatch.setenv(ENV_ACCESS_KEY_ID, ACCESS_KEY)
    monkeypatch.setenv(ENV_SECRET_ACCESS_KEY, SECRET)
    monkeypatch.setenv(ENV_STORAGE_NAMESPACE, "local://elsewhere/")
    with LakeFSStore.from_env() as lakefs:
        assert lakefs.storage_namespace_root == "local://elsewhere"
        lakefs.create_repository("env-repo")
    assert server.repos["env-repo"].storage_namespace == "local://elsewhere/env-repo"


def test_from_env_names_what_is_missing() -> None:
    with pytest.raises(InputError) as info:
        LakeFSStore.from_env({ENV_ENDPOINT: "http://127.0.0.1:1", ENV_SECRET_ACCESS_KEY: SECRET})
    assert ENV_ACCESS_KEY_ID in str(info.value)
    assert ENV_SECRET_ACCESS_KEY not in str(info.value)
    assert SECRET not in str(info.value)


def test_is_a_snapshot_store_with_its_kind() -> None:
    lakefs = LakeFSStore("http://127.0.0.1:1", ACCESS_KEY, SECRET)
    assert isinstance(lakefs, SnapshotStore)
    assert (lakefs.kind, lakefs.scheme) == ("lakefs", "lakefs")


# -- credentials stay secret ----------------------------------------------------------


def _secret_forms() -> list[str]:
    token = base64.b64encode(f"{ACCESS_KEY}:{SECRET}".encode()).decode()
    return [SECRET, token]


def test_credentials_not_in_repr_or_logs(
    store: LakeFSStore, caplog: pytest.LogCaptureFixture
) -> None:
    assert SECRET not in repr(store)
    assert ACCESS_KEY not in repr(store)
    assert SECRET not in str(vars(store))
    # lakefs_sdk's Configuration pins its own and urllib3's loggers at WARNING
    for name in ("lakefs_sdk", "urllib3", ""):
        caplog.set_level(logging.DEBUG, logger=name)
    with caplog.at_level(logging.DEBUG):
        store.create_repository("log-repo")
        store.write("log-repo", "main", "f", b"data")
        commit = store.commit("log-repo", "main", "m")
        assert store.read("log-repo", commit.id, "f") == b"data"
        with pytest.raises(NotFoundError):
            store.read("log-repo", commit.id, "missing")
    assert caplog.records, "expected the SDK and urllib3 to log at DEBUG"
    for form in _secret_forms():
        assert form not in caplog.text


def test_wrong_key_is_a_clear_store_error_without_the_secret(
    server: FakeLakeFS, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "not-the-secret-" + SECRET[::-1]
    for name in ("lakefs_sdk", "urllib3", ""):
        caplog.set_level(logging.DEBUG, logger=name)
    with (
        LakeFSStore(server.url, ACCESS_KEY, wrong) as lakefs,
        pytest.raises(StoreError, match="rejected the credentials") as info,
    ):
        lakefs.resolve("any-repo", "main")
    message = str(info.value)
    assert "401" in message
    assert ENV_SECRET_ACCESS_KEY in message
    chain = f"{message} {info.value.__cause__!s} {info.value.__cause__!r}"
    for form in [wrong, base64.b64encode(f"{ACCESS_KEY}:{wrong}".encode()).decode()]:
        assert form not in chain
        assert form not in caplog.text


# -- integrity ------------------------------------------------------------------------


def test_reupload_recommit_keeps_old_commit_and_its_digest(
    store: LakeFSStore, raw: LakeFSClient
) -> None:
    store.create_repository("versions")
    c1 = commit_files(store, "versions", {"data/x.csv": b"a,b\n1,2\n"})
    c2 = commit_files(store, "versions", {"data/x.csv": b"a,b\n1,3\n"})
    assert store.read("versions", c1.id, "data/x.csv") == b"a,b\n1,2\n"
    assert store.read("versions", c2.id, "data/x.csv") == b"a,b\n1,3\n"
    old = raw.objects_api.stat_object("versions", c1.id, "data/x.csv", user_metadata=True)
    new = raw.objects_api.stat_object("versions", c2.id, "data/x.csv", user_metadata=True)
    assert old.metadata is not None
    assert new.metadata is not None
    assert old.metadata[METADATA_BLAKE3] == blake3.blake3(b"a,b\n1,2\n").hexdigest()
    assert old.metadata[METADATA_SIZE] == "8"
    assert new.metadata[METADATA_BLAKE3] == blake3.blake3(b"a,b\n1,3\n").hexdigest()
    # the store's own checksum (MD5) differs too, and is not what provgate trusts
    assert store.stat("versions", c1.id, "data/x.csv").checksum == old.checksum
    assert METADATA_BLAKE3 not in store.stat("versions", c1.id, "data/x.csv").metadata
    assert [(d.path, d.type) for d in store.diff("versions", c1.id, c2.id)] == [
        ("data/x.csv", "changed")
    ]


def test_object_written_without_provgate_digest_fails_read(
    store: LakeFSStore, raw: LakeFSClient
) -> None:
    store.create_repository("outside")
    raw.objects_api.upload_object("outside", "main", "sneaky/raw.bin", content=b"unrecorded")
    commit = store.commit("outside", "main", "outside write")
    assert store.stat("outside", commit.id, "sneaky/raw.bin").size == 10  # visible...
    with pytest.raises(IntegrityError, match=r"sneaky/raw\.bin.*no provgate-blake3") as info:
        store.read("outside", commit.id, "sneaky/raw.bin")  # ...but never trusted
    assert info.value.reason == "missing digest"


def test_object_with_a_wrong_digest_fails_read(store: LakeFSStore, raw: LakeFSClient) -> None:
    store.create_repository("forged")
    forged = {
        "X-Lakefs-Meta-" + METADATA_BLAKE3: blake3.blake3(b"what was attested").hexdigest(),
        "X-Lakefs-Meta-" + METADATA_SIZE: "17",
    }
    raw.objects_api.upload_object(
        "forged", "main", "data/swapped.txt", content=b"something swapped", _headers=forged
    )
    with pytest.raises(IntegrityError, match=r"data/swapped\.txt.*differs") as info:
        store.read("forged", "main", "data/swapped.txt")
    assert info.value.reason == "digest mismatch"
    raw.objects_api.upload_object(
        "forged", "main", "data/short.txt", content=b"short", _headers=forged
    )
    with pytest.raises(IntegrityError, match=r"data/short\.txt is 5 bytes"):
        store.read("forged", "main", "data/short.txt")


# -- metadata rules -------------------------------------------------------------------


def test_metadata_values_round_trip_even_when_they_look_encoded(store: LakeFSStore) -> None:
    store.create_repository("meta-repo")
    meta = {"a": "=?utf-8?b?aGk=?=", "b": " padded ", "c": "", "d": "line\nbreak"}
    store.write("meta-repo", "main", "f", b"x", meta)
    assert dict(store.stat("meta-repo", "main", "f").metadata) == meta


@pytest.mark.parametrize(
    ("meta", "match"),
    [
        ({"Upper": "x"}, "must match"),
        ({"under_score": "x"}, "must match"),
        ({METADATA_BLAKE3: "0" * 64}, "reserved"),
        ({"big": "x" * 9000}, "limit"),
    ],
)
def test_metadata_that_would_not_round_trip_is_refused(
    store: LakeFSStore, meta: dict[str, str], match: str
) -> None:
    store.create_repository("meta-bad")
    with pytest.raises(InputError, match=match):
        store.write("meta-bad", "main", "f", b"x", meta)
    assert store.list_objects("meta-bad", "main").results == []


def test_branch_and_tag_names_cannot_collide(store: LakeFSStore) -> None:
    """lakeFS (catalog.CreateBranch/CreateTag) refuses a tag named like a branch and back."""
    store.create_repository("names")
    commit = commit_files(store, "names", {"a": b"a"})
    store.create_branch("names", "release", commit.id)
    with pytest.raises(InputError, match="conflict"):
        store.tag("names", "release", commit.id)
    store.tag("names", "v1", commit.id)
    with pytest.raises(InputError, match="conflict"):
        store.create_branch("names", "v1", commit.id)


# -- failing closed -------------------------------------------------------------------


def test_server_down_is_a_clear_store_error() -> None:
    port = closed_port()
    with (
        LakeFSStore(f"http://127.0.0.1:{port}", ACCESS_KEY, SECRET) as lakefs,
        pytest.raises(StoreError) as info,
    ):
        lakefs.resolve("some-repo", "main")
    message = str(info.value)
    assert f"cannot reach lakeFS at http://127.0.0.1:{port}/api/v1" in message
    assert "connection refused" in message
    assert ENV_ENDPOINT in message
    assert SECRET not in message


def test_server_that_never_answers_times_out() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()  # accepts connections into the backlog, never answers
        port = listener.getsockname()[1]
        with (
            LakeFSStore(
                f"http://127.0.0.1:{port}", ACCESS_KEY, SECRET, timeout=0.3, retries=0
            ) as lakefs,
            pytest.raises(StoreError, match="no response in time"),
        ):
            lakefs.resolve("some-repo", "main")


def test_server_errors_are_store_errors(store: LakeFSStore, server: FakeLakeFS) -> None:
    store.create_repository("flaky")

    def broken(request: Any, **kwargs: Any) -> Any:
        raise ApiError(503, "kv: throughput exceeded")

    server.handlers["get_commit"] = broken
    with pytest.raises(StoreError, match=r"failed while resolving ref.*503.*throughput"):
        store.resolve("flaky", "main")


_SDK_CASES: list[tuple[BaseException, type[ProvgateError], str]] = [
    (sdk_exc.NotFoundException(status=404, reason="Not Found"), NotFoundError, "not found"),
    (sdk_exc.BadRequestException(status=400, reason="Bad"), InputError, "refused it"),
    (sdk_exc.ApiException(status=409, reason="Conflict"), InputError, "refused it"),
    (sdk_exc.ApiException(status=412, reason="Precondition"), InputError, "refused it"),
    (sdk_exc.UnauthorizedException(status=401, reason="No"), StoreError, "credentials"),
    (sdk_exc.ForbiddenException(status=403, reason="No"), StoreError, "policies"),
    (sdk_exc.ServiceException(status=500, reason="Oops"), StoreError, "failed while"),
    (sdk_exc.ApiException(status=429, reason="Slow down"), StoreError, "failed while"),
    (sdk_exc.ApiException(status=0, reason="SSLError"), StoreError, "failed while"),
    (sdk_exc.ApiTypeError("bad type"), StoreError, "refused the request"),
    (sdk_exc.ApiValueError("bad value"), StoreError, "refused the request"),
    (sdk_exc.ApiKeyError("bad key"), StoreError, "refused the request"),
    (sdk_exc.ApiAttributeError("bad attr"), StoreError, "refused the request"),
    (urllib3.exceptions.ProtocolError("broken"), StoreError, "connection broken"),
    (urllib3.exceptions.ReadTimeoutError(None, "/", "t"), StoreError, "no response"),
    (urllib3.exceptions.ConnectTimeoutError("t"), StoreError, "timed out"),
    (ValueError("pydantic: field required"), StoreError, "does not match its API"),
    (ConnectionResetError(104, "Connection reset by peer"), StoreError, "connection reset"),
]


@pytest.mark.parametrize(("raised", "expected", "match"), _SDK_CASES)
def test_every_lower_layer_exception_is_mapped(
    raised: BaseException, expected: type[ProvgateError], match: str
) -> None:
    lakefs = LakeFSStore("http://127.0.0.1:1", ACCESS_KEY, SECRET)

    def call(**kwargs: Any) -> None:
        raise raised

    with pytest.raises(expected, match=match) as info:
        lakefs._call("doing the thing", call)
    assert type(info.value) is expected
    assert info.value.__cause__ is raised


def test_every_sdk_exception_class_is_covered() -> None:
    """A new exception class in lakefs_sdk must get a case above."""
    covered = {type(raised) for raised, _, _ in _SDK_CASES}
    sdk_classes = {
        obj
        for obj in vars(sdk_exc).values()
        if isinstance(obj, type) and issubclass(obj, sdk_exc.OpenApiException)
    }
    assert sdk_classes - {sdk_exc.OpenApiException} <= covered


# -- the fake's validation is real ----------------------------------------------------


def test_fake_accepts_chunked_octet_stream_uploads(store: LakeFSStore, server: FakeLakeFS) -> None:
    """What the high-level ``lakefs`` client sends: a streamed body, no Content-Length."""
    store.create_repository("chunks")
    data = b"".join(b"chunk %d\n" % i for i in range(100))
    headers = urllib3.make_headers(basic_auth=f"{ACCESS_KEY}:{SECRET}")
    headers |= {
        "Content-Type": "application/octet-stream",
        "X-Lakefs-Meta-" + METADATA_BLAKE3: blake3.blake3(data).hexdigest(),
    }
    with urllib3.PoolManager() as http:
        response = http.request(
            "POST",
            f"{server.url}/api/v1/repositories/chunks/branches/main/objects?path=streamed.txt",
            body=(data[i : i + 100] for i in range(0, len(data), 100)),
            headers=headers,
            chunked=True,
        )
    assert response.status == 201, response.data
    assert ("POST", "/api/v1/repositories/chunks/branches/main/objects", "chunked") in (
        server.requests
    )
    assert store.read("chunks", "main", "streamed.txt") == data


def test_request_outside_the_spec_fails_the_test(store: LakeFSStore, server: FakeLakeFS) -> None:
    # Through the real SDK, with its client-side checks bypassed (construct):
    # a repository name and namespace lakeFS's spec forbids.
    invalid = RepositoryCreation.construct(name="Bad_Name", storage_namespace="nowhere")
    with pytest.raises(sdk_exc.BadRequestException):
        store._client.repositories_api.create_repository(invalid)
    # And over plain HTTP: an amount above the spec's maximum.
    with urllib3.PoolManager() as http:
        response = http.request(
            "GET",
            f"{server.url}/api/v1/repositories/x/refs/main/objects/ls?amount=5000",
            headers=urllib3.make_headers(basic_auth=f"{ACCESS_KEY}:{SECRET}"),
        )
    assert response.status == 400
    with pytest.raises(AssertionError, match="violates the lakeFS spec") as info:
        server.check()
    assert "Bad_Name" in str(info.value)
    assert "amount" in str(info.value)


def test_response_outside_the_spec_fails_the_test(store: LakeFSStore, server: FakeLakeFS) -> None:
    store.create_repository("bad-answers")

    def incomplete_commit(request: Any, **kwargs: Any) -> Any:
        from werkzeug.wrappers import Response

        return Response('{"id": "abc"}', status=200, content_type="application/json")

    server.handlers["get_commit"] = incomplete_commit
    with pytest.raises(StoreError):
        store.resolve("bad-answers", "main")
    with pytest.raises(AssertionError, match=r"response to GET .*commits/main.*violates"):
        server.check()


def test_unimplemented_operations_fail_the_test(server: FakeLakeFS) -> None:
    client = LakeFSClient(
        Configuration(host=server.url + "/api/v1", username=ACCESS_KEY, password=SECRET)
    )
    try:
        with pytest.raises(sdk_exc.ApiException):
            client.branches_api.list_branches("anything")
    finally:
        client.objects_api.api_client.rest_client.pool_manager.clear()
    with pytest.raises(AssertionError, match="unimplemented: GET /api/v1/repositories/anything"):
        server.check()
