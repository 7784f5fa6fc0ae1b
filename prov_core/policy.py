"""Policy gates written in CEL.

A policy is a list of rules; each rule is a CEL expression (the Common
Expression Language, https://cel.dev) that sees one *activation* — the facts
the training gate established about a step's inputs — and returns ``true``
(pass) or ``false`` (fail)::

    policy = Policy.load("provgate.toml")          # or Policy.default()
    results = policy.evaluate(activation(inputs, now=now, keys=keys))
    refused = [r for r in results if not r.passed]  # every rule is evaluated

Policy file (``provgate.toml``, TOML 1.0 read with :mod:`tomllib`)::

    version = 1                       # optional; the only version is 1
    [[rule]]
    id = "license-allowlist"          # [A-Za-z0-9][A-Za-z0-9._-]{0,63}, unique
    message = "every input's license must be on the allow-list"
    expr = 'inputs.all(i, i.ingests.all(r, r.license in ["MIT", "CC0-1.0"]))'
    applies_to = "training"           # optional: "training" | "inference" | "any" (default)

Loading is strict and reports every problem at once in one
:class:`~prov_core.errors.PolicyError` naming the file, the rule id and, for
CEL syntax errors, the line and column within ``expr``: unknown keys,
missing or mistyped values, duplicate ids, an empty policy, CEL syntax errors,
and rules that error or return a non-bool on :func:`reference_activation`
(a well-formed activation in which every field is present, so a misspelt
field such as ``r.licence`` or a result such as ``inputs.size()`` is caught
when the file is loaded, not when a model is about to be trained).

Evaluation never stops at the first failure: every rule that applies to the
activation's ``purpose`` is evaluated. A rule that raises at run time (a
missing key, a bad regular expression, a type error) counts as *failed*, with
the error in :attr:`RuleResult.error` — the gate fails closed.

:attr:`Policy.digest` is the hex SHA-256 of :meth:`Policy.canonical_bytes`,
the RFC 8785 JSON of ``{"rules": [{"applies_to", "expr", "id", "message"},
...], "version": 1}`` in file order; comments, whitespace and TOML quoting do
not change it. The gate puts it in its SLSA VSA ``policy`` descriptor.

The activation (:func:`activation`; ``docs/policies.md`` has the full table)::

    purpose  string                "training" | "inference"
    now      timestamp             the time of the decision
    keys     map(string, string)   trust store: keyid -> "active" | "retired" | "revoked"
    inputs   list(map)             one per declared input (InputFacts)

An inference activation (:func:`inference_activation`, built by
:mod:`prov_core.inference`) has the same four variables -- ``inputs`` holds
one entry per retrieved chunk, so the training rules (pinned, signed ingest,
licenses, banned sources) judge what an answer drew on unchanged -- plus::

    model    map                   the model and its training gate (ModelFacts)
    chunks   list(map)             the retrieved chunks, in rank order (ChunkFacts)

Choice of CEL library (measured; ``docs/policies.md`` has the table).
Two maintained libraries were candidates: ``cel-python`` 0.5.0 (pure Python,
Lark parser, cloud-custodian) and ``common-expression-language`` 0.10.0 (a
PyO3 binding of the Rust ``cel`` crate). ``.venv/bin/python
benchmarks/policy.py`` -- the 7 rules of ``examples/policies/*.toml`` on one
input with 5 ingest records and 2 steps -- gave for Rust vs Python: compile
93 vs 1,687 µs per rule, evaluate 107 vs 5,635 µs per rule (9,363 vs 177
rules/s, 53x; 27x on a second, busier run), 580 vs 24 whole decisions/s.
Both handle every construct the shipped rules need (``startsWith``/
``matches``, ``all``/``exists``/``filter``, timestamps and durations,
``has()`` and ``in`` on maps) and both give the line and column of a syntax
error; the Rust binding also rejects a malformed macro (``has(x)``,
``all(1, x)``) at compile time, where cel-python fails only at run time. We
use ``common-expression-language``.

Its one drawback is that ``import cel`` also imports its command-line tool
(typer, rich, prompt_toolkit: ~1 s). :func:`_cel` loads just the compiled
extension (``cel.cel``, ~30 ms) and registers it under its own name, so a
later ``import cel`` reuses it; if the layout ever changes it falls back to
``import cel``. Nothing is imported until a policy is compiled, so
``import prov_core.policy`` stays cheap.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any, Final, Literal, Protocol, runtime_checkable

from prov_core.canonical import canonical_json
from prov_core.errors import InputError, LicenseError, PolicyError

__all__ = [
    "APPLIES_TO",
    "DEFAULT_INFERENCE_POLICY_TOML",
    "DEFAULT_POLICY_TOML",
    "GATE_RESULTS",
    "INFERENCE_RULES_TOML",
    "KEY_STATUSES",
    "POLICY_VERSION",
    "AllOf",
    "AppliesTo",
    "CelRule",
    "ChunkFacts",
    "GenerationFacts",
    "IngestFacts",
    "InputFacts",
    "ModelFacts",
    "Policy",
    "Purpose",
    "Rule",
    "RuleResult",
    "StepFacts",
    "activation",
    "inference_activation",
    "reference_activation",
]

POLICY_VERSION: Final = 1
#: Largest policy file accepted, in bytes.
MAX_POLICY_BYTES: Final = 1 << 20
#: Largest ``expr`` accepted, in characters.
MAX_EXPR_CHARS: Final = 16_384

Purpose = Literal["training", "inference"]
AppliesTo = Literal["training", "inference", "any"]
#: Values of a rule's ``applies_to``.
APPLIES_TO: Final[tuple[str, ...]] = ("training", "inference", "any")
#: Values of ``key_status`` and of the ``keys`` map; ``unknown`` = not in the trust store.
KEY_STATUSES: Final[tuple[str, ...]] = ("active", "retired", "revoked", "unknown")

_RULE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_RULE_KEYS: Final = frozenset({"id", "message", "expr", "applies_to"})
_TOP_KEYS: Final = frozenset({"version", "rule"})
# The Rust parser reports "ERROR: <input>:LINE:COLUMN: message" (1-based).
_CEL_POSITION = re.compile(r"<input>:(\d+):(\d+):\s*(.*)")


# --------------------------------------------------------------------------
# The activation: what a rule sees


@dataclass(frozen=True)
class IngestFacts:
    """One signed ingest record behind an input, as a rule sees it.

    Built by the gate from a verified ``https://provgate.dev/ingest/v1``
    record; optional predicate fields that are absent are ``None`` (CEL
    ``null``). ``verified`` is true when the envelope's signature verified
    against the trust store; ``key_status`` is the signer's status there
    (``active``, ``retired``, ``revoked``, or ``unknown``).
    """

    source_uri: str
    license: str
    collection_method: str
    retrieved_at: datetime
    collector: str
    signer_keyid: str
    key_status: str
    verified: bool
    log_index: int | None = None
    issuer: str | None = None
    license_url: str | None = None
    origin_geography: str | None = None
    confidentiality: str | None = None
    consent_location: str | None = None
    intended_use: str | None = None
    data_format: str | None = None

    def __post_init__(self) -> None:
        _aware(self.retrieved_at, "retrieved_at")
        _status(self.key_status)

    @classmethod
    def from_predicate(
        cls,
        predicate: Mapping[str, Any],
        *,
        signer_keyid: str,
        key_status: str,
        verified: bool,
        log_index: int | None = None,
    ) -> IngestFacts:
        """Facts from a parsed ingest predicate (``Statement.predicate``).

        Raises :class:`InputError` when a required field is missing or
        ``retrievedAt`` is not an RFC 3339 timestamp.
        """
        try:
            source = predicate["source"]
            lic = predicate["license"]
            return cls(
                source_uri=source["uri"],
                license=lic["spdx"],
                license_url=lic.get("url"),
                issuer=source.get("issuer"),
                collection_method=predicate["collectionMethod"],
                retrieved_at=_parse_time(predicate["retrievedAt"]),
                collector=predicate["collector"]["id"],
                origin_geography=predicate.get("originGeography"),
                confidentiality=predicate.get("confidentiality"),
                consent_location=predicate.get("consentLocation"),
                intended_use=predicate.get("intendedUse"),
                data_format=predicate.get("dataFormat"),
                signer_keyid=signer_keyid,
                key_status=key_status,
                verified=verified,
                log_index=log_index,
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise InputError(f"ingest predicate lacks a required field: {exc}") from exc

    def to_cel(self) -> dict[str, Any]:
        """The map a rule sees (``license_known`` is computed here)."""
        return {
            "source_uri": self.source_uri,
            "issuer": self.issuer,
            "license": self.license,
            "license_known": _license_known(self.license),
            "license_url": self.license_url,
            "collection_method": self.collection_method,
            "retrieved_at": self.retrieved_at,
            "origin_geography": self.origin_geography,
            "confidentiality": self.confidentiality,
            "consent_location": self.consent_location,
            "intended_use": self.intended_use,
            "data_format": self.data_format,
            "collector": self.collector,
            "signer_keyid": self.signer_keyid,
            "key_status": self.key_status,
            "verified": self.verified,
            "log_index": self.log_index,
        }


@dataclass(frozen=True)
class StepFacts:
    """One signed transform step between an input snapshot and its ingest records."""

    name: str
    signer_keyid: str
    key_status: str
    verified: bool
    log_index: int | None = None
    predicate_type: str = "https://slsa.dev/provenance/v1"
    build_type: str | None = None

    def __post_init__(self) -> None:
        _status(self.key_status)

    def to_cel(self) -> dict[str, Any]:
        """The map a rule sees."""
        return {
            "name": self.name,
            "predicate_type": self.predicate_type,
            "build_type": self.build_type,
            "signer_keyid": self.signer_keyid,
            "key_status": self.key_status,
            "verified": self.verified,
            "log_index": self.log_index,
        }


@dataclass(frozen=True)
class GenerationFacts:
    """One generation step (data a model generated) behind an input, as a rule sees it.

    Built by the gate's custody walk from an SLSA Provenance record whose
    ``buildType`` is ``https://provgate.dev/generation/v1``
    (:mod:`prov_core.synthetic`). ``depth`` counts generations: 1 for a model
    whose training data and seeds hold no generated data, one more for each
    generation behind those. ``generator_verified`` is true when the model's
    bytes lead to a verified record whose signed outputs name them (its
    training step, or the ingest of an outside model), and that record leads
    to verified ingest records; ``generator_training_log_index`` is that
    training record (``None`` when the model came in as ingested data).
    ``ingests`` are every ingest record the generation stands on (seeds and
    the generator's training data), ``seed_ingests`` those reached through
    its seed inputs only. ``samples`` is the number of samples its outputs
    hold, when each output's record signs it (else ``None``).
    """

    name: str
    log_index: int
    verified: bool
    signer_keyid: str
    key_status: str
    depth: int
    generator_digest: str | None = None
    generator_verified: bool = False
    generator_training_log_index: int | None = None
    samples: int | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    ingests: tuple[IngestFacts, ...] = ()
    seed_ingests: tuple[IngestFacts, ...] = ()

    def __post_init__(self) -> None:
        _status(self.key_status)

    def to_cel(self) -> dict[str, Any]:
        """The map a rule sees."""
        return {
            "name": self.name,
            "log_index": self.log_index,
            "verified": self.verified,
            "signer_keyid": self.signer_keyid,
            "key_status": self.key_status,
            "depth": self.depth,
            "generator_digest": self.generator_digest,
            "generator_verified": self.generator_verified,
            "generator_training_log_index": self.generator_training_log_index,
            "samples": self.samples,
            "parameters": dict(self.parameters),
            "ingests": [r.to_cel() for r in self.ingests],
            "seed_ingests": [r.to_cel() for r in self.seed_ingests],
        }


@dataclass(frozen=True)
class InputFacts:
    """One input a step declares: a snapshot and the records behind it.

    ``ref`` is what the caller wrote; ``commit`` what it resolved to
    (``None`` when it did not resolve); ``pinned`` is true only when the
    caller gave the commit id itself. ``uncovered`` lists the object paths no
    record covers.

    Synthetic data (``docs/policies.md``, "Synthetic data"): ``generations``
    are the generation steps behind the input; ``synthetic_objects`` the
    paths of the objects a generation stands behind (directly or through
    steps: such an object counts as synthetic whole); ``samples`` and
    ``synthetic_samples`` count the samples of all objects and of those, when
    the record covering each object signs its count (else ``None``);
    ``synthetic_fraction`` is ``synthetic_samples / samples`` then, else the
    same ratio of bytes; ``generation_depth`` is the deepest generation behind
    any object (0: no generated data).
    """

    uri: str
    store: str
    repository: str
    ref: str
    commit: str | None
    pinned: bool
    objects: int
    uncovered: tuple[str, ...] = ()
    ingests: tuple[IngestFacts, ...] = ()
    steps: tuple[StepFacts, ...] = ()
    generations: tuple[GenerationFacts, ...] = ()
    synthetic_objects: tuple[str, ...] = ()
    samples: int | None = None
    synthetic_samples: int | None = None
    synthetic_fraction: float = 0.0
    generation_depth: int = 0

    def to_cel(self) -> dict[str, Any]:
        """The map a rule sees."""
        return {
            "uri": self.uri,
            "store": self.store,
            "repository": self.repository,
            "ref": self.ref,
            "commit": self.commit,
            "pinned": self.pinned,
            "objects": self.objects,
            "uncovered": list(self.uncovered),
            "ingests": [r.to_cel() for r in self.ingests],
            "steps": [s.to_cel() for s in self.steps],
            "generations": [g.to_cel() for g in self.generations],
            "synthetic_objects": list(self.synthetic_objects),
            "samples": self.samples,
            "synthetic_samples": self.synthetic_samples,
            "synthetic_fraction": float(self.synthetic_fraction),
            "generation_depth": self.generation_depth,
        }


def activation(
    inputs: Iterable[InputFacts],
    *,
    now: datetime,
    keys: Mapping[str, str],
    purpose: Purpose = "training",
) -> dict[str, Any]:
    """Build the activation (the variables every rule sees) as a plain dict.

    ``now`` must be timezone-aware (it is converted to UTC); ``keys`` maps
    each key id of the trust store to its status. Raises :class:`InputError`
    for a naive ``now``, an unknown ``purpose`` or key status.
    """
    if purpose not in ("training", "inference"):
        raise InputError(f"purpose {purpose!r} is not 'training' or 'inference'")
    for status in keys.values():
        _status(status)
    return {
        "purpose": purpose,
        "now": _aware(now, "now"),
        "keys": dict(keys),
        "inputs": [i.to_cel() for i in inputs],
    }


#: Values of ``model.gate``: the training gate's verdict on the model, or none found.
GATE_RESULTS: Final[tuple[str, ...]] = ("PASSED", "FAILED", "none")


@dataclass(frozen=True)
class ModelFacts:
    """The model an answer came from and the training gate behind it, as a rule sees it.

    Built by :mod:`prov_core.inference` from the model's training attestation:
    ``training_verified`` is true when that record was found at its log index
    with its envelope SHA-256 and its signature verified; ``gate`` is the
    ``verificationResult`` of the gate decision (SLSA VSA) it links to, or
    ``"none"`` when there is none; ``gate_verified`` is true when that VSA
    verified and was signed by the gate (``verifier.id``).
    """

    digest: str
    gate: str = "none"
    gate_verified: bool = False
    training_verified: bool = False
    name: str | None = None
    uri: str | None = None
    training_log_index: int | None = None
    gate_log_index: int | None = None
    gate_policy_digest: str | None = None

    def __post_init__(self) -> None:
        if self.gate not in GATE_RESULTS:
            raise InputError(f"model gate {self.gate!r} is not one of {', '.join(GATE_RESULTS)}")

    def to_cel(self) -> dict[str, Any]:
        """The map a rule sees."""
        return {
            "digest": self.digest,
            "name": self.name,
            "uri": self.uri,
            "training_verified": self.training_verified,
            "training_log_index": self.training_log_index,
            "gate": self.gate,
            "gate_verified": self.gate_verified,
            "gate_log_index": self.gate_log_index,
            "gate_policy_digest": self.gate_policy_digest,
        }


@dataclass(frozen=True)
class ChunkFacts:
    """One retrieved chunk an answer relied on, traced to its snapshot and ingest records.

    ``digest`` is the chunk's BLAKE3 (hex); ``uri`` the snapshot object it
    came from (``SCHEME://REPO/COMMIT/PATH``); ``pinned`` true when the ref is
    a commit id; ``snapshot_verified`` true when the commit's signed snapshot
    record was found and verified; ``covered`` true when the object is in that
    record and a verified ingest record stands behind it (directly or through
    verified transform steps). ``ingests`` and ``steps`` are as for an input;
    a rule sees them in ``inputs`` (``inputs[i]`` is ``chunks[i]``), not in
    ``chunks``: converting them twice for the CEL engine would double the
    largest cost of an inference decision.
    """

    digest: str
    rank: int
    uri: str
    repository: str
    commit: str
    pinned: bool
    snapshot_verified: bool
    covered: bool
    path: str | None = None
    id: str | None = None
    score: float | None = None
    ingests: tuple[IngestFacts, ...] = ()
    steps: tuple[StepFacts, ...] = ()

    def to_cel(self) -> dict[str, Any]:
        """The map a rule sees."""
        return {
            "id": self.id,
            "digest": self.digest,
            "rank": self.rank,
            "score": None if self.score is None else float(self.score),
            "uri": self.uri,
            "repository": self.repository,
            "commit": self.commit,
            "path": self.path,
            "pinned": self.pinned,
            "snapshot_verified": self.snapshot_verified,
            "covered": self.covered,
        }

    def as_input(self) -> InputFacts:
        """The chunk as an input, so the rules written for training judge it too."""
        return InputFacts(
            uri=self.uri,
            store="local" if self.uri.startswith("provgate:") else "lakefs",
            repository=self.repository,
            ref=self.commit,
            commit=self.commit if self.snapshot_verified else None,
            pinned=self.pinned,
            objects=1,
            uncovered=() if self.covered else (self.path or self.uri,),
            ingests=self.ingests,
            steps=self.steps,
        )


def inference_activation(
    model: ModelFacts,
    chunks: Sequence[ChunkFacts],
    *,
    now: datetime,
    keys: Mapping[str, str],
) -> dict[str, Any]:
    """The activation of an inference decision: :func:`activation` of the chunks as inputs,
    with ``purpose`` ``"inference"``, plus ``model`` and ``chunks``."""
    out = activation([c.as_input() for c in chunks], now=now, keys=keys, purpose="inference")
    out["model"] = model.to_cel()
    out["chunks"] = [c.to_cel() for c in chunks]
    return out


def _aware(when: datetime, what: str) -> datetime:
    if not isinstance(when, datetime) or when.tzinfo is None or when.utcoffset() is None:
        raise InputError(f"{what} must be a timezone-aware datetime, got {when!r}")
    return when.astimezone(UTC)


def _status(status: str) -> None:
    if status not in KEY_STATUSES:
        raise InputError(f"key status {status!r} is not one of {', '.join(KEY_STATUSES)}")


def _parse_time(text: str) -> datetime:
    # RFC 3339 with up to 9 fractional digits; datetime (3.11) takes 6.
    m = re.fullmatch(
        r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})", text
    )
    if m is None:
        raise InputError(f"{text!r} is not an RFC 3339 timestamp")
    frac = f".{m[2][:6]}" if m[2] else ""
    zone = "+00:00" if m[3] == "Z" else m[3]
    try:
        return datetime.fromisoformat(m[1] + frac + zone)
    except ValueError as exc:
        raise InputError(f"{text!r} is not an RFC 3339 timestamp") from exc


@lru_cache(maxsize=1024)
def _license_known(license: str) -> bool:
    """True for a valid SPDX expression made only of SPDX-listed licenses.

    ``NOASSERTION``, ``NONE``, empty strings and ``LicenseRef-*`` (custom
    terms nobody has reviewed) are not known.
    """
    from prov_core.statement import spdx_expression

    try:
        normalized = spdx_expression(license)
    except LicenseError:
        return False
    return "LicenseRef-" not in normalized


# --------------------------------------------------------------------------
# Results and the rule protocol


@dataclass(frozen=True)
class RuleResult:
    """The outcome of one rule: ``passed``, or not, with its human message.

    ``error`` is set when the rule could not be evaluated (it then counts as
    failed: the gate fails closed).
    """

    id: str
    passed: bool
    message: str
    error: str | None = None


@runtime_checkable
class Rule(Protocol):
    """Anything that judges an activation: a CEL rule, a policy, an :class:`AllOf`.

    ``evaluate`` returns one result per rule it holds that applies to the
    activation's ``purpose`` (none if none applies), evaluating all of them,
    and never raises for a rule that fails or errors.
    """

    def evaluate(self, activation: Mapping[str, Any]) -> Sequence[RuleResult]:
        """Judge ``activation``; see the class docstring."""
        ...


class AllOf:
    """Every child rule must pass; all are evaluated, results concatenated in order.

    An empty ``AllOf`` is a :class:`PolicyError`, not a policy that allows
    everything.
    """

    def __init__(self, children: Sequence[Rule]) -> None:
        if not children:
            raise PolicyError("AllOf needs at least one rule; an empty policy allows nothing")
        self.children: tuple[Rule, ...] = tuple(children)

    def evaluate(self, activation: Mapping[str, Any]) -> list[RuleResult]:
        """The results of every child, in order."""
        context = _context(activation)
        results: list[RuleResult] = []
        for child in self.children:
            results.extend(child.evaluate(context))
        return results


# --------------------------------------------------------------------------
# CEL


class _Program(Protocol):
    def execute(self, context: Any = None) -> Any: ...


class _Context(dict[str, Any]):
    """An activation already converted for the CEL engine (converted once per policy)."""

    engine: Any = None


def _context(activation: Mapping[str, Any]) -> _Context:
    if isinstance(activation, _Context):
        return activation
    ctx = _Context(activation)
    ctx.engine = _cel().Context(variables=dict(activation))
    return ctx


@lru_cache(maxsize=1)
def _cel() -> ModuleType:
    """The ``cel`` extension module, without the CLI ``import cel`` drags in."""
    loaded = sys.modules.get("cel.cel")
    if loaded is not None:
        return loaded
    spec = importlib.util.find_spec("cel")
    locations = list(spec.submodule_search_locations or ()) if spec else []
    for folder in locations:
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = Path(folder) / f"cel{suffix}"
            if path.is_file():
                loader = importlib.machinery.ExtensionFileLoader("cel.cel", str(path))
                ext_spec = importlib.util.spec_from_file_location("cel.cel", path, loader=loader)
                if ext_spec is None:  # pragma: no cover - a file location always has a spec
                    break
                module = importlib.util.module_from_spec(ext_spec)
                sys.modules["cel.cel"] = module  # a PyO3 module initializes only once
                try:
                    loader.exec_module(module)
                except Exception:  # pragma: no cover - fall back to the package
                    del sys.modules["cel.cel"]
                    break
                return module
    import cel  # pragma: no cover - only if the wheel's layout changes

    return cel  # pragma: no cover


def _compile(expr: str) -> _Program:
    program: _Program = _cel().compile(expr)
    return program


class CelRule:
    """One rule of a policy file: ``id``, ``message``, ``expr``, ``applies_to``.

    Construct through :meth:`Policy.load`; the constructor compiles ``expr``
    and raises :class:`PolicyError` on a syntax error.
    """

    def __init__(
        self, id: str, message: str, expr: str, applies_to: AppliesTo = "any", *, source: str = ""
    ) -> None:
        self.id = id
        self.message = message
        self.expr = expr
        self.applies_to: AppliesTo = applies_to
        where = f"{source}: " if source else ""
        try:
            self._program = _compile(expr)
        except ValueError as exc:
            raise PolicyError(f"{where}rule {id!r}: {_syntax_error(expr, str(exc))}") from exc

    def applies(self, purpose: object) -> bool:
        """True when this rule judges activations with this ``purpose``."""
        return self.applies_to in ("any", purpose)

    def evaluate(self, activation: Mapping[str, Any]) -> list[RuleResult]:
        """``[RuleResult]``, or ``[]`` when the rule does not apply; never raises."""
        if not self.applies(activation.get("purpose")):
            return []
        return [self.run(activation)]

    def run(self, activation: Mapping[str, Any]) -> RuleResult:
        """Evaluate regardless of ``applies_to``; a run-time error is a failure."""
        ctx = _context(activation)
        try:
            value = self._program.execute(ctx.engine)
        except Exception as exc:  # the engine raises assorted types: fail closed
            return RuleResult(self.id, False, self.message, _runtime_error(exc))
        if not isinstance(value, bool):
            shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
            error = f"rule returned {type(value).__name__} {shown}, not a bool"
            return RuleResult(self.id, False, self.message, error)
        return RuleResult(self.id, value, self.message)

    def to_dict(self) -> dict[str, str]:
        """The rule's canonical form (part of :meth:`Policy.canonical_bytes`)."""
        return {
            "id": self.id,
            "message": self.message,
            "expr": self.expr,
            "applies_to": self.applies_to,
        }

    def __repr__(self) -> str:
        return f"CelRule(id={self.id!r}, applies_to={self.applies_to!r})"


def _syntax_error(expr: str, text: str) -> str:
    """``CEL syntax error at line L, column C of expr: ...`` with a caret under the spot."""
    m = _CEL_POSITION.search(text)
    if m is None:
        return f"CEL syntax error in expr: {text}"
    line, column, detail = int(m[1]), int(m[2]), m[3].strip()
    lines = expr.splitlines() or [""]
    source = lines[min(line, len(lines)) - 1]
    caret = " " * (column - 1) + "^"
    return (
        f"CEL syntax error at line {line}, column {column} of expr: {detail}\n"
        f"    {source}\n    {caret}"
    )


def _runtime_error(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"no such key {exc.args[0]!r} (fields are listed in docs/policies.md)"
    return f"{type(exc).__name__}: {exc}"


# --------------------------------------------------------------------------
# The reference activation: every field present, used to check rules at load


_REF_NOW: Final = datetime(2025, 6, 1, tzinfo=UTC)
_REF_KEY: Final = "a050837d85070582ccf7394b0988847cc312cb88259b894899f6f239cf1791a5"
_REF_INGEST: Final = IngestFacts(
    source_uri="https://example.org/reviews.csv",
    issuer="Example Org",
    license="CC-BY-4.0",
    license_url="https://creativecommons.org/licenses/by/4.0/",
    collection_method="download",
    retrieved_at=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
    origin_geography="DE",
    confidentiality="public",
    consent_location="https://example.org/consent",
    intended_use="sentiment classifier training",
    data_format="text/csv",
    collector="alice@worker-1",
    signer_keyid=_REF_KEY,
    key_status="active",
    verified=True,
    log_index=0,
)


def reference_activation() -> dict[str, Any]:
    """A well-formed activation with every field set (a new dict each call).

    Each rule must return a bool on it without error, or its policy does not
    load; ``docs/policies.md`` shows it.
    """
    ref = activation(
        [
            InputFacts(
                uri="provgate://reviews/" + "c" * 64 + "/train",
                store="local",
                repository="reviews",
                ref="c" * 64,
                commit="c" * 64,
                pinned=True,
                objects=2,
                uncovered=("train/extra.csv",),
                ingests=(_REF_INGEST,),
                steps=(
                    StepFacts(
                        name="clean",
                        signer_keyid=_REF_KEY,
                        key_status="active",
                        verified=True,
                        log_index=1,
                        build_type="https://provgate.dev/step/v1",
                    ),
                ),
                generations=(_REF_GENERATION,),
                synthetic_objects=("train/synthetic.csv",),
                samples=1000,
                synthetic_samples=200,
                synthetic_fraction=0.2,
                generation_depth=1,
            )
        ],
        now=_REF_NOW,
        keys={_REF_KEY: "active"},
    )
    # What inference rules see beyond that (rules naming them should say
    # applies_to = "inference": a training activation has neither).
    ref["model"] = _REF_MODEL.to_cel()
    ref["chunks"] = [_REF_CHUNK.to_cel()]
    return ref


_REF_GENERATION: Final = GenerationFacts(
    name="paraphrase",
    log_index=5,
    verified=True,
    signer_keyid=_REF_KEY,
    key_status="active",
    depth=1,
    generator_digest="6" * 64,
    generator_verified=True,
    generator_training_log_index=4,
    samples=200,
    parameters={"temperature": 0.7, "seed": 7},
    ingests=(_REF_INGEST,),
    seed_ingests=(_REF_INGEST,),
)


_REF_MODEL: Final = ModelFacts(
    digest="4" * 64,
    name="sentiment",
    uri="file:///models/sentiment.safetensors",
    gate="PASSED",
    gate_verified=True,
    training_verified=True,
    training_log_index=3,
    gate_log_index=2,
    gate_policy_digest="5" * 64,
)


_REF_CHUNK: Final = ChunkFacts(
    id="reviews.csv#0",
    digest="1" * 64,
    rank=0,
    score=0.87,
    uri="provgate://reviews/" + "c" * 64 + "/train/reviews.csv",
    repository="reviews",
    commit="c" * 64,
    path="train/reviews.csv",
    pinned=True,
    snapshot_verified=True,
    covered=True,
    ingests=(_REF_INGEST,),
)


# --------------------------------------------------------------------------
# Policies


#: The built-in policy, used when no policy file is given.
DEFAULT_POLICY_TOML: Final = """\
version = 1

[[rule]]
id = "pinned-inputs"
message = "every input must be pinned by a commit id, not a branch or tag"
expr = 'inputs.all(i, i.pinned)'

[[rule]]
id = "signed-ingest"
message = "every input must trace to ingest records signed by trusted keys"
expr = '''
inputs.all(i, i.ingests.size() > 0 && i.ingests.all(r,
    r.verified && r.key_status in ["active", "retired"]))
'''

[[rule]]
id = "covered-objects"
message = "every object of every input must be covered by a signed record"
expr = 'inputs.all(i, i.uncovered.size() == 0)'

[[rule]]
id = "known-license"
message = "every ingest record must carry a known SPDX license (not NOASSERTION, NONE or empty)"
expr = 'inputs.all(i, i.ingests.all(r, r.license_known))'

[[rule]]
id = "no-revoked-key"
message = "no record behind an input may be signed by a revoked key"
expr = '''
inputs.all(i, i.ingests.all(r, r.key_status != "revoked")
           && i.steps.all(s, s.key_status != "revoked"))
'''
"""


#: The rules only an inference decision has (``model``, ``chunks``).
INFERENCE_RULES_TOML: Final = """
[[rule]]
id = "model-gate-passed"
message = "the model must link to a verified training record whose training gate PASSED"
expr = 'model.training_verified && model.gate == "PASSED" && model.gate_verified'
applies_to = "inference"

[[rule]]
id = "chunks-traced"
message = "every retrieved chunk must be an object of a verified snapshot record, \
with verified ingest records behind it"
expr = 'chunks.all(c, c.pinned && c.snapshot_verified && c.covered)'
applies_to = "inference"
"""

#: The built-in inference policy: the default policy (each retrieved chunk is
#: an input) and :data:`INFERENCE_RULES_TOML`.
DEFAULT_INFERENCE_POLICY_TOML: Final = DEFAULT_POLICY_TOML + INFERENCE_RULES_TOML


@dataclass(frozen=True)
class Policy:
    """A loaded policy: its rules in file order, where it came from, its digest."""

    rules: tuple[CelRule, ...]
    source: str
    digest: str = field(init=False)

    def __post_init__(self) -> None:
        if not self.rules:
            raise PolicyError(f"{self.source}: the policy has no rules; add at least one [[rule]]")
        object.__setattr__(self, "digest", hashlib.sha256(self.canonical_bytes()).hexdigest())

    @classmethod
    def load(cls, path: str | Path) -> Policy:
        """Load and check a policy file; raises :class:`PolicyError` listing every problem."""
        p = Path(path)
        try:
            with p.open("rb") as f:
                data = f.read(MAX_POLICY_BYTES + 1)
        except OSError as exc:
            raise PolicyError(f"cannot read policy file {p}: {exc.strerror or exc}") from exc
        if len(data) > MAX_POLICY_BYTES:
            raise PolicyError(f"{p}: policy file is larger than {MAX_POLICY_BYTES} bytes")
        return cls.from_toml(data, source=str(p))

    @classmethod
    def from_toml(cls, data: str | bytes, *, source: str = "<string>") -> Policy:
        """Parse a policy from TOML text; ``source`` names it in errors."""
        import tomllib

        try:
            text = data.decode("utf-8") if isinstance(data, bytes) else data
            doc = tomllib.loads(text)
        except UnicodeDecodeError as exc:
            raise PolicyError(f"{source}: policy file is not UTF-8: {exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(f"{source}: not valid TOML: {exc}") from exc
        return cls(_parse(doc, source), source)

    @classmethod
    def default(cls) -> Policy:
        """The built-in policy (:data:`DEFAULT_POLICY_TOML`)."""
        return _default()

    @classmethod
    def default_inference(cls) -> Policy:
        """The built-in inference policy (:data:`DEFAULT_INFERENCE_POLICY_TOML`)."""
        return _default_inference()

    def evaluate(self, activation: Mapping[str, Any]) -> list[RuleResult]:
        """Evaluate every applicable rule (never stopping at a failure)."""
        context = _context(activation)
        results: list[RuleResult] = []
        for rule in self.rules:
            results.extend(rule.evaluate(context))
        return results

    def to_dict(self) -> dict[str, Any]:
        """``{"rules": [...], "version": 1}``: what the digest covers."""
        return {"version": POLICY_VERSION, "rules": [r.to_dict() for r in self.rules]}

    def canonical_bytes(self) -> bytes:
        """RFC 8785 bytes of :meth:`to_dict`."""
        return canonical_json(self.to_dict())


@lru_cache(maxsize=1)
def _default() -> Policy:
    return Policy.from_toml(DEFAULT_POLICY_TOML, source="<default policy>")


@lru_cache(maxsize=1)
def _default_inference() -> Policy:
    return Policy.from_toml(DEFAULT_INFERENCE_POLICY_TOML, source="<default inference policy>")


def _parse(doc: Mapping[str, Any], source: str) -> tuple[CelRule, ...]:
    """Check a parsed policy document; collect every problem before raising."""
    problems: list[str] = []
    for key in sorted(set(doc) - _TOP_KEYS):
        problems.append(f"unknown top-level key {key!r} (allowed: rule, version)")
    version = doc.get("version", POLICY_VERSION)
    if version != POLICY_VERSION or isinstance(version, bool):
        problems.append(f"version {version!r} is not supported (use version = {POLICY_VERSION})")
    raw_rules = doc.get("rule", [])
    if not isinstance(raw_rules, list):
        problems.append("'rule' must be an array of tables: write each rule under [[rule]]")
        raw_rules = []
    if not raw_rules and not problems:
        problems.append("the policy has no rules; add at least one [[rule]]")
    rules: list[CelRule] = []
    seen: set[str] = set()
    # Converted once per load and not shared: an engine context is not thread-safe.
    reference = _context(reference_activation())
    for n, raw in enumerate(raw_rules, 1):
        rule, errors = _parse_rule(raw, n, seen, reference)
        problems.extend(errors)
        if rule is not None:
            rules.append(rule)
    if problems:
        listing = "\n".join(f"  - {p}" for p in problems)
        count = "1 problem" if len(problems) == 1 else f"{len(problems)} problems"
        raise PolicyError(f"{source}: policy does not load ({count}):\n{listing}")
    return tuple(rules)


def _parse_rule(
    raw: Any, n: int, seen: set[str], reference: _Context
) -> tuple[CelRule | None, list[str]]:
    if not isinstance(raw, dict):
        return None, [f"rule #{n} is not a table"]
    rid, message, expr = raw.get("id"), raw.get("message"), raw.get("expr")
    applies_to = raw.get("applies_to", "any")
    name = f"rule {rid!r}" if isinstance(rid, str) and rid else f"rule #{n}"
    allowed = ", ".join(sorted(_RULE_KEYS))
    problems = [
        f"{name}: unknown key {k!r} (allowed: {allowed})" for k in sorted(set(raw) - _RULE_KEYS)
    ]
    if not isinstance(rid, str) or not _RULE_ID.fullmatch(rid):
        problems.append(f"{name}: 'id' must match [A-Za-z0-9][A-Za-z0-9._-]{{0,63}}, got {rid!r}")
    elif rid in seen:
        problems.append(f"{name}: duplicate id (ids must be unique)")
    else:
        seen.add(rid)
    if not isinstance(message, str) or not message.strip():
        problems.append(f"{name}: 'message' must be a non-empty string")
    if not isinstance(expr, str) or not expr.strip():
        problems.append(f"{name}: 'expr' must be a non-empty string")
    elif len(expr) > MAX_EXPR_CHARS:
        problems.append(f"{name}: 'expr' is longer than {MAX_EXPR_CHARS} characters")
    if applies_to not in APPLIES_TO:
        problems.append(
            f"{name}: 'applies_to' must be one of {', '.join(APPLIES_TO)}, got {applies_to!r}"
        )
    if problems or not (
        isinstance(rid, str) and isinstance(message, str) and isinstance(expr, str)
    ):
        return None, problems
    try:
        rule = CelRule(rid, message, expr, applies_to)
    except PolicyError as exc:
        return None, [str(exc)]
    # Every rule, whatever its applies_to, must return a bool without error
    # on a well-formed activation in which every field is present.
    result = rule.run(reference)
    if result.error is not None:
        return None, [f"{name}: on the reference activation (docs/policies.md): {result.error}"]
    return rule, []
