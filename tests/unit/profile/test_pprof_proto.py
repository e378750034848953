"""The committed profile_pb2.py is what scripts/gen_proto.sh makes from profile.proto, byte for byte."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from support.paths import ROOT

from perfgate.profile import profile_pb2

COMMITTED = ROOT / "src" / "perfgate" / "profile" / "profile_pb2.py"


def test_regenerating_gives_the_committed_file(tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools", reason="grpcio-tools (pyproject's test extra) generates the code")
    done = subprocess.run([str(ROOT / "scripts" / "gen_proto.sh"), str(tmp_path)],  # noqa: S603 - fixed argv
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    fresh = (tmp_path / "profile_pb2.py").read_bytes()
    assert fresh == COMMITTED.read_bytes(), "profile_pb2.py is stale: run scripts/gen_proto.sh and commit it"


def test_messages_carry_the_pprof_field_numbers() -> None:
    """Wire compatibility with pprof rests on these numbers (google/pprof's proto/profile.proto)."""
    def numbers(message) -> dict[str, int]:
        return {f.name: f.number for f in message.DESCRIPTOR.fields}

    assert numbers(profile_pb2.Profile) == {
        "sample_type": 1, "sample": 2, "mapping": 3, "location": 4, "function": 5, "string_table": 6,
        "drop_frames": 7, "keep_frames": 8, "time_nanos": 9, "duration_nanos": 10, "period_type": 11,
        "period": 12, "comment": 13, "default_sample_type": 14}
    assert numbers(profile_pb2.Sample) == {"location_id": 1, "value": 2, "label": 3}
    assert numbers(profile_pb2.Location) == {"id": 1, "mapping_id": 2, "address": 3, "line": 4, "is_folded": 5}
    assert numbers(profile_pb2.Line) == {"function_id": 1, "line": 2, "column": 3}
    assert numbers(profile_pb2.Function) == {"id": 1, "name": 2, "system_name": 3, "filename": 4, "start_line": 5}
    assert numbers(profile_pb2.Label) == {"key": 1, "str": 2, "num": 3, "num_unit": 4}
    assert numbers(profile_pb2.ValueType) == {"type": 1, "unit": 2}
    assert numbers(profile_pb2.Mapping)["has_inline_frames"] == 10
