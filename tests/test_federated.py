"""Federated learning: attested client updates, refusals on record, the aggregate's lineage.

The simulation is examples/federated_fedavg.py, run in-process once per
module: six clients, two rounds of FedAvg on a linear model; client-d sends
bytes other than those it signed, client-e sends no attestation, client-f
signs with a key the trust store allows for data records but not updates.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from prov_core.errors import FederatedRoundRefused, InputError
from prov_core.federated import (
    VERIFIER_ID,
    Aggregator,
    GlobalModel,
    RoundResult,
    SignedUpdate,
    attest_update,
    update_name,
)
from prov_core.home import Home, open_home
from prov_core.lineage import open_lineage
from prov_core.signing import Ed25519Signer, Envelope, Signature, verify_envelope
from prov_core.statement import (
    FEDERATED_UPDATE_V1,
    SLSA_VSA_V1,
    ClientData,
    ResourceDescriptor,
    Statement,
)
from prov_core.step import Recorder

from .conftest import load_example, tamper_statement

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "federated_fedavg.py"
HONEST = ("client-a", "client-b", "client-c")
EXPECTED_REFUSALS = {
    "client-d": ("update-digest",),
    "client-e": ("unattested",),
    "client-f": ("untrusted-key",),
}


fl = load_example("federated_fedavg")


@dataclass
class Sim:
    home: Home
    clients: dict[str, Any]
    results: list[RoundResult]


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Sim:
    home, clients, results = fl.run(tmp_path_factory.mktemp("federated") / "home")
    return Sim(home, {c.id: c for c in clients}, results)


@pytest.fixture
def aggregator(sim: Sim, tmp_path: Path) -> Iterator[Aggregator]:
    """A fresh aggregator on a copy of the simulation's home (same federation, trust,
    enrolment, ledger), so what a test records leaves the simulation's ledger as it was."""
    shutil.copytree(sim.home.path, tmp_path / "home")
    home = open_home(tmp_path / "home")
    with Recorder.from_home(home) as recorder:
        yield Aggregator(
            recorder,
            home.trust(),
            federation=fl.FEDERATION,
            clients={c.id: {c.signer.keyid} for c in sim.clients.values()},
        )


def _round_3(sim: Sim, client_id: str = "client-a", **change: Any) -> SignedUpdate:
    """An honest update of ``client_id`` for round 3, from the final model, with ``change``."""
    c = sim.clients[client_id]
    base = sim.results[-1].model
    args: dict[str, Any] = {
        "federation": fl.FEDERATION,
        "round": 3,
        "client_id": c.id,
        "base_model": base.data,
        "data": [c.data],
        "update": fl.local_update(base.data, c.x, c.y),
        "examples": len(c.x),
    }
    args.update(change)
    signer = args.pop("signer", c.signer)
    return attest_update(signer, **args)


def _codes(aggregator: Aggregator, sim: Sim, update: SignedUpdate) -> list[str]:
    verdict = aggregator.check(update, round=3, base=sim.results[-1].model)
    return [r.code for r in verdict.reasons]


# -- refusals ---------------------------------------------------------------------


def test_misbehaving_clients_are_refused_and_named_in_every_round(sim: Sim) -> None:
    for result in sim.results:
        assert [a.client_id for a in result.accepted] == list(HONEST)
        assert {r.client_id: r.codes for r in result.refused} == EXPECTED_REFUSALS
        text = {r.client_id: str(r) for r in result.refused}
        assert "its bytes were changed after signing" in text["client-d"]
        assert "came without an attestation" in text["client-e"]
        assert f"not allowed to sign {FEDERATED_UPDATE_V1}" in text["client-f"]
        assert sim.clients["client-f"].signer.keyid in text["client-f"]
        summary = result.to_dict()
        assert [r["client"] for r in summary["refused"]] == sorted(EXPECTED_REFUSALS)


