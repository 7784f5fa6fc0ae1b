"""Lineage walks: the SQLite edge index (recursive CTE) vs networkx, on a 1,000,000-edge graph.

    .venv/bin/python benchmarks/lineage.py [--pipelines 10000] [--walks 300] [--records 2000]

The graph is synthesized straight into a LineageIndex (no signing): each of
``--pipelines`` pipelines has 100 edges and 43 nodes, like a real one::

    10 ingest records (one of them drawn from 1,000 ingests shared by all pipelines)
    20 transforms, each reading 2 ingests                         40 edges
    10 transforms, each reading 2 of the first 20                 20 edges
    1 snapshot derived from all 30 transforms' outputs            30 edges
    1 training step reading the snapshot                           1 edge
    1 gate decision naming the snapshot and 8 records              9 edges

An upstream walk from a training step (a model) reaches 42 records. Timed,
on the same graph in the same run, for ``--walks`` randomly chosen models
(the same models for both):

* provgate ``LineageIndex.walk``: one recursive CTE returning the ids reached;
* provgate ``LineageIndex.subgraph``: the nodes with their attributes and the
  edges walked (what ``provgate trace`` prints);
* networkx ``nx.ancestors`` on a DiGraph holding the same edges (parent -> child).

The ratio printed is networkx / provgate (ids only); > 1 means provgate is
faster. Then ``--records`` real signed step records are appended to a real
ledger and ``LineageIndex.catch_up`` is timed over them (records/s indexed).
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prov_core.lineage_index import LineageIndex  # noqa: E402

SHARED = 1000
PER_PIPELINE = 43


def synthesize(
    pipelines: int, seed: int = 7
) -> tuple[list[tuple[int, str, str]], list[tuple[int, int, str]], list[int]]:
    """Nodes ``(id, kind, name)``, edges ``(child, parent, kind)`` and the model ids."""
    rnd = random.Random(seed)
    nodes: list[tuple[int, str, str]] = [(i, "ingest", f"shared-{i}") for i in range(SHARED)]
    edges: list[tuple[int, int, str]] = []
    models: list[int] = []
    nid = SHARED
    for p in range(pipelines):
        base = nid
        ingests = list(range(base, base + 9))
        nodes += [(i, "ingest", f"p{p}-src{i - base}") for i in ingests]
        ingests.append(rnd.randrange(SHARED))
        t1 = list(range(base + 9, base + 29))
        t2 = list(range(base + 29, base + 39))
        snap, train, gate = base + 39, base + 40, base + 41
        # base + 42 is a spare node id (43 per pipeline keeps ids aligned)
        nodes += [(i, "transform", f"p{p}-t{i}") for i in t1 + t2]
        nodes += [(snap, "snapshot", f"p{p}-snap"), (train, "training", f"p{p}-model")]
        nodes += [(gate, "gate", f"p{p}-gate"), (base + 42, "other", f"p{p}-spare")]
        for t in t1:
            for src in rnd.sample(ingests, 2):
                edges.append((t, src, "input"))
        for t in t2:
            for src in rnd.sample(t1, 2):
                edges.append((t, src, "input"))
        edges += [(snap, t, "derived-from") for t in t1 + t2]
        edges.append((train, snap, "input"))
        edges.append((gate, snap, "verified"))
        edges += [(gate, t, "verified") for t in rnd.sample(t2, 8)]
        models.append(train)
        nid += PER_PIPELINE
    return nodes, edges, models


def timed(fn: Callable[[int], object], picks: list[int]) -> list[float]:
    out: list[float] = []
    for m in picks:
        t0 = time.perf_counter()
        fn(m)
        out.append(time.perf_counter() - t0)
    return out


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def ms(xs: list[float]) -> str:
    xs = sorted(xs)
    p99 = xs[min(len(xs) - 1, int(len(xs) * 0.99))]
    return f"median {statistics.median(xs) * 1e3:.3f} ms, p99 {p99 * 1e3:.3f} ms"


def catch_up_rate(records: int, tmp: Path) -> tuple[float, int]:
    """Append ``records`` real signed records (ingests and steps) and time one catch-up."""
    from prov_core.home import init_home
    from prov_core.statement import Statement, Subject, ingest_predicate
    from prov_core.step import Artifact, CodeIdentity, Recorder, _StepSpec, step_statement

    home, _ = init_home(tmp / "home")
    with Recorder.from_home(home) as rec:
        statements = []
        for i in range(records // 2):
            pred = ingest_predicate(
                source_uri=f"https://data.example.org/{i}",
                retrieved_at="2025-01-01T00:00:00Z",
                collection_method="download",
                license="CC-BY-4.0",
                collector="bench",
                samples={"count": 1, "root": "ab" * 32, "leafEncoding": "file"},
                manifest={"blake3": f"{i:064x}", "files": 1, "bytes": 1},
            )
            statements.append(
                Statement([Subject(f"s{i}", f"{i:064x}")], pred.predicate_type, pred.to_dict())
            )
        atts = []
        for start in range(0, len(statements), 500):
            atts += rec.record_many(statements[start : start + 500])
        steps = []
        for i in range(records - len(atts)):
            src = atts[i % len(atts)]
            out = Artifact(name=f"o{i}", sha256=f"{i + 1:064x}", blake3=f"{10**9 + i:064x}")
            spec = _StepSpec(
                f"t{i}",
                [src],
                [out],
                CodeIdentity(),
                {},
                {},
                {"name": "bench"},
                None,
                None,
                "https://provgate.dev/step/v1",
            )
            steps.append(step_statement(spec))
        for start in range(0, len(steps), 500):
            rec.record_many(steps[start : start + 500])
        with LineageIndex(home.lineage_path) as index:
            t0 = time.perf_counter()
            n = index.catch_up(rec.ledger)
            return time.perf_counter() - t0, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--pipelines", type=int, default=10_000)
    ap.add_argument("--walks", type=int, default=300)
    ap.add_argument("--records", type=int, default=2000)
    args = ap.parse_args()

    import networkx as nx

    nodes, edges, models = synthesize(args.pipelines)
    print(f"graph: {len(nodes):,} nodes, {len(edges):,} edges, {len(models):,} models")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "lineage.sqlite"
        index = LineageIndex(path)
        t0 = time.perf_counter()
        index.load_edges(nodes, edges)
        load_s = time.perf_counter() - t0
        size_mb = sum(p.stat().st_size for p in Path(tmp).iterdir()) / 2**20
        print(f"provgate: loaded into SQLite in {load_s:.1f} s ({size_mb:.0f} MiB with WAL)")
        rss0 = rss_mib()
        t0 = time.perf_counter()
        g = nx.DiGraph()
        g.add_edges_from((p, c) for c, p, _ in edges)
        print(
            f"networkx: DiGraph built in {time.perf_counter() - t0:.1f} s "
            f"(+{rss_mib() - rss0:.0f} MiB resident)"
        )

        rnd = random.Random(11)
        picks = [rnd.choice(models) for _ in range(args.walks)]
        # one cold-ish walk each, then the timed ones
        t0 = time.perf_counter()
        first = index.walk([picks[0]])
        cold = time.perf_counter() - t0
        want = nx.ancestors(g, picks[0]) | {picks[0]}
        assert first == want, (len(first), len(want))
        cte = timed(lambda m: index.walk([m]), picks)
        sub = timed(lambda m: index.subgraph([m]), picks)
        nxt = timed(lambda m: nx.ancestors(g, m), picks)
        reached = len(index.walk([picks[-1]]))
        print(f"upstream walk from a model: {reached} records reached, {args.walks} walks")
        print(f"  first walk (cold cache)            {cold * 1e3:.3f} ms")
        print(f"  provgate CTE (ids)                 {ms(cte)}")
        print(f"  provgate subgraph (nodes + edges)  {ms(sub)}")
        print(f"  networkx ancestors (ids)           {ms(nxt)}")
        ratio = statistics.median(nxt) / statistics.median(cte)
        print(
            f"  networkx / provgate CTE: {ratio:.2f}x; target < 5 ms: "
            f"{'met' if statistics.median(cte) < 0.005 else 'NOT met'}"
        )
        index.close()
        # One question from a fresh process: open the index and walk, against
        # reading the same edge table into networkx and then walking.
        model = picks[0]
        t0 = time.perf_counter()
        with LineageIndex(path) as fresh:
            fresh.walk([model])
        open_walk = time.perf_counter() - t0
        t0 = time.perf_counter()
        with sqlite3.connect(path) as db:
            g2 = nx.DiGraph()
            g2.add_edges_from(db.execute("SELECT parent, child FROM edges"))
        nx.ancestors(g2, model)
        load_walk = time.perf_counter() - t0
        print(
            f"one question, fresh process: provgate open + walk {open_walk * 1e3:.1f} ms; "
            f"networkx load edges + walk {load_walk:.1f} s ({load_walk / open_walk:,.0f}x)"
        )
        del g2
        if args.records:
            secs, n = catch_up_rate(args.records, Path(tmp))
            print(
                f"catch-up: {n} signed records indexed in {secs:.2f} s ({n / secs:,.0f} records/s)"
            )


if __name__ == "__main__":
    main()
