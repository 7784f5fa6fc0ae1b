"""Synthetic data: a generation step, recorded so its samples trace back through the generator.

Data a model generated is recorded as one more SLSA Provenance v1 step, with
``buildType`` :data:`~prov_core.step.GENERATION_BUILD_TYPE`
(``https://provgate.dev/generation/v1``; fields in ``docs/record-format.md``)::

    buildDefinition.externalParameters
        step          the step's name
        parameters    the generation parameters (temperature, top_p, max_new_tokens,
                      seed, ...), as given
        generator     {"name", "digest": {"sha256"}, "blake3"}: the generating model
        prompts       [{"name", "digest": {"sha256"}}]: prompt templates, by digest only
    buildDefinition.resolvedDependencies (annotations.role says which is which)
        "generator"            the model artifact, by its BLAKE3: the walk finds the
                               record whose signed outputs name those bytes (its
                               training step, or the ingest of an outside model)
        "generator-training"   the model's training attestation, by log index
        "seed"                 the seed data: ingest records, earlier steps, snapshots
                               or files, as for any step
    runDetails.byproducts     the generated files, each with its BLAKE3 and, when known,
                              its sample set's summary (``annotations.samples``)

Nothing new is needed to walk it: the gate's custody walk
(:mod:`prov_core.custody`) and the lineage index (:mod:`prov_core.lineage_index`)
already follow every input of a step, by log index or by BLAKE3, so a synthetic
file leads through the generation to the generator's training record, that
record's own inputs back to their ingest records, and the seeds to theirs. On
top of that the walk counts *generations* (a generation whose model or seeds
were themselves generated is one deeper) and tells the policy, per input,
which objects are synthetic, their share of the samples, and each generation
with the ingest records behind it (:class:`~prov_core.policy.GenerationFacts`;
``docs/policies.md``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from prov_core.errors import InputError
from prov_core.statement import SLSA_PROVENANCE_V1
from prov_core.step import (
    GENERATION_BUILD_TYPE,
    Artifact,
    Attestation,
    CodeIdentity,
    Recorder,
    StepInput,
    record_step,
)

__all__ = [
    "GENERATION_BUILD_TYPE",
    "ROLE_GENERATOR",
    "ROLE_GENERATOR_TRAINING",
    "ROLE_SEED",
    "Prompt",
    "record_generation",
]

ROLE_GENERATOR: Final = "generator"
"""ROLE_GENERATOR marks the generating model among a generation's inputs."""
ROLE_GENERATOR_TRAINING: Final = "generator-training"
"""ROLE_GENERATOR_TRAINING marks the generating model's training attestation."""
ROLE_SEED: Final = "seed"
"""ROLE_SEED marks the seed data a generation was prompted or conditioned with."""


@dataclass(frozen=True)
class Prompt:
    """Prompt is a prompt template a generation used, kept as its SHA-256 only."""

    name: str
    sha256: str

    @classmethod
    def of(cls, name: str, text: str | bytes) -> Prompt:
        """of digests ``text`` (UTF-8 when a string); the text itself is not kept."""
        data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        return cls(name, hashlib.sha256(data).hexdigest())

    def to_dict(self) -> dict[str, Any]:
        """``{"name", "digest": {"sha256"}}``."""
        return {"name": self.name, "digest": {"sha256": self.sha256}}


@dataclass(frozen=True)
class _Role:
    """_Role is a step input whose descriptor says what part it plays in the generation."""

    inner: StepInput
    role: str

    def descriptor(self) -> dict[str, Any]:
        d = self.inner.descriptor()
        d["annotations"] = {**d.get("annotations", {}), "role": self.role}
        return d


def record_generation(
    recorder: Recorder,
    name: str,
    *,
    generator: Artifact,
    training: Attestation | None,
    seeds: Sequence[Artifact | Attestation],
    outputs: Sequence[Artifact],
    prompts: Sequence[Prompt] = (),
    parameters: Mapping[str, Any] | None = None,
    code: CodeIdentity | None = None,
    environment: Mapping[str, Any] | None = None,
    orchestrator: Mapping[str, Any] | None = None,
    started_on: datetime | None = None,
    finished_on: datetime | None = None,
) -> Attestation:
    """record_generation signs and appends the record of data a model generated.

    ``generator`` is the model artifact (``Artifact.from_path``: its BLAKE3 is
    how the walk finds the record that produced it); ``training`` its training
    attestation (``None`` only for an outside model whose bytes were ingested
    as data, with their license: the walk then ends at that ingest record).
    ``seeds`` are the data the model was prompted or conditioned with;
    ``outputs`` the generated files (``Artifact.from_path(p, samples=True)``
    signs their sample count too, which the synthetic-fraction facts use);
    ``prompts`` the prompt templates, by digest; ``parameters`` the generation
    parameters (JSON values). Raises :class:`InputError`, before anything is
    recorded, for a generator without a BLAKE3, a training attestation that is
    not an SLSA Provenance record, or a generation without seeds or outputs.
    """
    if not generator.blake3:
        raise InputError(
            f"generation {name!r}: the generator {generator.name!r} has no BLAKE3 digest; "
            "give Artifact.from_path(model file) so its training record can be found"
        )
    if training is not None and training.predicate_type != SLSA_PROVENANCE_V1:
        raise InputError(
            f"generation {name!r}: the generator's training attestation is a "
            f"{training.predicate_type} record, not the SLSA Provenance of a training step"
        )
    if not seeds:
        raise InputError(
            f"generation {name!r} names no seed data; give the records or files the model "
            "was prompted with (seeds=[...])"
        )
    if not outputs:
        raise InputError(f"generation {name!r} has no outputs: give the generated files")
    inputs: list[StepInput] = [_Role(generator, ROLE_GENERATOR)]
    if training is not None:
        inputs.append(_Role(training, ROLE_GENERATOR_TRAINING))
    inputs.extend(_Role(s, ROLE_SEED) for s in seeds)
    model: dict[str, Any] = {
        "name": generator.name,
        "digest": {"sha256": generator.sha256},
        "blake3": generator.blake3,
    }
    return record_step(
        recorder,
        name,
        inputs=inputs,
        outputs=outputs,
        code=code,
        parameters=parameters,
        environment=environment,
        orchestrator=orchestrator,
        started_on=started_on,
        finished_on=finished_on,
        build_type=GENERATION_BUILD_TYPE,
        external={"generator": model, "prompts": [p.to_dict() for p in prompts]},
    )