def test_each_refusal_is_a_signed_decision_in_the_ledger(sim: Sim) -> None:
    trust = sim.home.trust()
    with sim.home.open_ledger() as ledger:
        stored = {hashlib.sha256(leaf).hexdigest() for _, leaf in ledger.entries()}
        for refusal in sim.results[0].refused:
            envelope = Envelope.parse(ledger.entry(refusal.decision.log_index))
            verify_envelope(envelope, trust)  # signed by the aggregator's trusted key
            statement = Statement.parse(envelope.payload)
            p = statement.predicate
            assert statement.predicate_type == SLSA_VSA_V1
            assert p["verifier"]["id"] == VERIFIER_ID
            assert p["verificationResult"] == "FAILED"
            assert p["verifiedLevels"] == []
            assert p["provgateFederated"]["client"] == refusal.client_id
            assert p["provgateFederated"]["round"] == 1
            assert [r["code"] for r in p["provgateReasons"]] == list(refusal.codes)
            assert {r["input"] for r in p["provgateReasons"]} == {refusal.client_id}
            assert statement.subjects[0].name == update_name(fl.FEDERATION, 1, refusal.client_id)
            if refusal.client_id == "client-e":  # nothing signed, nothing to name
                assert "inputAttestations" not in p
                assert p["provgateFederated"]["keyid"] is None
            else:  # the refused envelope is named by digest and never appended
                assert p["inputAttestations"][0]["digest"]["sha256"] == refusal.envelope_sha256
                assert refusal.envelope_sha256 not in stored
                keyid = sim.clients[refusal.client_id].signer.keyid
                assert p["provgateFederated"]["keyid"] == keyid


# -- the numbers ------------------------------------------------------------------


def test_the_aggregate_is_fedavg_of_exactly_the_accepted_updates(sim: Sim) -> None:
    base = fl.encode(np.zeros(3))
    for result in sim.results:
        honest = {c: fl.local_update(base, sim.clients[c].x, sim.clients[c].y) for c in HONEST}
        assert {a.client_id: a.update for a in result.accepted} == honest
        total = sum(len(sim.clients[c].x) for c in HONEST)
        expected = sum(len(sim.clients[c].x) * fl.decode(honest[c]) for c in HONEST) / total
        got = fl.decode(result.model.data)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
        # The poisoned update (x10) would have moved the model far away.
        d = sim.clients["client-d"]
        poisoned = fl.decode(fl.local_update(base, d.x, d.y)) * 10
        with_d = (expected * total + len(d.x) * poisoned) / (total + len(d.x))
        assert np.abs(with_d - got).max() > 1
        base = result.model.data
    np.testing.assert_allclose(fl.decode(base), fl.TRUE_WEIGHTS, atol=0.05)


# -- lineage ----------------------------------------------------------------------


def test_lineage_from_the_aggregate_reaches_exactly_the_accepted_clients(sim: Sim) -> None:
    final = sim.results[-1].model
    data_records = {c: sim.clients[c].data.record.annotations["logIndex"] for c in sim.clients}
    with open_lineage(sim.home) as lineage:
        up = lineage.upstream(final.attestation.log_index)
        report = lineage.verify_chain(f"blake3:{final.blake3}")
        trained_on_a = {n.log_index for n in lineage.models(source="file://client-a/local.csv")}
        trained_on_d = lineage.models(source="file://client-d/local.csv")
    assert trained_on_a == {r.model.attestation.log_index for r in sim.results}
    assert trained_on_d == []
    updates = {n.name for n in up.of_kind("federated-update")}
    assert updates == {f"{fl.FEDERATION}/round-{r}/{c}" for r in (1, 2) for c in HONEST}
    snapshots = {n.log_index for n in up.of_kind("snapshot")}
    assert snapshots == {data_records[c] for c in HONEST}
    sources = {n.source_uri for n in up.of_kind("ingest")}
    assert sources == {f"file://{c}/local.csv" for c in HONEST}
    refused = {r.decision.log_index for result in sim.results for r in result.refused}
    assert not ({data_records[c] for c in EXPECTED_REFUSALS} | refused) & set(up.nodes)
    # Each update names its client's snapshot record, which names the same root.
    for a in sim.results[-1].accepted:
        assert (a.attestation.log_index, data_records[a.client_id]) in {
            (e.child, e.parent) for e in up.edges if e.kind == "input"
        }
    assert report.ok, report.problems
    assert set(report.records) == set(up.nodes)
    assert sim.results[0].model.attestation.log_index in report.records  # via the base model


