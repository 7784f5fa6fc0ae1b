"""provgate for Hugging Face datasets: per-sample ids and ingest records from the Hub.

::

    from prov_hf import add_prov_ids, ingest_dataset, sample_set

    ds = datasets.load_dataset("org/reviews", split="train")
    ds = add_prov_ids(ds)                 # a _prov_id column: provgate's row ids
    with Recorder.from_home(open_home()) as recorder:
        result = ingest_dataset(recorder, ds, license="CC-BY-4.0")
    # the record names hf://datasets/org/reviews@<commit> and source.revision <commit>

The ids are exactly those of prov_core's Arrow path (``provgate-row/v1``,
docs/digests.md) for the same rows; nothing here hashes, signs or stores.
"""

from prov_hf.hub import HubOrigin, hub_origin
from prov_hf.ids import add_prov_ids, sample_set
from prov_hf.ingest import ingest_dataset

__version__ = "0.1.0"
__all__ = [
    "HubOrigin",
    "__version__",
    "add_prov_ids",
    "hub_origin",
    "ingest_dataset",
    "sample_set",
]
