"""CEL policies: strict loading, fail-closed evaluation, the shipped examples."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from prov_core.canonical import canonical_json
from prov_core.errors import InputError, PolicyError
from prov_core.policy import (
    AllOf,
    GenerationFacts,
    IngestFacts,
    InputFacts,
    Policy,
    Rule,
    RuleResult,
    StepFacts,
    activation,
    reference_activation,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "policies"
NOW = datetime(2025, 6, 1, tzinfo=UTC)
KEY = "a" * 64
REF_KEY = reference_activation()["inputs"][0]["ingests"][0]["signer_keyid"]
OTHER = "b" * 64
COMMIT = "c" * 64


def ingest(**over: Any) -> IngestFacts:
    base = IngestFacts(
        source_uri="https://example.org/reviews.csv",
        license="CC-BY-4.0",
        collection_method="download",
        retrieved_at=NOW - timedelta(days=30),
        collector="alice@worker-1",
        signer_keyid=KEY,
        key_status="active",
        verified=True,
        log_index=0,
    )
    return replace(base, **over)


def inp(*ingests: IngestFacts, **over: Any) -> InputFacts:
    base = InputFacts(
        uri=f"provgate://reviews/{COMMIT}/train",
        store="local",
        repository="reviews",
        ref=COMMIT,
        commit=COMMIT,
        pinned=True,
        objects=len(ingests),
        ingests=ingests if ingests else (ingest(),),
        steps=(StepFacts(name="clean", signer_keyid=KEY, key_status="active", verified=True),),
    )
    return replace(base, **over)


def gen(*ingests: IngestFacts, **over: Any) -> GenerationFacts:
    base = GenerationFacts(
        name="paraphrase",
        log_index=9,
        verified=True,
        signer_keyid=KEY,
        key_status="active",
        depth=1,
        generator_digest="6" * 64,
        generator_verified=True,
        generator_training_log_index=8,
        ingests=ingests or (ingest(),),
        seed_ingests=ingests or (ingest(),),
    )
    return replace(base, **over)


def act(*inputs: InputFacts, keys: dict[str, str] | None = None, **kw: Any) -> dict[str, Any]:
    return activation(inputs or (inp(),), now=NOW, keys=keys or {KEY: "active"}, **kw)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "provgate.toml"
    path.write_text(text, encoding="utf-8")
    return path


def verdicts(policy: Rule, activation: dict[str, Any]) -> dict[str, bool]:
    return {r.id: r.passed for r in policy.evaluate(activation)}


# --------------------------------------------------------------------------
# Loading


def test_load_minimal_policy(tmp_path: Path) -> None:
    path = write(
        tmp_path, '[[rule]]\nid = "pinned"\nmessage = "pin it"\nexpr = "inputs.all(i, i.pinned)"\n'
    )
    policy = Policy.load(path)
    assert [r.id for r in policy.rules] == ["pinned"]
    assert policy.rules[0].applies_to == "any"
    assert policy.source == str(path)
    assert policy.evaluate(act()) == [RuleResult("pinned", True, "pin it")]


def test_syntax_error_names_file_rule_and_position(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[[rule]]\nid = "ok"\nmessage = "m"\nexpr = "true"\n\n'
        '[[rule]]\nid = "broken"\nmessage = "m"\n'
        "expr = '''\ninputs.all(i,\n  i.pinned &&& true)'''\n",
    )
    with pytest.raises(PolicyError) as info:
        Policy.load(path)
    text = str(info.value)
    assert str(path) in text
    assert "rule 'broken'" in text
    assert "line 2, column 14" in text  # the third '&'; tomllib drops the newline after '''
    assert "    i.pinned &&& true)\n" + " " * 17 + "^" in text
    assert "'ok'" not in text


def test_macro_misuse_is_a_load_error(tmp_path: Path) -> None:
    path = write(tmp_path, '[[rule]]\nid = "h"\nmessage = "m"\nexpr = "has(keys)"\n')
    with pytest.raises(PolicyError, match=r"rule 'h': CEL syntax error at line 1, column 5"):
        Policy.load(path)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            '[[rule]]\nid = "a"\nmessage = "m"\nexpr = "true"\nseverity = "high"\n',
            "rule 'a': unknown key 'severity'",
        ),
        (
            'colour = 1\n[[rule]]\nid = "a"\nmessage = "m"\nexpr = "true"\n',
            "unknown top-level key 'colour'",
        ),
        (
            '[[rule]]\nid = "a"\nmessage = "m"\nexpr = "true"\n'
            '[[rule]]\nid = "a"\nmessage = "m"\nexpr = "false"\n',
            "rule 'a': duplicate id",
        ),
        (
            '[[rule]]\nid = "a"\nmessage = "m"\nexpr = "inputs.size()"\n',
            "rule 'a': on the reference activation (docs/policies.md): "
            "rule returned int 1, not a bool",
        ),
        (
            '[[rule]]\nid = "a"\nmessage = "m"\n'
            'expr = "inputs.all(i, i.ingests.all(r, r.licence == \\"MIT\\"))"\n',
            "no such key 'licence'",
        ),
        (
            '[[rule]]\nid = "a"\nmessage = "m"\nexpr = "input.all(i, i.pinned)"\n',
            "Undefined variable or function: 'input'",
        ),
        (
            '[[rule]]\nid = "a"\nmessage = "m"\nexpr = "\\"x\\".matches(\\"[\\")"\n',
            "rule 'a': on the reference activation",
        ),
        (
            '[[rule]]\nid = "a"\nmessage = "m"\nexpr = "true"\napplies_to = "testing"\n',
            "'applies_to' must be one of training, inference, any",
        ),
        ('[[rule]]\nid = "has space"\nmessage = "m"\nexpr = "true"\n', "'id' must match"),
        (
            '[[rule]]\nid = "a"\nmessage = ""\nexpr = "true"\n',
            "'message' must be a non-empty string",
        ),
        ('[[rule]]\nid = "a"\nmessage = "m"\n', "'expr' must be a non-empty string"),
        ('[[rule]]\nid = "a"\nmessage = "m"\nexpr = true\n', "'expr' must be a non-empty string"),
        (
            'version = 2\n[[rule]]\nid = "a"\nmessage = "m"\nexpr = "true"\n',
            "version 2 is not supported",
        ),
        ('rule = "x"\n', "'rule' must be an array of tables"),
        ("version = 1\n", "the policy has no rules"),
        ('[[rule]\nid = "a"\n', "not valid TOML"),
    ],
)
def test_strict_loading(tmp_path: Path, body: str, expected: str) -> None:
    path = write(tmp_path, body)
    with pytest.raises(PolicyError) as info:
        Policy.load(path)
    assert str(path) in str(info.value)
    assert expected in str(info.value)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[[rule]]\nid = "a"\nmessage = "m"\nexpr = "1 +"\n'
        '[[rule]]\nid = "b"\nmessage = "m"\nexpr = "true"\nextra = 1\n'
        '[[rule]]\nid = "c"\nmessage = "m"\nexpr = "inputs"\n',
    )
    with pytest.raises(PolicyError, match=r"3 problems") as info:
        Policy.load(path)
    text = str(info.value)
    assert "rule 'a': CEL syntax error at line 1, column 4" in text
    assert "rule 'b': unknown key 'extra'" in text
    assert "rule 'c': on the reference activation (docs/policies.md): rule returned list [{" in text
    assert "..., not a bool" in text


def test_applies_to_rules_are_checked_at_load_too(tmp_path: Path) -> None:
    path = write(
        tmp_path, '[[rule]]\nid = "a"\nmessage = "m"\nexpr = "now"\napplies_to = "inference"\n'
    )
    with pytest.raises(PolicyError, match="not a bool"):
        Policy.load(path)


def test_unreadable_and_oversize_files(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read policy file"):
        Policy.load(tmp_path / "missing.toml")
    big = write(tmp_path, "# " + "x" * (1 << 20) + "\n")
    with pytest.raises(PolicyError, match="larger than"):
        Policy.load(big)
    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe")
    with pytest.raises(PolicyError, match="not UTF-8"):
        Policy.load(tmp_path / "bin.toml")


def test_policy_error_is_an_input_error() -> None:
    with pytest.raises(InputError):
        Policy.from_toml("")


# --------------------------------------------------------------------------
# Evaluation


POLICY = """\
[[rule]]
id = "pinned"
message = "pin inputs"
expr = "inputs.all(i, i.pinned)"