def test_an_edited_update_record_breaks_the_aggregates_chain(sim: Sim, tmp_path: Path) -> None:
    copy = tmp_path / "home"
    shutil.copytree(sim.home.path, copy)
    victim = sim.results[-1].accepted[0].attestation.log_index

    def inflate(statement: dict[str, Any]) -> None:
        statement["predicate"]["update"]["examples"] = 10_000

    tamper_statement(open_home(copy).ledger_path, victim, inflate)
    with open_lineage(open_home(copy)) as lineage:
        report = lineage.verify_chain(f"blake3:{sim.results[-1].model.blake3}")
    assert not report.ok
    assert victim in report.broken
    assert {p.check for p in report.problems if p.log_index == victim} >= {"link", "signature"}


# -- every check ------------------------------------------------------------------


def test_an_honest_update_passes_the_checks(aggregator: Aggregator, sim: Sim) -> None:
    assert _codes(aggregator, sim, _round_3(sim)) == []


def test_checks_name_the_wrong_round_federation_and_base_model(
    aggregator: Aggregator, sim: Sim
) -> None:
    assert _codes(aggregator, sim, _round_3(sim, round=5)) == ["wrong-round"]
    assert _codes(aggregator, sim, _round_3(sim, federation="other")) == ["wrong-federation"]
    stale = sim.results[0].model.data  # last round's model
    assert _codes(aggregator, sim, _round_3(sim, base_model=stale)) == ["wrong-base-model"]


def test_checks_bind_the_update_to_its_client_and_key(aggregator: Aggregator, sim: Sim) -> None:
    a = _round_3(sim)
    relayed = SignedUpdate("client-b", a.update, a.envelope)  # a's update sent as b's
    assert _codes(aggregator, sim, relayed) == ["client-mismatch", "client-key"]
    b_key = sim.clients["client-b"].signer  # b signs an update claiming to be a
    assert _codes(aggregator, sim, _round_3(sim, signer=b_key)) == ["client-key"]


def test_checks_refuse_unknown_revoked_and_forged_signatures(
    aggregator: Aggregator, sim: Sim
) -> None:
    stranger = Ed25519Signer.generate()
    verdict = aggregator.check(_round_3(sim, signer=stranger), round=3, base=sim.results[-1].model)
    assert [r.code for r in verdict.reasons] == ["untrusted-key"]
    assert "not in the trust store" in verdict.reasons[0].message
    trust = sim.home.trust()
    trust.revoke(sim.clients["client-a"].signer.keyid, "laptop stolen")
    revoked = Aggregator(aggregator.recorder, trust, federation=fl.FEDERATION)
    verdict = revoked.check(_round_3(sim), round=3, base=sim.results[-1].model)
    assert [r.code for r in verdict.reasons] == ["revoked-key"]
    assert "laptop stolen" in verdict.reasons[0].message
    # A signed weight inflated after signing: the signature no longer covers the payload.
    good = _round_3(sim)
    assert good.envelope is not None
    env = Envelope.parse(good.envelope)
    inflated = env.payload.replace(b'"examples":40', b'"examples":9999')
    forged = Envelope(inflated, env.payload_type, env.signatures)
    assert forged.payload != env.payload
    sent = replace(good, envelope=forged.canonical_bytes())
    assert _codes(aggregator, sim, sent) == ["bad-signature"]
    twice = Envelope(env.payload, env.payload_type, (*env.signatures, Signature("x", b"y")))
    assert _codes(aggregator, sim, replace(good, envelope=twice.canonical_bytes())) == ["malformed"]
    assert _codes(aggregator, sim, replace(good, envelope=b"not an envelope")) == ["malformed"]


def test_checks_follow_the_data_records_into_the_ledger(aggregator: Aggregator, sim: Sim) -> None:
    a = sim.clients["client-a"]
    rec = a.data.record
    index = rec.annotations["logIndex"]

    def with_record(log_index: int, sha256: str, root: str = a.data.root) -> list[str]:
        annotations = {**rec.annotations, "logIndex": log_index}
        moved = replace(rec, digest={"sha256": sha256}, annotations=annotations)
        data = ClientData(a.data.snapshot, root, moved)
        return _codes(aggregator, sim, _round_3(sim, data=[data]))

    with sim.home.open_ledger() as ledger:
        size = ledger.size()
        ingest_sha = hashlib.sha256(ledger.entry(index - 1)).hexdigest()
    sha = rec.digest["sha256"]
    assert with_record(size + 5, sha) == ["data-record"]  # not in the ledger
    assert with_record(index, "0" * 64) == ["data-record"]  # not the record signed
    assert with_record(index - 1, ingest_sha) == ["data-record"]  # the ingest, not a snapshot
    assert with_record(index, sha, root="1" * 64) == ["data-root"]
    b = sim.clients["client-b"].data  # b's snapshot record under a's URI
    assert with_record(b.record.annotations["logIndex"], b.record.digest["sha256"], b.root) == [
        "data-record"
    ]


