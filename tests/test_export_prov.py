"""W3C PROV-JSON export of a lineage subgraph (prov_core.export.prov) through the real ``prov``."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from prov.model import (
    ProvActivity,
    ProvAgent,
    ProvAssociation,
    ProvCommunication,
    ProvDerivation,
    ProvDocument,
    ProvEntity,
    ProvGeneration,
    ProvUsage,
)

from prov_core.errors import InputError
from prov_core.export.prov import export_prov, to_prov_json

from .report_pipeline import HOSTILE, Pipeline, pipeline


@pytest.fixture
def pipe(tmp_path: Path) -> Iterator[Pipeline]:
    with pipeline(tmp_path) as p:
        yield p


def _ids(doc: ProvDocument, cls: type) -> set[str]:
    return {str(r.identifier) for r in doc.get_records(cls)}


def _pairs(doc: ProvDocument, cls: type) -> set[tuple[str, str]]:
    """The first two formal arguments of every relation of ``cls``, as text."""
    return {(str(r.args[0]), str(r.args[1])) for r in doc.get_records(cls)}


def test_prov_json_round_trips_with_the_expected_nodes_and_relations(pipe: Pipeline) -> None:
    doc = export_prov(f"blake3:{pipe.model_b3}", pipe.home)
    text = to_prov_json(doc)
    assert json.loads(text)["prefix"]["provgate"] == "https://provgate.dev/ns/prov#"
    back = ProvDocument.deserialize(content=text, format="json")
    assert back == doc

    ing, train, gate = pipe.ingests, pipe.train.log_index, pipe.gate.vsa.log_index
    clean, merge = pipe.clean.log_index, pipe.merge.log_index
    snaps = (pipe.snap_train.log_index, pipe.snap_val.log_index)
    model = f"provgate:artifact/{pipe.model_sha256}"

    entities = _ids(back, ProvEntity)
    assert {f"log:{ing[k]}/data" for k in "ABCD"} <= entities
    assert {f"provgate:source/{ing[k]}" for k in "ABCD"} <= entities
    assert {f"log:{s}" for s in snaps} <= entities
    assert model in entities
    assert f"provgate:policy/{pipe.gate.policy_digest}" in entities
    assert f"log:{gate}/decision" in entities
    activities = _ids(back, ProvActivity)
    assert activities == {f"log:{i}" for i in (*ing.values(), clean, merge, gate, train)}
    keyid = pipe.recorder.signer.keyid
    agents = _ids(back, ProvAgent)
    assert f"provgate:key/{keyid}" in agents
    assert "provgate:collector/alice@example.org" in agents

    used = _pairs(back, ProvUsage)
    assert {(f"log:{train}", f"log:{s}") for s in snaps} <= used
    assert (f"log:{clean}", f"log:{ing['A']}/data") in used
    assert (f"log:{ing['A']}", f"provgate:source/{ing['A']}") in used
    assert (f"log:{gate}", f"provgate:policy/{pipe.gate.policy_digest}") in used
    generated = _pairs(back, ProvGeneration)
    assert (model, f"log:{train}") in generated
    assert (f"log:{ing['C']}/data", f"log:{ing['C']}") in generated
    derived = _pairs(back, ProvDerivation)
    assert {(model, f"log:{s}") for s in snaps} <= derived
    assert (f"log:{pipe.snap_val.log_index}", f"log:{ing['D']}/data") in derived
    associated = _pairs(back, ProvAssociation)
    assert {
        (f"log:{i}", f"provgate:key/{keyid}") for i in (clean, merge, train, gate)
    } <= associated
    assert (f"log:{ing['B']}", "provgate:collector/alice@example.org") in associated
    assert (f"log:{train}", f"log:{gate}") in _pairs(back, ProvCommunication)

    # Every PROV node leads back to its signed record.
    [train_activity] = [
        a for a in back.get_records(ProvActivity) if str(a.identifier) == f"log:{train}"
    ]
    attrs = {str(k): v for k, v in train_activity.attributes}
    assert attrs["provgate:logIndex"] == train
    assert attrs["provgate:envelopeSha256"] == pipe.train.envelope_sha256
    # Hostile strings are values, never identifiers.
    assert HOSTILE in text
    assert "<script" not in "".join(entities | activities | agents)


def test_downstream_export_reaches_the_model(pipe: Pipeline) -> None:
    doc = export_prov(pipe.ingests["D"], pipe.home, down=True)
    back = ProvDocument.deserialize(content=to_prov_json(doc), format="json")
    assert f"provgate:artifact/{pipe.model_sha256}" in _ids(back, ProvEntity)
    assert f"log:{pipe.ingests['A']}/data" not in _ids(back, ProvEntity)


def test_missing_prov_package_is_a_clear_error(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "prov", None)
    monkeypatch.setitem(sys.modules, "prov.model", None)
    with pytest.raises(InputError, match=r"provgate\[prov\]"):
        export_prov(pipe.train.log_index, pipe.home)
