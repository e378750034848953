#!/usr/bin/env bash
# action.yml's one step: check the input paths, find or build the image, run perfgate in it, and set the
# `exit-code` output on every path out of here (bad paths 2, no image 3, a container that could not start 3,
# else perfgate's own code).
#
# The step's result: perfgate's exit code, except that INCONCLUSIVE (4) leaves the step green (perfgate
# has printed a warning annotation with the reason). `fail-on-inconclusive: true` makes perfgate itself
# exit 1 on INCONCLUSIVE, which fails the step.
set -uo pipefail

scripts="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
action_src="$(cd "$scripts/.." && pwd)/src"
status=3  # until something better is known: a failure of this script is an infrastructure failure

finish() {
  if [ -n "${GITHUB_OUTPUT:-}" ]; then printf 'exit-code=%s\n' "$status" >> "$GITHUB_OUTPUT"; fi
  if [ "$status" -eq 4 ]; then exit 0; fi
  exit "$status"
}
trap finish EXIT

# `python3 -m MODULE ARGS` on the runner, standard library and the action's own src only: -E ignores
# PYTHON* variables an earlier step may have set, and the working directory (the checkout, which a pull
# request controls) is taken off sys.path, where -m would put it first.
host_python() {
  local module="$1"
  shift
  python3 -E -s -c 'import runpy, sys; sys.path[0] = sys.argv.pop(1); runpy.run_module(sys.argv.pop(1), run_name="__main__", alter_sys=True)' \
    "$action_src" "$module" "$@"
}

check_paths() {
  if ! command -v python3 >/dev/null; then
    echo "::warning title=perfgate::python3 is not on this runner's PATH: input paths were not checked before the container started"
    return 0
  fi
  local checked=0
  GITHUB_WORKSPACE="${GITHUB_WORKSPACE:-$PWD}" host_python perfgate.action_paths "$PWD" || checked=$?
  case "$checked" in
    0) return 0 ;;
    2) status=2; return 1 ;;
    *) echo "::warning title=perfgate::the input path check did not run (python3 exit $checked); going on without it"; return 0 ;;
  esac
}

run_container() {
  local image="$1" code=0
  "$scripts/action-run.sh" docker "$image" || code=$?
  if [ "$code" -le 4 ]; then status="$code"; return; fi
  status=3
  echo "::error title=perfgate: the container did not run::docker run ended with status $code (125: the engine could not create or start the container, 126/127: its command could not run, 137: killed, e.g. out of memory); perfgate did not finish"
}

main() {
  check_paths || return
  local image
  image="$("$scripts/action-image.sh")" || { status=3; return; }
  run_container "$image"
}

main
