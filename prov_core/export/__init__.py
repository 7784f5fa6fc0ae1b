"""Exports of the ledger into other lineage formats.

- :mod:`prov_core.export.openlineage`: one OpenLineage RunEvent per ledger
  entry, as JSON or through any openlineage-python transport (extra
  ``provgate[openlineage]``).

Exporters read signed records and never change them; the records stay the
source of truth and an export can always be regenerated from the ledger.
Nothing here imports an optional dependency until an export runs.
"""

from __future__ import annotations

__all__: list[str] = []
