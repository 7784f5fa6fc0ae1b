"""Ingest records of Hugging Face datasets: the Hub repository and revision, read offline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import datasets
import pytest
from conftest import COMMIT, REVIEWS, Hub, build_hub_cache
from datasets.table import InMemoryTable
from prov_hf import hub_origin, ingest_dataset, sample_set

from prov_core.digest import digest_file, sample_set_of_table
from prov_core.errors import InputError, LicenseError
from prov_core.ingest import IngestRequest
from prov_core.records import decode_entry
from prov_core.verify import verify_home


def _statement(recorder: Any, log_index: int) -> dict[str, Any]:
    _, statement = decode_entry(recorder.ledger.entry(log_index))
    return statement


def test_hub_origin_is_read_from_the_cache(hub: Hub) -> None:
    ds = hub.load()
    origin = hub_origin(ds)
    assert origin is not None
    assert (origin.repo_id, origin.revision, origin.config, origin.split) == (
        "org/reviews",
        COMMIT,
        "default",
        "train",
    )
    assert origin.uri == f"hf://datasets/org/reviews@{COMMIT}"
    assert origin.name == "org/reviews:default/train"


def test_ingest_record_names_repository_revision_and_rows(hub: Hub, home: Any) -> None:
    provgate_home, recorder, index = home
    ds = hub.load()
    result = ingest_dataset(recorder, ds, index=index)
    statement = _statement(recorder, result.attestation.log_index)
    predicate = statement["predicate"]
    assert predicate["source"] == {
        "uri": f"hf://datasets/org/reviews@{COMMIT}",
        "revision": COMMIT,
        "issuer": "org",
        "title": "org/reviews",
    }
    assert predicate["license"] == {"spdx": "CC-BY-4.0"}  # from the dataset card, normalized
    assert predicate["collectionMethod"] == "download"
    assert predicate["dataFormat"] == "parquet"
    # The samples are the rows, as prov_core's Arrow path counts them.
    expected = sample_set_of_table(REVIEWS)
    assert predicate["samples"] == expected.summary()
    assert result.sample_set.sorted_ids() == expected.sorted_ids()
    # The Arrow cache file is the record's one file, indexed by content.
    [arrow] = [Path(f["filename"]) for f in ds.cache_files]
    assert predicate["manifest"]["root"] == digest_file(arrow)
    assert statement["subject"][0]["name"] == "org/reviews:default/train"
    covering = index.covering([digest_file(arrow)], ledger=recorder.ledger)
    assert [r.log_index for r in covering[digest_file(arrow)]] == [result.attestation.log_index]
    assert verify_home(provgate_home).ok


def test_each_split_is_its_own_record(hub: Hub, home: Any) -> None:
    _, recorder, _ = home
    test = ingest_dataset(recorder, hub.load("test"))
    assert test.samples == 2
    statement = _statement(recorder, test.attestation.log_index)
    assert statement["subject"][0]["name"] == "org/reviews:default/test"
    assert statement["predicate"]["source"]["revision"] == COMMIT


def test_an_explicit_license_and_request_win(hub: Hub, home: Any) -> None:
    _, recorder, _ = home
    ds = hub.load()
    mit = ingest_dataset(recorder, ds, license="MIT")
    assert _statement(recorder, mit.attestation.log_index)["predicate"]["license"]["spdx"] == "MIT"
    request = IngestRequest(source="https://mirror.example.org/reviews", license="CC0-1.0")
    mirrored = ingest_dataset(recorder, ds, request)
    source = _statement(recorder, mirrored.attestation.log_index)["predicate"]["source"]
    assert source == {"uri": "https://mirror.example.org/reviews", "revision": COMMIT}


def test_a_dataset_built_in_memory_needs_a_request(home: Any) -> None:
    _, recorder, _ = home
    ds = datasets.Dataset(InMemoryTable(REVIEWS))
    assert hub_origin(ds) is None
    with pytest.raises(InputError, match="not read from the Hugging Face Hub"):
        ingest_dataset(recorder, ds, license="MIT")
    request = IngestRequest(source="https://example.org/reviews.parquet", license="MIT")
    result = ingest_dataset(recorder, ds, request, name="reviews")
    predicate = _statement(recorder, result.attestation.log_index)["predicate"]
    assert "revision" not in predicate["source"]
    assert "manifest" not in predicate
    assert result.root == sample_set(ds).root.hex()


def test_missing_or_bad_license_is_refused_before_recording(tmp_path: Path, home: Any) -> None:
    _, recorder, _ = home
    hub = build_hub_cache(tmp_path / "nolicense", "org/plain", COMMIT, REVIEWS, license="")
    before = recorder.ledger.size()
    with pytest.raises(InputError, match="no license for org/plain"):
        ingest_dataset(recorder, hub.load())
    with pytest.raises(LicenseError, match="not-a-license"):
        ingest_dataset(recorder, hub.load(), license="not-a-license")
    assert recorder.ledger.size() == before


def test_repo_id_is_checked_against_the_cache(hub: Hub) -> None:
    ds = hub.load()
    origin = hub_origin(ds, repo_id="org/Reviews")  # the cache lowercases the name
    assert origin is not None
    assert origin.repo_id == "org/Reviews"
    with pytest.raises(InputError, match="not the Hub dataset the cache holds"):
        hub_origin(ds, repo_id="other/reviews")


def test_download_checksums_name_the_exact_repository_or_disagree(hub: Hub) -> None:
    ds = hub.load()
    ds.info.download_checksums = {
        f"hf://datasets/Org/Reviews@{COMMIT}/data/train.parquet": {"num_bytes": 1}
    }
    origin = hub_origin(ds)
    assert origin is not None
    assert origin.repo_id == "Org/Reviews"
    ds.info.download_checksums = {
        f"hf://datasets/org/reviews@{'f' * 40}/data/train.parquet": {"num_bytes": 1}
    }
    with pytest.raises(InputError, match="disagree"):
        hub_origin(ds)


def test_datasets_from_two_repositories_are_refused(tmp_path: Path, hub: Hub) -> None:
    other = build_hub_cache(tmp_path / "other", "org/more", "f" * 40, REVIEWS)
    both = datasets.concatenate_datasets([hub.load(), other.load()])
    with pytest.raises(InputError, match="several Hub datasets"):
        hub_origin(both)


def test_the_record_parses_against_the_ingest_schema(hub: Hub, home: Any) -> None:
    import jsonschema

    _, recorder, _ = home
    result = ingest_dataset(recorder, hub.load())
    schema_path = Path(__file__).parents[3] / "docs" / "schemas" / "ingest-v1.json"
    schema = json.loads(schema_path.read_text())
    predicate = _statement(recorder, result.attestation.log_index)["predicate"]
    jsonschema.validate(predicate, schema)
