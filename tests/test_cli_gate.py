"""`provgate gate check`: the JSON contract and the exit codes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from prov_core.digest import digest_file
from prov_core.policy import Policy

from .conftest import REPO, Cli

BANNED = REPO / "examples" / "policies" / "banned-sources.toml"


@pytest.fixture
def committed(cli: Cli, data: Path) -> tuple[Cli, str]:
    assert cli("init").code == 0
    result = cli("ingest", str(data / "docs"), "--source", "file://docs", "--license", "MIT")
    assert result.code == 0, result.err
    snap = cli("snapshot", "commit", str(data / "docs"), "provgate://demo/main/docs", "--json")
    assert snap.code == 0, snap.err
    commit = snap.json()["commit"]
    assert isinstance(commit, str)
    return cli, commit


def test_allowed_json_contract(committed: tuple[Cli, str]) -> None:
    cli, commit = committed
    result = cli("gate", "check", "--input", f"provgate://demo/{commit}/docs", "--json")
    assert result.code == 0, result.err
    doc = result.json()
    assert set(doc) == {"allowed", "reasons", "vsa_log_index", "policy_digest"}
    assert doc["allowed"] is True
    assert doc["reasons"] == []
    assert doc["vsa_log_index"] == 2  # ingest 0, snapshot 1, decision 2
    assert doc["policy_digest"] == Policy.default().digest
    shown = cli("show", "2", "--json").json()["statement"]
    assert shown["predicateType"] == "https://slsa.dev/verification_summary/v1"
    assert shown["predicate"]["verificationResult"] == "PASSED"
    assert cli("verify").code == 0
    human = cli("gate", "check", "--input", f"provgate://demo/{commit}")
    assert human.code == 0
    assert human.out == ""
    assert "ALLOWED" in human.err


def test_refused_exits_1_with_every_reason(committed: tuple[Cli, str], data: Path) -> None:
    cli, commit = committed
    digest = digest_file(data / "docs" / "faq.md")
    blob = cli.home / "store" / "objects" / digest[:2] / digest[2:]
    os.chmod(blob, 0o644)
    blob.write_bytes(b"changed after the commit\n")
    result = cli(
        "gate",
        "check",
        "--input",
        "provgate://demo/main/docs",
        "--input",
        f"provgate://demo/{commit}",
        "--policy",
        str(BANNED),
        "--json",
    )
    assert result.code == 1, result.err
    doc = result.json()
    assert doc["allowed"] is False
    assert doc["policy_digest"] == Policy.load(BANNED).digest
    assert isinstance(doc["vsa_log_index"], int)
    for reason in doc["reasons"]:
        assert set(reason) == {"code", "input", "rule", "message"}
    pairs = {(r["code"], r["rule"]) for r in doc["reasons"]}
    assert ("unpinned", None) in pairs
    assert ("content-changed", None) in pairs
    assert ("policy", "banned-sources") in pairs
    unpinned = next(r for r in doc["reasons"] if r["code"] == "unpinned")
    assert unpinned["input"] == "provgate://demo/main/docs"
    assert commit in unpinned["message"]
    human = cli("gate", "check", "--input", "provgate://demo/main")
    assert human.code == 1
    assert human.out == ""
    assert "unpinned" in human.err
    assert commit in human.err


@pytest.mark.parametrize(
    "uri", ["s3://bucket/key", "provgate://Bad_Repo/main", "provgate://demo/main/../etc"]
)
def test_malformed_uri_exits_2(committed: tuple[Cli, str], uri: str) -> None:
    cli, _ = committed
    result = cli("gate", "check", "--input", uri, "--json")
    assert result.code == 2
    assert result.out == ""
    assert "provgate: error:" in result.err


def test_policy_with_a_cel_syntax_error_exits_2(committed: tuple[Cli, str], tmp_path: Path) -> None:
    cli, commit = committed
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[[rule]]\nid = "broken-rule"\nmessage = "m"\nexpr = "inputs.all(i, i.pinned &&)"\n'
    )
    result = cli("gate", "check", "--input", f"provgate://demo/{commit}", "--policy", str(bad))
    assert result.code == 2
    assert "broken-rule" in result.err
    assert "line 1, column" in result.err
    missing = cli(
        "gate", "check", "--input", f"provgate://demo/{commit}", "--policy", str(tmp_path / "no")
    )
    assert missing.code == 2
    assert "cannot read policy file" in missing.err


def test_no_input_is_a_usage_error(committed: tuple[Cli, str]) -> None:
    cli, _ = committed
    assert cli("gate", "check").code == 2


def test_store_removed_is_refused_not_an_error(committed: tuple[Cli, str]) -> None:
    import shutil

    cli, commit = committed
    shutil.rmtree(cli.home / "store")
    result = cli("gate", "check", "--input", f"provgate://demo/{commit}", "--json")
    assert result.code == 1
    doc = result.json()
    assert doc["reasons"][0]["code"] == "store-unreachable"
    assert "removed" in doc["reasons"][0]["message"]
