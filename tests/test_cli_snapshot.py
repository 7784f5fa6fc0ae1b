"""The `provgate snapshot` commands: JSON contracts, exit codes, bad input."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from prov_core.digest import digest_file

from .conftest import Cli


@pytest.fixture
def ingested(cli: Cli, data: Path) -> Cli:
    assert cli("init").code == 0
    result = cli("ingest", str(data / "docs"), "--source", "file://docs", "--license", "MIT")
    assert result.code == 0, result.err
    return cli


def _commit(cli: Cli, path: Path, uri: str) -> dict[str, object]:
    result = cli("snapshot", "commit", str(path), uri, "-m", "snap", "--json")
    assert result.code == 0, result.err
    doc = result.json()
    assert isinstance(doc, dict)
    return doc


def test_commit_json_contract_and_show(ingested: Cli, data: Path) -> None:
    doc = _commit(ingested, data / "docs", "provgate://demo/main/docs")
    assert set(doc) == {"commit", "log_index"}
    assert doc["log_index"] == 1  # right after the ingest record
    commit = doc["commit"]
    assert isinstance(commit, str)
    assert len(commit) == 64
    show = ingested("snapshot", "show", "provgate://demo/main", "--json")
    assert show.code == 0, show.err
    info = show.json()
    assert info["commit"] == commit
    assert info["log_index"] == 1
    assert info["objects"] == 3
    assert info["uncovered"] == []
    assert info["message"] == "snap"
    assert info["metadata"]["provgate-prefix"] == "docs/"
    assert info["store"] == "local"
    # The same by commit id, and in human form.
    assert ingested("snapshot", "show", f"provgate://demo/{commit}", "--json").json() == {
        **info,
        "ref": commit,
    }
    human = ingested("snapshot", "show", f"provgate://demo/{commit}")
    assert human.code == 0
    assert "log index  1" in human.err


def test_verify_ok_then_blob_edited_exits_1_naming_it(ingested: Cli, data: Path) -> None:
    commit = _commit(ingested, data / "docs", "provgate://demo/main/docs")["commit"]
    ok = ingested("snapshot", "verify", f"provgate://demo/{commit}", "--json")
    assert ok.code == 0, ok.err
    report = ok.json()
    assert report["ok"] is True
    assert report["objects"] == report["checked"] == 3
    assert report["problems"] == []
    # The snapshot record itself verifies with `provgate verify`.
    assert ingested("verify").code == 0
    digest = digest_file(data / "docs" / "faq.md")
    blob = ingested.home / "store" / "objects" / digest[:2] / digest[2:]
    os.chmod(blob, 0o644)
    blob.write_bytes(b"changed after the commit\n")
    bad = ingested("snapshot", "verify", f"provgate://demo/{commit}", "--json")
    assert bad.code == 1
    doc = bad.json()
    assert doc["ok"] is False
    assert [(p["kind"], p["path"]) for p in doc["problems"]] == [("changed", "docs/faq.md")]
    human = ingested("snapshot", "verify", f"provgate://demo/{commit}")
    assert human.code == 1
    assert human.out == ""
    assert "docs/faq.md" in human.err
    assert "FAILED" in human.err


def test_uncovered_file_is_reported(ingested: Cli, data: Path) -> None:
    (data / "docs" / "late.txt").write_text("never ingested\n")
    result = ingested("snapshot", "commit", str(data / "docs"), "provgate://demo/main", "-m", "m")
    assert result.code == 0, result.err
    assert "late.txt" in result.err
    assert "gate will refuse" in result.err
    info = ingested("snapshot", "show", "provgate://demo/main", "--json").json()
    assert info["uncovered"] == ["late.txt"]


def test_commit_creates_the_repository_once(ingested: Cli, data: Path) -> None:
    first = ingested("snapshot", "commit", str(data / "docs"), "provgate://demo/main", "-m", "a")
    assert first.code == 0, first.err
    assert "created repository demo" in first.err
    (data / "docs" / "faq.md").write_text("v2\n")
    second = ingested("snapshot", "commit", str(data / "docs"), "provgate://demo/main", "-m", "b")
    assert second.code == 0, second.err
    assert "created repository" not in second.err


def test_verify_a_commit_never_snapshotted_exits_1(ingested: Cli, data: Path) -> None:
    _commit(ingested, data / "docs", "provgate://demo/main")
    result = ingested("snapshot", "verify", "provgate://demo/main", "--json")
    assert result.code == 0  # a branch resolves to the commit it points at
    from prov_core.home import open_home

    with open_home(ingested.home).open_store() as store:
        store.write("demo", "main", "stray.txt", b"outside provgate")
        commit = store.commit("demo", "main", "no record").id
    result = ingested("snapshot", "verify", f"provgate://demo/{commit}", "--json")
    assert result.code == 1
    assert "no snapshot record" in result.json()["problems"][0]["message"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("commit", "{data}/docs", "provgate://demo/main/../x"), "'..'"),
        (("commit", "{data}/docs", "provgate://demo/main/a/./b"), "'.'"),
        (("commit", "{data}/docs", "s3://demo/main"), "not a snapshot URI"),
        (("commit", "{data}/docs", "provgate://Bad_Repo/main"), "repository"),
        (("commit", "{data}/docs", "provgate://demo"), "ref"),
        (("commit", "{data}/missing", "provgate://demo/main"), "no such file"),
        (("commit", "{data}/docs", "provgate://demo/" + "a" * 64), "branch"),
        (("show", "provgate://demo/main"), "not found"),
        (("show", "nonsense"), "not a snapshot URI"),
        (("verify", "provgate://demo/main/docs"), "without a path"),
        (("verify", "lakefs:/demo/main"), "not a snapshot URI"),
    ],
)
def test_bad_input_exits_2_with_one_message(
    ingested: Cli, data: Path, args: tuple[str, ...], needle: str
) -> None:
    argv = [a.replace("{data}", str(data)) for a in args]
    result = ingested("snapshot", *argv, "--json")
    assert result.code == 2, result.err
    assert result.out == ""
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("provgate: error:")
    assert needle in result.err


def test_lakefs_without_configuration_is_a_usage_error(
    ingested: Cli, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in (
        "LAKECTL_SERVER_ENDPOINT_URL",
        "LAKECTL_CREDENTIALS_ACCESS_KEY_ID",
        "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    result = ingested("snapshot", "commit", str(data / "docs"), "lakefs://demo/main", "--json")
    assert result.code == 2
    assert "LAKECTL_SERVER_ENDPOINT_URL" in result.err


def test_lakefs_uri_uses_lakectl_settings(
    ingested: Cli, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prov_core.snapshots.lakefs import LakeFSStore

    from .conftest import require_services
    from .snapshots.lakefs_server import FakeLakeFS, load_spec, spec_path

    spec = spec_path()
    if spec is None:
        if require_services():
            pytest.fail("lakeFS OpenAPI spec not found")
        pytest.skip("lakeFS OpenAPI spec not found: the fake lakeFS cannot be validated")
    key, secret = "AKIAIOSFODNN7EXAMPLE", "provgate-cli-snapshot-secret"
    with FakeLakeFS(key, secret, load_spec(spec)) as server:
        monkeypatch.setenv("LAKECTL_SERVER_ENDPOINT_URL", server.url)
        monkeypatch.setenv("LAKECTL_CREDENTIALS_ACCESS_KEY_ID", key)
        monkeypatch.setenv("LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY", secret)
        with LakeFSStore.from_env() as store:
            store.create_repository("lake", "main")
        doc = _commit(ingested, data / "docs", "lakefs://lake/main/docs")
        show = ingested("snapshot", "show", f"lakefs://lake/{doc['commit']}", "--json").json()
        assert show["store"] == "lakefs"
        assert show["log_index"] == doc["log_index"]
        assert show["uncovered"] == []
        result = ingested("snapshot", "verify", f"lakefs://lake/{doc['commit']}", "--json")
        assert result.code == 0, result.err
        assert result.json()["checked"] == 3
        server.check()
