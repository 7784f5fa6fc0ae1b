"""Federated averaging with attested updates: ``python examples/federated_fedavg.py [HOME]``.

Six clients train a tiny linear model (y = w0*x0 + w1*x1 + b) on their own
data for two rounds of FedAvg, in one process. Each records its data's
ingest and snapshot records in the federation's ledger with its own key and
signs every update it sends (``prov_core.federated.attest_update``). Three
misbehave every round:

    client-d  tampered     signs its update, then sends other bytes
    client-e  unattested   sends its update without an attestation
    client-f  rogue key    its key may sign data records, not updates

The aggregator refuses those three (each refusal a signed SLSA VSA in the
ledger), averages the other three, signs the aggregate with their updates as
inputs, and the final model's chain of custody verifies back to the honest
clients' ingest records. Needs numpy (the dev extra). HOME defaults to a
temporary directory.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from prov_core.federated import (
    AcceptedUpdate,
    Aggregator,
    GlobalModel,
    RoundResult,
    SignedUpdate,
    attest_update,
    client_data,
)
from prov_core.home import Home, init_home
from prov_core.ingest import IngestRequest, ingest_path
from prov_core.lineage import open_lineage
from prov_core.signing import Ed25519Signer
from prov_core.snapshot_record import commit_snapshot
from prov_core.statement import FEDERATED_UPDATE_V1, INGEST_V1, SNAPSHOT_V1, ClientData
from prov_core.step import Recorder

FEDERATION = "fedavg-demo"
TRUE_WEIGHTS = np.array([2.0, -3.0, 0.5])  # w0, w1, bias
EPOCHS, LEARNING_RATE = 25, 0.1


@dataclass(frozen=True)
class Client:
    """One participant: its key, its local data (never sent) and how it behaves."""

    id: str
    signer: Ed25519Signer
    x: np.ndarray
    y: np.ndarray
    data: ClientData
    behaviour: str = "honest"  # honest | tampered | unattested | rogue


def encode(weights: np.ndarray) -> bytes:
    """Model weights as bytes: little-endian float64."""
    return np.asarray(weights, dtype="<f8").tobytes()


def decode(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<f8")


def local_update(base: bytes, x: np.ndarray, y: np.ndarray) -> bytes:
    """A client's local training: full-batch gradient descent on squared error from ``base``."""
    w = decode(base).copy()
    xb = np.column_stack([x, np.ones(len(x))])
    for _ in range(EPOCHS):
        w -= LEARNING_RATE * 2 / len(x) * xb.T @ (xb @ w - y)
    return encode(w)


def fedavg(accepted: Sequence[AcceptedUpdate]) -> bytes:
    """FedAvg: the accepted updates' weights averaged, each weighted by its signed example count."""
    weights = np.array([a.examples for a in accepted], dtype=float)
    return encode(np.average([decode(a.update) for a in accepted], axis=0, weights=weights))


def join(
    home: Home, recorder: Recorder, client_id: str, *, n: int, seed: int, behaviour: str
) -> Client:
    """A client generates its key and data, ingests and snapshots the data with that key."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    y = x @ TRUE_WEIGHTS[:2] + TRUE_WEIGHTS[2] + rng.normal(scale=0.1, size=n)
    signer = Ed25519Signer.generate()
    trust = home.trust()  # the federation trusts the client's key for these record types:
    allowed = [INGEST_V1, SNAPSHOT_V1] + ([] if behaviour == "rogue" else [FEDERATED_UPDATE_V1])
    trust.add(signer, predicate_types=allowed, note_name=client_id)
    trust.save(home.trust_path)
    csv = home.path.parent / "clients" / client_id / "local.csv"  # stays with the client
    csv.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(csv, np.column_stack([x, y]), delimiter=",", header="x0,x1,y", comments="")
    with home.open_store() as store, home.open_index() as index:
        store.create_repository(client_id, "main")
        own = Recorder(recorder.ledger, signer, origin=home.origin)  # the client's own key
        ingest_path(
            own, csv, IngestRequest(f"file://{client_id}/local.csv", "CC0-1.0"), index=index
        )
        snapshot = commit_snapshot(own, store, client_id, "main", csv, index=index)
    return Client(client_id, signer, x, y, client_data(snapshot), behaviour)


def send(client: Client, base: GlobalModel, round: int) -> SignedUpdate:
    """What a client sends for ``round``: its update and the attestation it signed (or not)."""
    update = local_update(base.data, client.x, client.y)
    signed = attest_update(
        client.signer,
        federation=FEDERATION,
        round=round,
        client_id=client.id,
        base_model=base.data,
        data=[client.data],
        update=update,
        examples=len(client.x),
        parameters={"epochs": EPOCHS, "learningRate": LEARNING_RATE},
    )
    if client.behaviour == "tampered":  # bytes changed after signing: a poisoned update
        return replace(signed, update=encode(decode(update) * 10))
    if client.behaviour == "unattested":
        return replace(signed, envelope=None)
    return signed


def run(home_path: Path, rounds: int = 2) -> tuple[Home, list[Client], list[RoundResult]]:
    """The whole simulation in ``home_path``: join, then ``rounds`` rounds of FedAvg."""
    home, _ = init_home(home_path)
    results: list[RoundResult] = []
    with Recorder.from_home(home) as recorder:
        behaviours = ["honest"] * 3 + ["tampered", "unattested", "rogue"]
        clients = [
            join(home, recorder, f"client-{'abcdef'[i]}", n=40 + 20 * i, seed=i, behaviour=b)
            for i, b in enumerate(behaviours)
        ]
        aggregator = Aggregator(
            recorder,
            home.trust(),
            federation=FEDERATION,
            clients={c.id: {c.signer.keyid} for c in clients},
        )
        model = aggregator.start(encode(np.zeros(3)))
        for r in range(1, rounds + 1):
            updates = [send(c, model, r) for c in clients]
            results.append(aggregator.aggregate(updates, base=model, combine=fedavg))
            model = results[-1].model
    return home, clients, results


def main(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        home, _, results = run(Path(argv[0]) if argv else Path(tmp) / "home")
        for result in results:
            print(f"round {result.round}: weights {np.round(decode(result.model.data), 3)}")
            for a in result.accepted:
                record = a.attestation.log_index
                print(f"  accepted {a.client_id}: {a.examples} examples, record {record}")
            for refusal in result.refused:
                print(f"  refused  {refusal}")
        final = results[-1].model
        with open_lineage(home) as lineage:
            report = lineage.verify_chain(f"blake3:{final.blake3}")
            up = lineage.upstream(final.attestation.log_index)
        sources = sorted(n.source_uri or "" for n in up.of_kind("ingest"))
        verdict = "verified" if report.ok else f"BROKEN at {report.broken}"
        print(f"final model {final.blake3}: chain {verdict} ({len(report.records)} records)")
        print(f"  trained on {', '.join(sources)}")
        return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
