"""The record's layers below the CPU: written and reloaded equal, absent in older records, files and
figures checked like the rest of a record written by a pull request."""

from __future__ import annotations

import json
from dataclasses import replace
from types import MappingProxyType

import pytest
from support.records import sample_record

from perfgate.errors import RecordError
from perfgate.record import load_record
from perfgate.record_parts import GoroutineCapture, LayerCapture


def with_layers(record):
    rep = replace(record.repetitions[0], layers=MappingProxyType({
        "allocs": LayerCapture(status="ok", file="layers/rep-01.allocs.pb.gz",
                               totals=MappingProxyType({"alloc_objects": 1200, "alloc_space": 96_000}),
                               duration_ns=2_000_000_000),
        "mutex": LayerCapture(status="unavailable", reason="mutex profile unavailable: rate 0"),
    }), goroutines=GoroutineCapture(status="ok", start_file="layers/rep-01.goroutine-start.pb.gz",
                                    end_file="layers/rep-01.goroutine-end.pb.gz", start_count=20, end_count=32))
    return replace(record, repetitions=(rep,))


def test_layers_reload_equal(tmp_path):
    saved = with_layers(sample_record()).save(tmp_path / "rec")
    loaded = load_record(tmp_path / "rec")
    assert loaded == saved
    rep = loaded.repetitions[0]
    assert rep.layers["allocs"].totals == {"alloc_objects": 1200, "alloc_space": 96_000}
    assert rep.goroutines.growth == 12 and GoroutineCapture(status="unavailable").growth is None


def test_a_record_from_before_the_layers_reads_as_without_them(tmp_path):
    folder = sample_record().save(tmp_path / "rec").path
    data = json.loads((folder / "record.json").read_text())
    for rep in data["repetitions"]:
        del rep["layers"], rep["goroutines"]
    (folder / "record.json").write_text(json.dumps(data))
    rep = load_record(folder).repetitions[0]
    assert rep.layers == {} and rep.goroutines is None


@pytest.mark.parametrize(("mutate", "expected"), [
    (lambda rep: rep["layers"]["allocs"].update(file="../../etc/passwd"), "layers.allocs.file"),
    (lambda rep: rep["goroutines"].update(end_file="/etc/passwd"), "goroutines.end_file"),
    (lambda rep: rep["layers"]["allocs"].update(totals={"alloc_space": "lots"}), "alloc_space"),
    (lambda rep: rep["layers"]["allocs"].update(totals=[1, 2]), "layers.allocs.totals"),
    (lambda rep: rep["goroutines"].update(end_count=1.5), "end_count"),
    (lambda rep: rep.update(layers=["allocs"]), "field 'layers' should be an object"),
])
def test_a_damaged_layer_is_refused_naming_the_field(tmp_path, mutate, expected):
    folder = with_layers(sample_record()).save(tmp_path / "rec").path
    data = json.loads((folder / "record.json").read_text())
    mutate(data["repetitions"][0])
    (folder / "record.json").write_text(json.dumps(data))
    with pytest.raises(RecordError, match=expected.replace(".", r"\.")):
        load_record(folder)
