"""A home whose ledger is PostgreSQL (PROVGATE_LEDGER_URL): the CLI and the gate on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from prov_core.home import init_home, open_home
from prov_core.ledger.postgres import PostgresLedger
from prov_core.step import Recorder

from .conftest import Cli


def test_url_selects_the_postgres_ledger(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROVGATE_LEDGER_URL", postgres_url)
    home, created = init_home(tmp_path / "home")
    assert created
    assert home.ledger_url == postgres_url
    with Recorder.from_home(home) as recorder:
        assert isinstance(recorder.ledger, PostgresLedger)
    assert not (tmp_path / "home" / "ledger.sqlite").exists()
    monkeypatch.delenv("PROVGATE_LEDGER_URL")
    assert open_home(tmp_path / "home").ledger_url is None  # back to the embedded default


def test_cli_ingest_snapshot_gate_verify_on_postgres(
    postgres_url: str, cli: Cli, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROVGATE_LEDGER_URL", postgres_url)
    assert cli("init").code == 0
    got = cli("ingest", str(data / "docs"), "--source", "file://docs", "--license", "MIT")
    assert got.code == 0, got.err
    snap = cli("snapshot", "commit", str(data / "docs"), "provgate://demo/main", "--json")
    assert snap.code == 0, snap.err
    commit = snap.json()["commit"]
    gate = cli("gate", "check", "--input", f"provgate://demo/{commit}", "--json")
    assert gate.code == 0, gate.out + gate.err
    assert gate.json()["vsa_log_index"] == 2
    assert cli("verify").code == 0
    assert cli("verify", "--artifact", f"provgate://demo/{commit}").code == 0
    assert not (cli.home / "ledger.sqlite").exists()


def test_gate_fails_closed_when_postgres_is_unreachable(
    cli: Cli, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("init").code == 0
    monkeypatch.setenv("PROVGATE_LEDGER_URL", "postgresql://postgres@127.0.0.1:1/none")
    got = cli("gate", "check", "--input", "provgate://demo/" + "a" * 64, "--json")
    assert got.code == 1
    codes = [r["code"] for r in got.json()["reasons"]]
    assert codes[0] == "ledger-unreachable"
