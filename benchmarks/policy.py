"""CEL policy evaluation: common-expression-language (Rust) vs cel-python (pure Python).

    .venv/bin/python benchmarks/policy.py [--seconds 0.5]

Both engines get the same rules -- every rule of examples/policies/*.toml --
and the same activation: one pinned input with 5 ingest records and 2
transform steps (prov_core.policy.activation). Measured per engine:

* import: ``python -c "import <engine>"`` minus ``python -c pass`` (median of 5);
  for the Rust binding both ``import cel`` and the extension alone, as
  prov_core.policy loads it;
* compile: one rule, source to runnable program;
* convert: the activation into the engine's values, once per decision;
* evaluate: one compiled rule on the converted activation;
* rules/s: compiled rules evaluated per second, and whole decisions per second
  (convert once + evaluate every rule).

The ratio printed last is rules/s (Rust) / rules/s (Python).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prov_core.policy import (  # noqa: E402
    IngestFacts,
    InputFacts,
    Policy,
    StepFacts,
    _cel,
    activation,
)

KEY = "a050837d85070582ccf7394b0988847cc312cb88259b894899f6f239cf1791a5"


def realistic_activation() -> dict[str, Any]:
    now = datetime(2025, 6, 1, tzinfo=UTC)
    licenses = ["CC-BY-4.0", "MIT", "CC0-1.0", "Apache-2.0", "CC-BY-4.0"]
    ingests = tuple(
        IngestFacts(
            source_uri=f"https://data.example.org/reviews/part-{n}.csv",
            issuer="Example Org",
            license=lic,
            license_url="https://spdx.org/licenses/" + lic,
            collection_method="download",
            retrieved_at=now - timedelta(days=30 + n),
            origin_geography="DE",
            confidentiality="public",
            intended_use="sentiment classifier training",
            collector="alice@worker-1",
            signer_keyid=KEY,
            key_status="active",
            verified=True,
            log_index=n,
        )
        for n, lic in enumerate(licenses)
    )
    steps = tuple(
        StepFacts(name=name, signer_keyid=KEY, key_status="active", verified=True, log_index=5 + n)
        for n, name in enumerate(["clean", "dedupe"])
    )
    commit = "c" * 64
    inp = InputFacts(
        uri=f"provgate://reviews/{commit}/train",
        store="local",
        repository="reviews",
        ref=commit,
        commit=commit,
        pinned=True,
        objects=5,
        ingests=ingests,
        steps=steps,
    )
    return activation([inp], now=now, keys={KEY: "active"})


def per_call(fn: Callable[[], object], seconds: float) -> float:
    """Median seconds per call over ~``seconds`` of batches."""
    fn()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds / 10:
        fn()
        n += 1
    batch = max(1, n)
    samples = []
    for _ in range(7):
        t = time.perf_counter()
        for _ in range(batch):
            fn()
        samples.append((time.perf_counter() - t) / batch)
    return statistics.median(samples)


def import_ms(code: str) -> float:
    def run(c: str) -> float:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", c], check=True, cwd=ROOT)
        return time.perf_counter() - t

    base = statistics.median(run("pass") for _ in range(5))
    return (statistics.median(run(code) for _ in range(5)) - base) * 1e3


def measure(
    eng: dict[str, Any], exprs: list[str], act: dict[str, Any], seconds: float
) -> dict[str, float]:
    """Times in µs per compile / convert / rule evaluation, and rates per second."""
    n = len(exprs)
    compile_, convert, run = eng["compile"], eng["convert"], eng["run"]
    programs = [compile_(e) for e in exprs]
    ctx = convert(act)
    for prog in programs:  # the engines must agree: every rule passes this activation
        assert bool(run(prog, ctx)) is True
    compile_s = statistics.mean(per_call(lambda e=e: compile_(e), seconds / n) for e in exprs)
    convert_s = per_call(lambda: convert(act), seconds)
    eval_s = per_call(lambda: [run(p, ctx) for p in programs], seconds) / n
    # one decision: convert a fresh activation (first use included) and run every rule
    decision_s = per_call(lambda: [run(p, c) for c in [convert(act)] for p in programs], seconds)
    return {
        "compile": compile_s * 1e6,
        "convert": convert_s * 1e6,
        "eval": eval_s * 1e6,
        "rules/s": 1 / eval_s,
        "decisions/s": 1 / decision_s,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=0.5, help="time per measurement")
    args = ap.parse_args()

    exprs: list[str] = []
    for path in sorted((ROOT / "examples" / "policies").glob("*.toml")):
        exprs.extend(rule.expr for rule in Policy.load(path).rules)
    act = realistic_activation()
    n = len(exprs)

    import celpy

    cel = _cel()
    env = celpy.Environment()

    def py_compile(e: str) -> Any:
        return env.program(env.compile(e))

    engines: dict[str, dict[str, Any]] = {
        "common-expression-language 0.10.0 (Rust)": {
            "compile": cel.compile,
            "convert": lambda a: cel.Context(variables=a),
            "run": lambda prog, ctx: prog.execute(ctx),
            "import": "import prov_core.policy as p; p._cel()",
        },
        "cel-python 0.5.0 (pure Python)": {
            "compile": py_compile,
            "convert": celpy.json_to_cel,
            "run": lambda prog, ctx: prog.evaluate(ctx),
            "import": "import celpy",
        },
    }
    print(f"{n} rules from examples/policies/*.toml; 1 input, 5 ingest records, 2 steps\n")
    print(
        f"{'engine':44} {'import ms':>9} {'compile µs':>10} {'convert µs':>10} "
        f"{'eval µs':>9} {'rules/s':>9} {'decisions/s':>11}"
    )
    rates: dict[str, float] = {}
    for name, eng in engines.items():
        row = measure(eng, exprs, act, args.seconds)
        rates[name] = row["rules/s"]
        print(
            f"{name:44} {import_ms(eng['import']):9.0f} {row['compile']:10.1f} "
            f"{row['convert']:10.1f} {row['eval']:9.1f} {row['rules/s']:9.0f} {row['decisions/s']:11.0f}"
        )
    print(f"\n{'import cel (package, pulls in its CLI)':44} {import_ms('import cel'):9.0f}")
    rust, py = rates.values()
    print(f"\nratio rules/s Rust / Python: {rust / py:.1f}x")


if __name__ == "__main__":
    main()
