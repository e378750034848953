"""Per-request latencies stored once, compactly, beside the record: `load/rep-NN.latency.npy`.

The OK calls' latencies in ns, sorted ascending, as a NumPy `.npy` array: uint32 (4 bytes a call) when every
latency is under 4.29 s, uint64 otherwise; exact either way. Sorted, because what reads them wants quantiles
and CDFs: a record's runs then merge in one linear pass (the order ghz completed the calls in stays in its
report). Written at measure time from the one streaming
read of ghz's report (load/ghz_report.py), so nothing later parses raw ghz JSON again. Records from before
the array existed (schema 1) have none: `read_latencies` streams their raw report once instead.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from perfgate.errors import RecordError

if TYPE_CHECKING:
    import numpy as np

    from perfgate.record import RunRecord
    from perfgate.record_parts import Repetition

SUFFIX = ".latency.npy"
MAX_CALLS = 50_000_000  # far above ghz's 1,000,000 details: a bigger file is not ours


def latency_file_for(load_file: str) -> str:
    """load/rep-01.json -> load/rep-01.latency.npy (record-relative)."""
    return load_file.removesuffix(".json") + SUFFIX


def write_latencies(path: Path, latencies_ns: np.ndarray) -> None:
    import numpy as np

    values = np.asarray(latencies_ns)
    if values.ndim != 1 or (values.size and values.min() < 0):
        raise ValueError("latencies must be a 1-D array of non-negative nanoseconds")
    small = not values.size or values.max() <= np.iinfo(np.uint32).max
    compact = np.sort(values.astype(np.uint32 if small else np.uint64, copy=False))
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.tmp")
    with open(partial, "wb") as stream:
        np.save(stream, compact, allow_pickle=False)
    os.replace(partial, path)


def load_latencies(path: Path) -> np.ndarray:
    """The array at `path` in ns, as stored (uint32, or uint64 past 4.29 s); RecordError if it is not one of
    ours (records may come from forks)."""
    import numpy as np

    try:
        if path.stat().st_size > MAX_CALLS * 8 + 4096:
            raise RecordError(f"{path}: larger than {MAX_CALLS} latencies; not a perfgate latency array")
        values = np.load(path, allow_pickle=False, mmap_mode=None)
    except (OSError, ValueError) as error:
        raise RecordError(f"{path}: not a readable latency array: {error}") from error
    if not isinstance(values, np.ndarray) or values.ndim != 1 or values.dtype not in (np.uint32, np.uint64):
        raise RecordError(f"{path}: expected a 1-D uint32/uint64 array of ns, got {getattr(values, 'dtype', '?')}")
    if values.size and int(values.max()) > 2**62:
        raise RecordError(f"{path}: a latency above 2^62 ns; not a perfgate latency array")
    return values


def repetition_latencies(record: RunRecord, repetition: Repetition) -> np.ndarray:
    """One repetition's OK latencies (ns): its array, or for a schema-1 record one streaming read of its
    raw report. Empty when it has neither."""
    from perfgate.load.ghz_report import read_report

    if repetition.latency_file:
        return load_latencies(record.file(repetition.latency_file))
    if repetition.load_file:
        return read_report(record.file(repetition.load_file)).ok_latencies_ns
    import numpy as np

    return np.zeros(0, dtype=np.int64)


def record_latency_runs(record: RunRecord) -> list[np.ndarray]:
    """Every OK repetition's OK latencies (ns), each sorted ascending (a schema-1 report's once read), none merged:
    a million-call repetition is 4 MB as stored, and a merged copy of all of them would double that."""
    import numpy as np

    runs = [repetition_latencies(record, repetition) for repetition in record.ok_repetitions]
    return [run if run.size < 2 or bool((run[1:] >= run[:-1]).all()) else np.sort(run) for run in runs if run.size]


def order_statistics(runs: Sequence[np.ndarray], ranks: np.ndarray) -> np.ndarray:
    """The values at 0-based `ranks` of the sorted union of sorted integer arrays, found without merging them: per
    rank, a binary search over the values for the least one with more than `rank` values at or below it."""
    import numpy as np

    ranks = np.asarray(ranks, dtype=np.int64)
    low = np.full(ranks.shape, min(int(run[0]) for run in runs), dtype=np.int64)
    high = np.full(ranks.shape, max(int(run[-1]) for run in runs), dtype=np.int64)
    while (low < high).any():
        middle = (low + high) // 2
        at_or_below = sum(np.searchsorted(run, _as_values_of(run, middle), side="right") for run in runs)
        above = at_or_below > ranks
        high, low = np.where(above, middle, high), np.where(above, low, middle + 1)
    return low


def _as_values_of(run: np.ndarray, values: np.ndarray) -> np.ndarray:
    """int64 values in the run's dtype for searching it (numpy would otherwise copy the run into a common dtype);
    a value beyond the dtype's range is its largest, above every value of the run alike."""
    import numpy as np

    top = np.iinfo(run.dtype).max
    return (values if top >= np.iinfo(np.int64).max else np.minimum(values, top)).astype(run.dtype)
