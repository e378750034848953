#!/usr/bin/env bash
# Regenerates src/perfgate/profile/profile_pb2.py from profile.proto.
#
# The compiler is the protoc bundled in grpcio-tools, pinned in pyproject.toml's
# `test` extra, so the output is byte-for-byte reproducible (tests/unit/profile/test_pprof_proto.py
# checks the committed file against a fresh run). The generated file is committed:
# installing or running perfgate never needs this script.
#
# usage: scripts/gen_proto.sh [OUT_DIR]   (default: src/perfgate/profile)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PERFGATE_VENV:-$ROOT/.venv}/bin/python"
OUT="${1:-$ROOT/src/perfgate/profile}"

if ! "$PY" -c "import grpc_tools.protoc" 2>/dev/null; then
  echo "gen_proto.sh: grpcio-tools missing in $PY; run scripts/setup.sh --python" >&2
  exit 1
fi

mkdir -p "$OUT"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# -I src makes the descriptor's file name perfgate/profile/profile.proto (unique in
# the process-wide descriptor pool, unlike a bare "profile.proto").
(cd "$ROOT/src" && "$PY" -m grpc_tools.protoc -I . --python_out="$tmp" perfgate/profile/profile.proto)
mv "$tmp/perfgate/profile/profile_pb2.py" "$OUT/profile_pb2.py"
echo "gen_proto.sh: wrote $OUT/profile_pb2.py ($("$PY" -m grpc_tools.protoc --version))" >&2
