#!/usr/bin/env bash
# Regenerates greeterpb/*.pb.go from greeter.proto with pinned plugins.
# Needs protoc (Debian package protobuf-compiler); the plugins are installed
# into <repo>/.tools/bin. The generated code is committed: building the
# greeter never needs this script.
set -euo pipefail

PROTOC_GEN_GO_VERSION="v1.36.12"       # keep equal to google.golang.org/protobuf in go.mod
PROTOC_GEN_GO_GRPC_VERSION="v1.5.1"

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BIN="${PERFGATE_TOOLS:-$ROOT/.tools}/bin"
MODULE="github.com/perfgate/perfgate/examples/greeter"

if ! command -v protoc >/dev/null; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends protobuf-compiler >/dev/null
  else
    echo "gen.sh: protoc not found; install it: sudo apt-get install -y protobuf-compiler" >&2
    exit 1
  fi
fi

mkdir -p "$BIN"
GOBIN="$BIN" go install "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION"
GOBIN="$BIN" go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC_VERSION"

cd "$HERE"
PATH="$BIN:$PATH" protoc -I . \
  --go_out=. --go_opt="module=$MODULE" \
  --go-grpc_out=. --go-grpc_opt="module=$MODULE" \
  greeter.proto
echo "gen.sh: regenerated $HERE/greeterpb with $(protoc --version)," \
  "protoc-gen-go $PROTOC_GEN_GO_VERSION, protoc-gen-go-grpc $PROTOC_GEN_GO_GRPC_VERSION" >&2
