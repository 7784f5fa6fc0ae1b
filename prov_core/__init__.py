"""provgate core: digests, signed provenance records, a tamper-evident ledger."""

__version__ = "0.1.0"
