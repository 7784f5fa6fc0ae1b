"""Errors raised by provgate.

Every failure provgate reports is a :class:`ProvgateError`. The tree::

    ProvgateError
    ├── InputError                 bad input a user can fix (exit code 2)
    │   ├── LicenseError           not a known SPDX license identifier
    │   ├── ConfigError            $PROVGATE_HOME missing, corrupt or unusable
    │   ├── NotFoundError          no such repository, ref or object
    │   └── PolicyError            a policy file or rule that does not load
    ├── FormatError                outside bytes that do not parse (envelope,
    │                              statement, checkpoint note, receipt, rows)
    ├── CanonicalizationError      a value RFC 8785 cannot represent
    ├── KeyStoreError              key files: missing, wrong mode, unreadable
    ├── LedgerError                the ledger cannot be read or written
    ├── StoreError                 the snapshot store cannot be reached or failed
    ├── ResolverError              a resolver (models:/..., prov_core.resolvers) failed
    └── VerificationError          something does not verify (exit code 1)
        ├── SignatureError         a signature is invalid
        ├── UntrustedKeyError      signed by a key the trust store does not allow
        ├── RevokedKeyError        signed by a revoked key
        ├── ProofError             an inclusion or consistency proof fails
        ├── LedgerIntegrityError   the stored log disagrees with its checkpoints
        ├── IntegrityError         stored content differs from its signed digest
        ├── GateRefused            the training gate refused (every reason attached)
        ├── InferenceBlocked       an answer was blocked before it was returned
        └── FederatedRoundRefused  too few federated updates verified to aggregate

Lower-layer exceptions (``OSError``, ``sqlite3.Error``, ``ValueError`` from
parsers, ``cryptography`` errors) are mapped to the most specific class here
with ``raise ... from exc``; callers never need to catch anything else.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "CanonicalizationError",
    "ConfigError",
    "FederatedRoundRefused",
    "FormatError",
    "GateRefused",
    "InferenceBlocked",
    "InputError",
    "IntegrityError",
    "KeyStoreError",
    "LedgerError",
    "LedgerIntegrityError",
    "LicenseError",
    "NotFoundError",
    "PolicyError",
    "ProofError",
    "ProvgateError",
    "ResolverError",
    "RevokedKeyError",
    "SignatureError",
    "StoreError",
    "UntrustedKeyError",
    "VerificationError",
    "refusal_message",
]


class ProvgateError(Exception):
    """Root of every error provgate raises."""

    exit_code = 2


class InputError(ProvgateError):
    """Input a user can correct: a missing path, an unreadable or malformed file."""


class LicenseError(InputError):
    """A license identifier that is not a known SPDX license or expression."""


class ConfigError(InputError):
    """``$PROVGATE_HOME`` is missing, incomplete or corrupt."""


class NotFoundError(InputError):
    """A repository, branch, tag, commit or object that does not exist."""


class PolicyError(InputError):
    """A policy file or rule that cannot be loaded (syntax error: rule id and position)."""


class FormatError(ProvgateError):
    """Bytes from outside (envelope, statement, note, receipt, rows) that do not parse."""


class CanonicalizationError(ProvgateError):
    """A value that has no RFC 8785 canonical form (NaN, huge int, lone surrogate, unknown type)."""


class KeyStoreError(ProvgateError):
    """A signing key cannot be created, found or loaded safely."""


class LedgerError(ProvgateError):
    """The ledger's storage cannot be read or written."""


class StoreError(ProvgateError):
    """The snapshot store cannot be reached or failed an operation (the gate fails closed)."""


class ResolverError(ProvgateError):
    """A resolver could not map a URI of another system to a record (``scheme`` names it).

    Raised when the other system (an MLflow tracking server, ...) cannot
    answer, or when the resolver itself is broken; see :mod:`prov_core.resolvers`.
    """

    def __init__(self, message: str, *, scheme: str | None = None) -> None:
        super().__init__(message)
        self.scheme = scheme


class VerificationError(ProvgateError):
    """Something that should verify does not; ``exit_code`` 1.

    ``keyid`` names the key involved, if any; ``reason`` says why it failed.
    """

    exit_code = 1

    def __init__(self, message: str, *, keyid: str | None = None, reason: str | None = None):
        super().__init__(message)
        self.keyid = keyid
        self.reason = reason


class SignatureError(VerificationError):
    """A signature does not verify over the bytes it claims to sign."""


class UntrustedKeyError(VerificationError):
    """A signature by a key the trust store does not allow for this record."""


class RevokedKeyError(VerificationError):
    """A signature by a key that has been revoked; records it signed no longer verify."""


class ProofError(VerificationError):
    """An inclusion or consistency proof does not hold."""


class LedgerIntegrityError(VerificationError):
    """The stored log disagrees with itself or with its signed checkpoints."""


class IntegrityError(VerificationError):
    """Stored content whose digest differs from the one a signed record holds."""


class GateRefused(VerificationError):
    """The training gate refused; ``reasons`` lists every reason, not only the first.

    ``decision`` is the gate's :class:`~prov_core.gate.GateDecision` when the
    gate raised it (codes, inputs, rule ids and the VSA's log index).
    """

    def __init__(
        self, message: str, *, reasons: tuple[str, ...] = (), decision: object | None = None
    ) -> None:
        super().__init__(message)
        self.reasons = reasons
        self.decision = decision


class InferenceBlocked(VerificationError):
    """An answer was blocked before it was returned; ``reasons`` lists every reason.

    ``decision`` is the :class:`~prov_core.inference.InferenceDecision`: the
    facts, the failed rules and the attestation of the recorded block
    (``None`` when even the block could not be recorded).
    """

    def __init__(
        self, message: str, *, reasons: tuple[str, ...] = (), decision: object | None = None
    ) -> None:
        super().__init__(message)
        self.reasons = reasons
        self.decision = decision


class FederatedRoundRefused(VerificationError):
    """A federated round was not aggregated: too few client updates verified.

    ``refusals`` are the :class:`~prov_core.federated.Refusal` s, each naming
    the client, every reason and the log index of its recorded decision.
    """

    def __init__(self, message: str, *, refusals: tuple[object, ...] = ()) -> None:
        super().__init__(message)
        self.refusals = refusals


def refusal_message(what: str, reasons: Sequence[str], vsa_log_index: int | None) -> str:
    """refusal_message is the one text every adapter fails a refused step with: what was
    refused, where the refusal is recorded, and every reason on a line of its own."""
    recorded = (
        f"the refusal is recorded at log index {vsa_log_index}"
        if vsa_log_index is not None
        else "the refusal could not be recorded"
    )
    lines = "\n".join(f"- {r}" for r in reasons)
    return f"the training gate refused the inputs of {what} ({recorded}):\n{lines}"