[[rule]]
id = "mit-only"
message = "MIT only"
expr = 'inputs.all(i, i.ingests.all(r, r.license == "MIT"))'

[[rule]]
id = "train-only"
message = "training rule"
expr = "false"
applies_to = "training"

[[rule]]
id = "infer-only"
message = "inference rule"
expr = "true"
applies_to = "inference"
"""


def test_every_rule_is_evaluated_not_only_the_first_failure() -> None:
    policy = Policy.from_toml(POLICY)
    results = policy.evaluate(act(inp(pinned=False, ref="main")))
    assert [(r.id, r.passed) for r in results] == [
        ("pinned", False),
        ("mit-only", False),
        ("train-only", False),
    ]
    assert all(r.error is None for r in results)
    assert results[0].message == "pin inputs"


def test_applies_to_selects_rules_by_purpose() -> None:
    policy = Policy.from_toml(POLICY)
    assert verdicts(policy, act(purpose="inference")) == {
        "pinned": True,
        "mit-only": False,
        "infer-only": True,
    }


def test_runtime_error_fails_closed() -> None:
    policy = Policy.from_toml(
        '[[rule]]\nid = "k"\nmessage = "key must be active"\n'
        f'expr = \'keys["{REF_KEY}"] == "active"\'\n'
        '[[rule]]\nid = "after"\nmessage = "m"\nexpr = "true"\n'
    )
    ok = policy.evaluate(act(keys={REF_KEY: "active"}))
    assert [r.passed for r in ok] == [True, True]
    missing = policy.evaluate(act(keys={OTHER: "active"}))
    assert missing[0].passed is False
    assert missing[0].error == f"no such key {REF_KEY!r} (fields are listed in docs/policies.md)"
    assert missing[1] == RuleResult("after", True, "m")  # evaluation went on


def test_non_bool_at_runtime_fails_closed() -> None:
    # bool on the reference activation, a string when the ingest has an issuer of a kind
    policy = Policy.from_toml(
        '[[rule]]\nid = "x"\nmessage = "m"\nexpr = \'inputs.size() == 1 ? true : "maybe"\'\n'
    )
    (result,) = policy.evaluate(act(inp(), inp()))
    assert result.passed is False
    assert result.error == "rule returned str 'maybe', not a bool"


def test_timestamps_and_durations() -> None:
    policy = Policy.from_toml(
        '[[rule]]\nid = "age"\nmessage = "m"\n'
        "expr = 'inputs.all(i, i.ingests.all(r, now - r.retrieved_at <= duration(\"720h\")))'\n"
    )
    assert verdicts(policy, act(inp(ingest(retrieved_at=NOW - timedelta(days=29))))) == {
        "age": True
    }
    assert verdicts(policy, act(inp(ingest(retrieved_at=NOW - timedelta(days=31))))) == {
        "age": False
    }


def test_digest_is_sha256_of_canonical_policy() -> None:
    a = Policy.from_toml('[[rule]]\nid = "a"\nmessage = "m"\nexpr = "true"\n')
    b = Policy.from_toml(
        "# comment\nversion = 1\n[[rule]]\nid = 'a'\nexpr = 'true'\nmessage = 'm'\n"
    )
    c = Policy.from_toml('[[rule]]\nid = "a"\nmessage = "m"\nexpr = "false"\n')
    expected = {
        "version": 1,
        "rules": [{"id": "a", "message": "m", "expr": "true", "applies_to": "any"}],
    }
    assert a.canonical_bytes() == canonical_json(expected)
    assert a.digest == hashlib.sha256(canonical_json(expected)).hexdigest()
    assert a.digest == b.digest
    assert a.digest != c.digest


def test_all_of_composes_and_refuses_empty() -> None:
    with pytest.raises(PolicyError, match="at least one rule"):
        AllOf([])
    extra = Policy.from_toml('[[rule]]\nid = "extra"\nmessage = "m"\nexpr = "false"\n')
    combined = AllOf([Policy.default(), extra])
    assert isinstance(combined, Rule)
    results = combined.evaluate(act())
    assert [r.id for r in results][-1] == "extra"
    assert len(results) == len(Policy.default().rules) + 1
    assert not results[-1].passed


# --------------------------------------------------------------------------
# The activation


def test_activation_is_plain_data() -> None:
    a = act(inp(ingest(issuer=None)), keys={KEY: "revoked"})
    assert set(a) == {"purpose", "now", "keys", "inputs"}
    assert a["now"] == NOW
    assert a["keys"] == {KEY: "revoked"}
    (i,) = a["inputs"]
    assert set(i) == {
        "uri",
        "store",
        "repository",
        "ref",
        "commit",
        "pinned",
        "objects",
        "uncovered",
        "ingests",
        "steps",
        "generations",
        "synthetic_objects",
        "samples",
        "synthetic_samples",
        "synthetic_fraction",
        "generation_depth",
    }
    assert (i["generations"], i["synthetic_fraction"], i["generation_depth"]) == ([], 0.0, 0)
    (r,) = i["ingests"]
    assert r["issuer"] is None
    assert r["license_known"] is True
    assert r["retrieved_at"] == NOW - timedelta(days=30)
    assert i["steps"][0]["name"] == "clean"


def test_activation_refuses_bad_values() -> None:
    with pytest.raises(InputError, match="timezone-aware"):
        activation([], now=datetime(2025, 1, 1), keys={})
    with pytest.raises(InputError, match="purpose"):
        activation([], now=NOW, keys={}, purpose="testing")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="key status"):
        activation([], now=NOW, keys={KEY: "lost"})
    with pytest.raises(InputError, match="timezone-aware"):
        ingest(retrieved_at=datetime(2025, 1, 1))


def test_ingest_facts_from_predicate() -> None:
    predicate = {
        "source": {"uri": "https://example.org/r.csv", "issuer": "Example Org"},
        "license": {"spdx": "MIT"},
        "collectionMethod": "api",
        "retrievedAt": "2025-01-02T03:04:05.123456789Z",
        "collector": {"id": "bob"},
        "originGeography": "FR",
    }
    facts = IngestFacts.from_predicate(
        predicate, signer_keyid=KEY, key_status="retired", verified=True, log_index=3
    )
    assert facts.retrieved_at == datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    assert (facts.issuer, facts.origin_geography, facts.license_url) == ("Example Org", "FR", None)
    with pytest.raises(InputError, match="lacks a required field"):
        IngestFacts.from_predicate(
            {"source": {}}, signer_keyid=KEY, key_status="active", verified=True
        )
    with pytest.raises(InputError, match="RFC 3339"):
        IngestFacts.from_predicate(
            {**predicate, "retrievedAt": "yesterday"},
            signer_keyid=KEY,
            key_status="active",
            verified=True,
        )


@pytest.mark.parametrize(
    ("license", "known"),
    [
        ("MIT", True),
        ("MIT OR Apache-2.0", True),
        ("NOASSERTION", False),
        ("NONE", False),
        ("", False),
        ("LicenseRef-mine", False),
        ("Nonsense-1.0", False),
    ],
)
def test_license_known(license: str, known: bool) -> None:
    assert act(inp(ingest(license=license)))["inputs"][0]["ingests"][0]["license_known"] is known


def test_reference_activation_is_fresh_each_call() -> None:
    a = reference_activation()
    a["inputs"].clear()
    assert reference_activation()["inputs"]


# --------------------------------------------------------------------------
# The default policy


def test_default_policy_allows_a_clean_input() -> None:
    results = Policy.default().evaluate(act())
    assert [r.id for r in results] == [
        "pinned-inputs",
        "signed-ingest",
        "covered-objects",
        "known-license",
        "no-revoked-key",
    ]
    assert all(r.passed for r in results)


@pytest.mark.parametrize(
    ("facts", "failing"),
    [
        (inp(pinned=False, ref="main"), {"pinned-inputs"}),
        (inp(ingests=()), {"signed-ingest"}),
        (inp(ingest(verified=False)), {"signed-ingest"}),
        (inp(ingest(key_status="unknown")), {"signed-ingest"}),
        (inp(uncovered=("train/late.csv",)), {"covered-objects"}),
        (inp(ingest(license="NOASSERTION")), {"known-license"}),
        (inp(ingest(key_status="revoked")), {"signed-ingest", "no-revoked-key"}),
        (
            inp(
                steps=(
                    StepFacts(
                        name="clean", signer_keyid=OTHER, key_status="revoked", verified=True
                    ),
                )
            ),
            {"no-revoked-key"},
        ),
    ],
)
def test_default_policy_refuses(facts: InputFacts, failing: set[str]) -> None:
    results = Policy.default().evaluate(act(inp(), facts))
    assert {r.id for r in results if not r.passed} == failing
    assert all(r.error is None for r in results)


def test_default_policy_digest_is_stable() -> None:
    assert Policy.default() is Policy.default()
    assert len(Policy.default().digest) == 64


# --------------------------------------------------------------------------
# Shipped examples: each passes a good activation and fails a bad one


EXAMPLE_CASES: list[tuple[str, InputFacts, InputFacts, str]] = [
    (
        "license-allowlist",
        inp(ingest(license="MIT"), ingest(license="CC0-1.0")),
        inp(ingest(license="MIT"), ingest(license="GPL-3.0-only")),
        "training",
    ),
    (
        "license-allowlist",
        inp(ingest(license="Apache-2.0")),
        inp(ingest(license="NOASSERTION")),
        "training",
    ),
    ("license-allowlist", inp(ingest(license="Apache-2.0")), inp(ingests=()), "training"),
    (
        "banned-sources",
        inp(ingest(source_uri="https://data.example.org/a.csv")),
        inp(ingest(source_uri="https://mirror.books3.example/b.txt")),
        "training",
    ),
    (
        "banned-sources",
        inp(ingest(source_uri="s3://bucket/a.csv")),
        inp(ingest(source_uri="file:///tmp/x.csv")),
        "training",
    ),
    (
        "banned-sources",
        inp(ingest(source_uri="https://shadow-library.example.org/x")),
        inp(ingest(source_uri="http://example.org/a.csv")),
        "training",
    ),
    (
        "collection-methods",
        inp(ingest(collection_method="api")),
        inp(ingest(collection_method="crawl")),
        "training",
    ),
    (
        "max-data-age",
        inp(ingest(retrieved_at=NOW - timedelta(days=364))),
        inp(ingest(retrieved_at=NOW - timedelta(days=366))),
        "training",
    ),
    (
        "max-data-age",
        inp(ingest(retrieved_at=NOW)),
        inp(ingest(retrieved_at=NOW + timedelta(days=1))),
        "training",
    ),
    ("signed-ingest", inp(ingest(key_status="retired")), inp(ingest(verified=False)), "training"),
    ("signed-ingest", inp(ingest()), inp(uncovered=("extra.csv",)), "training"),
    (
        "no-revoked-key",
        inp(ingest(key_status="retired")),
        inp(ingest(key_status="revoked")),
        "training",
    ),
    (
        "no-revoked-key",
        inp(ingest()),
        inp(steps=(StepFacts(name="s", signer_keyid=OTHER, key_status="active", verified=True),)),
        "training",
    ),
    (
        "synthetic-licensed-sources",
        inp(generations=(gen(ingest(license="CC0-1.0")),)),
        inp(generations=(gen(ingest(license="LicenseRef-scraped")),)),
        "training",
    ),
    (
        "synthetic-licensed-sources",
        inp(generations=(gen(),)),
        inp(generations=(gen(ingest(license="CC-BY-ND-4.0")),)),
        "training",
    ),
    (
        "synthetic-licensed-sources",
        inp(),
        inp(generations=(gen(generator_verified=False),)),
        "training",
    ),
    (
        "synthetic-licensed-sources",
        inp(generations=(gen(),)),
        inp(generations=(gen(ingests=()),)),
        "training",
    ),
    (
        "synthetic-fraction",
        inp(synthetic_fraction=0.3),
        inp(synthetic_fraction=0.31),
        "training",
    ),
    (
        "generation-depth",
        inp(generations=(gen(depth=1),)),
        inp(generations=(gen(depth=1), gen(depth=2, log_index=12))),
        "training",
    ),
]


@pytest.mark.parametrize(("name", "good", "bad", "purpose"), EXAMPLE_CASES)
def test_example_policy(name: str, good: InputFacts, bad: InputFacts, purpose: str) -> None:
    policy = Policy.load(EXAMPLES / f"{name}.toml")
    keys = {KEY: "active", OTHER: "revoked"}
    good_results = policy.evaluate(activation([good], now=NOW, keys=keys, purpose=purpose))  # type: ignore[arg-type]
    assert good_results
    assert all(r.passed and r.error is None for r in good_results), good_results
    bad_results = policy.evaluate(activation([good, bad], now=NOW, keys=keys, purpose=purpose))  # type: ignore[arg-type]
    assert any(not r.passed for r in bad_results)
    assert all(r.error is None for r in bad_results)


def test_collection_methods_apply_to_training_only() -> None:
    policy = Policy.load(EXAMPLES / "collection-methods.toml")
    crawl = inp(ingest(collection_method="crawl"))
    assert policy.evaluate(act(crawl, purpose="inference")) == []
    assert verdicts(policy, act(crawl)) == {"collection-methods": False}


def test_every_example_file_is_tested() -> None:
    shipped = {p.stem for p in EXAMPLES.glob("*.toml")}
    assert shipped == {name for name, *_ in EXAMPLE_CASES}


# --------------------------------------------------------------------------
# Import cost


def test_import_does_not_load_the_engine() -> None:
    code = (
        "import sys, prov_core.policy; "
        "heavy = {'cel', 'celpy', 'tomllib', 'license_expression'}; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_engine_loads_without_its_cli_and_import_cel_still_works() -> None:
    code = (
        "import sys; from prov_core.policy import Policy, _cel; Policy.default(); "
        "print('prompt_toolkit' in sys.modules, 'cel' in sys.modules); "
        "import cel; print(cel.compile is _cel().compile)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "True"]
