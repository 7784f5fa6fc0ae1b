"""Per-sample ids of a ``datasets.Dataset``: the ``_prov_id`` column and the sample set.

Both read the dataset as Arrow (``with_format("arrow")``), so every batch is
the ``pyarrow.Table`` of its rows with the dataset's own column types, and
hand it to prov_core's Arrow path: a row's id is what
:func:`prov_core.digest.row_ids` gives that row in any table, whatever the
batch size, the shards or an indices mapping (``select``, ``shuffle``,
``filter``) in front of the data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prov_core.digest import ROW_ID_COLUMN, SampleSet, add_row_ids, sample_set_of_batches

if TYPE_CHECKING:
    import datasets

__all__ = ["DEFAULT_BATCH_SIZE", "add_prov_ids", "sample_set"]

DEFAULT_BATCH_SIZE = 10_000
"""DEFAULT_BATCH_SIZE rows are encoded and hashed at once (about 1 MB of ids and rows)."""


def add_prov_ids(
    dataset: datasets.Dataset, *, batch_size: int = DEFAULT_BATCH_SIZE, **map_kwargs: Any
) -> datasets.Dataset:
    """add_prov_ids returns ``dataset`` with a ``_prov_id`` column, ``fixed_size_binary[32]``.

    One ``map(batched=True)`` over the dataset as Arrow; ``map_kwargs`` go to
    ``Dataset.map`` (``num_proc``, ``keep_in_memory``, ``cache_file_name``, ...).
    A dataset that already has ``_prov_id`` has every id checked against its
    row instead (:class:`~prov_core.errors.VerificationError` names the first
    row, counted within its batch, that differs). A column that
    ``provgate-row/v1`` does not encode (lists, structs such as ``Image`` or
    ``Audio``) raises :class:`~prov_core.errors.CanonicalizationError` naming
    it: ``remove_columns`` or ``cast_column`` it first. The dataset's format
    (``with_format``) is kept, with ``_prov_id`` among its columns.
    """
    fmt = dataset.format
    out = dataset.with_format("arrow").map(
        add_row_ids,  # the batch with _prov_id (or its ids verified, if present)
        batched=True,
        batch_size=batch_size,
        desc=map_kwargs.pop("desc", "provgate ids"),
        **map_kwargs,
    )
    columns = fmt.get("columns")
    if columns is not None and ROW_ID_COLUMN not in columns:
        columns = [*columns, ROW_ID_COLUMN]
    return out.with_format(
        fmt.get("type"),
        columns=columns,
        output_all_columns=fmt.get("output_all_columns", False),
        **fmt.get("format_kwargs", {}),
    )


def sample_set(dataset: datasets.Dataset, *, batch_size: int = DEFAULT_BATCH_SIZE) -> SampleSet:
    """sample_set returns the dataset's rows as a sample set: sorted ids and Merkle root.

    Read a batch at a time (only the ids are held); equal to
    :func:`prov_core.digest.sample_set_of_table` of the dataset as one table.
    A ``_prov_id`` column is verified, never trusted.
    """
    batches = dataset.with_format("arrow").iter(batch_size=batch_size)
    return sample_set_of_batches(batches)
