"""What the Dagster UI shows: dagster-webserver's GraphQL API, on a real instance and server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO

ASSET_QUERY = """
query ($path: [String!]!) {
  assetOrError(assetKey: {path: $path}) {
    ... on Asset {
      assetMaterializations(limit: 1) {
        metadataEntries {
          __typename
          label
          ... on UrlMetadataEntry { url }
          ... on JsonMetadataEntry { jsonString }
          ... on TextMetadataEntry { text }
          ... on IntMetadataEntry { intValue }
          ... on AssetMetadataEntry { assetKey { path } }
        }
      }
    }
  }
  assetNodeOrError(assetKey: {path: $path}) {
    ... on AssetNode {
      assetChecksOrError {
        ... on AssetChecks { checks { name executionForLatestMaterialization { status } } }
      }
    }
  }
}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _graphql(port: int, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query, "variables": variables}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.load(response)
    assert "errors" not in body, body
    return body["data"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """The example materialized into a DAGSTER_HOME, then dagster-webserver on it."""
    tmp = tmp_path_factory.mktemp("webserver")
    dagster_home = tmp / "dagster"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {
        **{k: v for k, v in os.environ.items() if k != "PROVGATE_SIGNING_KEY"},
        "DAGSTER_HOME": str(dagster_home),
        "PROVGATE_HOME": str(tmp / "home"),
        "PROVGATE_EXAMPLE_WORKDIR": str(tmp / "work"),
        "PYTHONPATH": str(REPO),
    }
    run = subprocess.run(
        [
            sys.executable,
            str(REPO / "example_pipelines" / "run_dagster.py"),
            "--home",
            str(tmp / "home"),
            "--workdir",
            str(tmp / "work"),
        ],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    port = _free_port()
    webserver = Path(sys.executable).parent / "dagster-webserver"
    log = (tmp / "webserver.log").open("w")
    proc = subprocess.Popen(
        [
            str(webserver),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-f",
            "example_pipelines/dagster_pipeline.py",
        ],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2).close()
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail(
                        "dagster-webserver did not start:\n" + (tmp / "webserver.log").read_text()
                    )
                time.sleep(0.5)
        yield port, tmp
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_graphql_shows_the_provenance_metadata_and_the_check(server: tuple[int, Path]) -> None:
    port, _ = server
    data = _graphql(port, ASSET_QUERY, {"path": ["model"]})
    (mat,) = data["assetOrError"]["assetMaterializations"]
    entries = {e["label"]: e for e in mat["metadataEntries"]}
    log_index = entries["provgate/log_index"]["text"]
    assert entries["provgate/lineage"]["__typename"] == "UrlMetadataEntry"
    assert entries["provgate/lineage"]["url"] == f"http://127.0.0.1:8765/records/{log_index}"
    assert entries["provgate/envelope_sha256"]["__typename"] == "TextMetadataEntry"
    assert len(entries["provgate/envelope_sha256"]["text"]) == 64
    statement = json.loads(entries["provgate/statement"]["jsonString"])
    assert statement["predicate"]["buildDefinition"]["buildType"] == (
        "https://provgate.dev/training/v1"
    )
    assert entries["provgate/parent/corpus_snapshot"]["__typename"] == "AssetMetadataEntry"
    assert entries["provgate/parent/corpus_snapshot"]["assetKey"]["path"] == ["corpus_snapshot"]
    assert entries["provgate/samples"]["intValue"] == 1
    checks = data["assetNodeOrError"]["assetChecksOrError"]["checks"]
    assert checks == [
        {
            "name": "provenance_verified",
            "executionForLatestMaterialization": {"status": "SUCCEEDED"},
        }
    ]


def test_graphql_shows_partition_parents_of_the_snapshot(server: tuple[int, Path]) -> None:
    port, _ = server
    data = _graphql(port, ASSET_QUERY, {"path": ["corpus_snapshot"]})
    (mat,) = data["assetOrError"]["assetMaterializations"]
    labels = {e["label"] for e in mat["metadataEntries"]}
    assert {
        "provgate/parent/clean_corpus[handbook]",
        "provgate/parent/clean_corpus[forum]",
        "provgate/parent/clean_corpus[books]",
        "provgate/snapshot_commit",
    } <= labels