# -- rounds -----------------------------------------------------------------------


def test_a_round_with_no_verified_update_is_refused_naming_every_client(
    aggregator: Aggregator, sim: Sim
) -> None:
    a, b = _round_3(sim), _round_3(sim, "client-b")
    updates = [replace(a, envelope=None), replace(b, update=b.update[::-1])]
    size = aggregator.recorder.ledger.size()
    with pytest.raises(FederatedRoundRefused, match="0 update\\(s\\) verified") as caught:
        aggregator.aggregate(updates, base=sim.results[-1].model, combine=fl.fedavg)
    message = str(caught.value)
    assert "client-a: unattested" in message
    assert "client-b: update-digest" in message
    assert [r.client_id for r in caught.value.refusals] == ["client-a", "client-b"]
    assert aggregator.recorder.ledger.size() == size + 2  # the two refusals, nothing else


def test_a_second_update_from_a_client_is_refused(aggregator: Aggregator, sim: Sim) -> None:
    a, b = _round_3(sim), _round_3(sim, "client-b")
    result = aggregator.aggregate([a, b, a], base=sim.results[-1].model, combine=fl.fedavg)
    assert [x.client_id for x in result.accepted] == ["client-a", "client-b"]
    assert [(r.client_id, r.codes) for r in result.refused] == [("client-a", ("duplicate",))]
    na, nb = len(sim.clients["client-a"].x), len(sim.clients["client-b"].x)
    expected = (na * fl.decode(a.update) + nb * fl.decode(b.update)) / (na + nb)
    np.testing.assert_allclose(fl.decode(result.model.data), expected, rtol=0, atol=1e-12)
    assert result.round == 3


def test_bad_arguments_are_input_errors(aggregator: Aggregator, sim: Sim) -> None:
    base = sim.results[-1].model
    with pytest.raises(InputError, match="not the model's bytes"):
        aggregator.aggregate([_round_3(sim)], base=base, combine=lambda _: "weights")  # type: ignore[arg-type,return-value]
    other = GlobalModel("other", 2, base.data, base.attestation)
    with pytest.raises(InputError, match="federation 'other'"):
        aggregator.aggregate([], base=other, combine=fl.fedavg)
    with pytest.raises(InputError, match="min_accepted"):
        aggregator.aggregate([], base=base, combine=fl.fedavg, min_accepted=0)
    with pytest.raises(InputError, match="client id"):
        SignedUpdate("../etc", b"", None)
    with pytest.raises(InputError, match="examples"):
        _round_3(sim, examples=0)
    with pytest.raises(InputError, match="logIndex"):
        ClientData(
            "provgate://a/" + "c" * 64, "1" * 64, ResourceDescriptor(digest={"sha256": "2" * 64})
        )


# -- the example ------------------------------------------------------------------


def test_the_example_runs(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), str(tmp_path / "home")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for client, (code,) in EXPECTED_REFUSALS.items():
        assert out.count(f"refused  {client}: {code}:") == 2
    for client in HONEST:
        assert out.count(f"accepted {client}:") == 2
    assert "chain verified (15 records)" in out
    sources = ", ".join(f"file://{c}/local.csv" for c in HONEST)
    assert f"trained on {sources}" in out


def test_the_docs_show_the_examples_own_code() -> None:
    """Each Python block of docs/integrations.md's section is lines of the example, dedented."""
    doc = (REPO / "docs" / "integrations.md").read_text()
    section = doc.split("## Federated learning", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 3
    source = [line.strip() for line in EXAMPLE.read_text().splitlines()]
    for block in blocks:
        lines = [line.strip() for line in block.strip("\n").splitlines()]
        starts = [i for i, line in enumerate(source) if line == lines[0]]
        assert any(source[i : i + len(lines)] == lines for i in starts), block
