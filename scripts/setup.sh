#!/usr/bin/env bash
# One install script for everything perfgate needs: the README's `make demo` /
# `make test`, CI (.ci/run) and the Dockerfile all call it, so CI exercises the
# same install logic the image runs. Idempotent: each step checks before it acts.
#
# usage: scripts/setup.sh [--system] [--python] [--ghz] [--examples] [--node] [--all]
#   --system    Debian packages (bpftrace, prometheus-pushgateway, ...)
#   --python    .venv with perfgate and its test dependencies
#   --ghz       ghz pinned, into .tools/bin
#   --examples  the example Go service, into .tools/bin
#   --node      GitHub's OpenAPI description (npm @octokit/openapi), into .tools/node
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="${PERFGATE_TOOLS:-$ROOT/.tools}"
VENV="${PERFGATE_VENV:-$ROOT/.venv}"
GHZ_VERSION="v0.121.0"
OCTOKIT_OPENAPI_VERSION="23.0.2"
SYSTEM_PACKAGES=(bpftrace prometheus-pushgateway)

log() { printf 'setup: %s\n' "$*" >&2; }

install_system() {
  local missing=()
  for pkg in "${SYSTEM_PACKAGES[@]}" "${EXTRA_SYSTEM_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -eq 0 ]; then return; fi
  if [ "$(id -u)" -ne 0 ]; then
    log "missing Debian packages ${missing[*]}; run as root or: sudo apt-get install -y ${missing[*]}"
    return 1
  fi
  log "installing Debian packages: ${missing[*]}"
  # policy-rc.d keeps the package scripts from starting daemons (the tests start their own).
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  rm -f /usr/sbin/policy-rc.d
}

install_python() {
  local stamp="$VENV/.perfgate-installed"
  if [ -f "$stamp" ] && [ "$stamp" -nt "$ROOT/pyproject.toml" ]; then return; fi
  log "creating $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -e "$ROOT[test]"
  touch "$stamp"
}

install_ghz() {
  if [ -x "$TOOLS/bin/ghz" ] && [ "$(cat "$TOOLS/bin/.ghz-version" 2>/dev/null)" = "$GHZ_VERSION" ]; then return; fi
  log "installing ghz $GHZ_VERSION into $TOOLS/bin"
  mkdir -p "$TOOLS/bin"
  GOBIN="$TOOLS/bin" GOFLAGS=-buildvcs=false go install "github.com/bojand/ghz/cmd/ghz@$GHZ_VERSION"
  echo "$GHZ_VERSION" > "$TOOLS/bin/.ghz-version"
}

install_examples() {
  mkdir -p "$TOOLS/bin"
  if [ -d "$ROOT/examples/greeter" ]; then
    log "building examples/greeter into $TOOLS/bin/greeter"
    (cd "$ROOT/examples/greeter" && GOFLAGS=-buildvcs=false go build -trimpath -o "$TOOLS/bin/greeter" .)
  fi
}

install_node() {
  local dir="$TOOLS/node"
  if [ -f "$dir/node_modules/@octokit/openapi/package.json" ] \
     && grep -q "\"version\": \"$OCTOKIT_OPENAPI_VERSION\"" "$dir/node_modules/@octokit/openapi/package.json"; then
    return
  fi
  log "installing @octokit/openapi@$OCTOKIT_OPENAPI_VERSION into $dir"
  mkdir -p "$dir"
  npm install --silent --no-audit --no-fund --prefix "$dir" "@octokit/openapi@$OCTOKIT_OPENAPI_VERSION"
}

EXTRA_SYSTEM_PACKAGES=()
main() {
  [ "$#" -gt 0 ] || set -- --all
  for arg in "$@"; do
    case "$arg" in
      --system) install_system ;;
      --python) install_python ;;
      --ghz) install_ghz ;;
      --examples) install_examples ;;
      --node) install_node ;;
      --all) install_system; install_python; install_ghz; install_examples; install_node ;;
      *) log "unknown option $arg (see the usage at the top of scripts/setup.sh)"; exit 2 ;;
    esac
  done
}
main "$@"
