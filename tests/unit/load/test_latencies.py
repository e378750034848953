"""Per-request latencies stored once, compactly (load/latencies.py), and records from before they existed."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from support.records import sample_record

from perfgate.errors import RecordError
from perfgate.load.latencies import load_latencies, order_statistics, record_latency_runs, write_latencies
from perfgate.record import SCHEMA_VERSION, load_record


def test_round_trip_is_exact_in_four_bytes_a_call(tmp_path):
    values = np.random.default_rng(7).integers(200_000, 4_000_000_000, size=10_000)
    path = tmp_path / "rep-01.latency.npy"
    write_latencies(path, values)
    assert np.load(path).dtype == np.uint32 and path.stat().st_size < 4 * values.size + 200
    assert load_latencies(path).tolist() == sorted(values.tolist())  # stored sorted, for quantiles


def test_a_call_over_four_seconds_keeps_eight_bytes_and_its_value(tmp_path):
    values = np.array([1, 5_000_000_000, 20_000_000_000])
    write_latencies(tmp_path / "slow.npy", values)
    assert np.load(tmp_path / "slow.npy").dtype == np.uint64
    assert load_latencies(tmp_path / "slow.npy").tolist() == values.tolist()


@pytest.mark.parametrize(("array", "message"), [
    (np.array([{"x": 1}], dtype=object), "not a readable latency array"),  # a pickle: never loaded
    (np.zeros((2, 2), dtype=np.uint32), "1-D uint32/uint64"),
    (np.array([1.5, 2.0]), "1-D uint32/uint64"),
    (np.array([2**63], dtype=np.uint64), "above 2\\^62"),
])
def test_an_array_that_is_not_ours_is_a_record_error(tmp_path, array, message):
    path = tmp_path / "bad.npy"
    np.save(path, array, allow_pickle=True)
    with pytest.raises(RecordError, match=message):
        load_latencies(path)
    path.write_bytes(b"not numpy at all")
    with pytest.raises(RecordError, match="not a readable latency array"):
        load_latencies(path)


def ghz_report(latencies: list[int], errors: int) -> dict:
    details = [{"timestamp": "2026-11-30T06:07:30.1Z", "latency": v, "error": "", "status": "OK"} for v in latencies]
    details += [{"timestamp": "2026-11-30T06:07:30.2Z", "latency": 9, "error": "rpc error: x", "status": "Unavailable"}
                ] * errors
    return {"date": "2026-11-30T06:07:30Z", "endReason": "timeout", "options": {}, "count": len(details),
            "total": 10**9, "average": 1, "fastest": 1, "slowest": 9, "rps": 1.0, "errorDistribution": {},
            "statusCodeDistribution": {"OK": len(latencies), "Unavailable": errors}, "latencyDistribution": None,
            "histogram": None, "details": details}


def test_a_schema_1_record_loads_and_its_latencies_stream_from_the_raw_report(tmp_path):
    folder = tmp_path / "old"
    sample_record().save(folder)
    data = json.loads((folder / "record.json").read_text())
    data["schema_version"] = 1  # what perfgate 0.1.0 wrote: no latency_file anywhere
    for repetition in data["repetitions"]:
        del repetition["latency_file"]
    (folder / "record.json").write_text(json.dumps(data))
    (folder / "load").mkdir()
    (folder / "load" / "rep-01.json").write_text(json.dumps(ghz_report([300, 200, 100], errors=2)))
    record = load_record(folder)
    assert record.schema_version == SCHEMA_VERSION == 2
    assert record.repetitions[0].latency_file is None
    assert [run.tolist() for run in record_latency_runs(record)] == [[100, 200, 300]]  # sorted once read


def test_a_new_record_reads_its_arrays_not_the_raw_report(tmp_path):
    record = sample_record()
    repetition = replace(record.repetitions[0], latency_file="load/rep-01.latency.npy")
    saved = replace(record, repetitions=(repetition,)).save(tmp_path / "new")
    write_latencies(tmp_path / "new" / "load" / "rep-01.latency.npy", np.array([9, 7, 8]))
    (tmp_path / "new" / "load" / "rep-01.json").write_text("{broken: the raw report is not read}")
    reloaded = load_record(saved.path)
    assert reloaded == saved and [run.tolist() for run in record_latency_runs(reloaded)] == [[7, 8, 9]]


@pytest.mark.parametrize("dtype", [np.uint32, np.uint64])
def test_order_statistics_of_unmerged_runs_are_those_of_the_merged_array(dtype):
    rng = np.random.default_rng(5)
    runs = [np.sort(rng.integers(0, 5_000, size=size).astype(dtype)) for size in (1, 700, 2_000)]  # ties too
    merged = np.sort(np.concatenate(runs))
    ranks = np.concatenate([[0, merged.size - 1], rng.integers(0, merged.size, size=300)])
    assert order_statistics(runs, ranks).tolist() == merged[ranks].tolist()


def test_order_statistics_across_runs_of_both_dtypes():
    small = np.array([5, 9, 4_000_000_000], dtype=np.uint32)
    large = np.array([7, 5_000_000_000, 6_000_000_000], dtype=np.uint64)  # a call slower than 4.29 s
    merged = np.sort(np.concatenate([small.astype(np.uint64), large]))
    assert order_statistics([small, large], np.arange(6)).tolist() == merged.tolist()
