#!/usr/bin/env bash
# action.yml's one step: check the input paths, find or build the image, build the service when perfgate.yml
# says how, run perfgate in its container, and set the `exit-code` output on every path out of here (bad paths
# 2, no image 3, a container that could not start 3, a failed build 3, else perfgate's own code).
#
# Built A/B (modes run and baseline, when perfgate.yml has service.build; docs/action.md "Built A/B"):
#   1. container: `perfgate build-plan` writes RUNNER_TEMP/perfgate-build/build-plan.json (none: no service.build,
#      and perfgate compares with a baseline artifact or record as before);
#   2. runner: `python3 -m perfgate.build` builds the checkout, and on pull requests also the base commit
#      (pull_request.base.sha, fetched when the checkout lacks it: perfgate.action_base), standard library only;
#   3. container: `perfgate run --builds ...` runs both builds side by side (or the one, in mode baseline).
#
# The step's result: perfgate's exit code, except that INCONCLUSIVE (4) leaves the step green (perfgate
# has printed a warning annotation with the reason). `fail-on-inconclusive: true` makes perfgate itself
# exit 1 on INCONCLUSIVE, which fails the step.
set -uo pipefail

scripts="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
action_src="$(cd "$scripts/.." && pwd)/src"
status=3  # until something better is known: a failure of this script is an infrastructure failure
build_env=()  # PERFGATE_ACTION_BUILD_* for the container once the builds are made (perfgate.action_inputs)

finish() {
  if [ -n "${GITHUB_OUTPUT:-}" ]; then printf 'exit-code=%s\n' "$status" >> "$GITHUB_OUTPUT"; fi
  if [ "$status" -eq 4 ]; then exit 0; fi
  exit "$status"
}
trap finish EXIT

trimmed() { local value="$1"; value="${value#"${value%%[![:space:]]*}"}"; printf '%s' "${value%"${value##*[![:space:]]}"}"; }

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

run_container() {  # run_container IMAGE [NAME=VALUE...]: perfgate in its container, with these variables too
  local image="$1" code=0
  shift
  env "$@" "$scripts/action-run.sh" docker "$image" || code=$?
  if [ "$code" -le 4 ]; then status="$code"; return; fi
  status=3
  echo "::error title=perfgate: the container did not run::docker run ended with status $code (125: the engine could not create or start the container, 126/127: its command could not run, 137: killed, e.g. out of memory); perfgate did not finish"
}

# Built A/B: returns 1 (with status set) when the run must stop; leaves build_env empty without service.build.
build_service() {
  local image="$1" mode="$2" dir workdir base code=0 against=()
  if [ -z "${RUNNER_TEMP:-}" ] || ! command -v python3 >/dev/null; then
    echo "::notice title=perfgate::no RUNNER_TEMP or python3 on this runner: service.build is not used here"
    return 0
  fi
  dir="$RUNNER_TEMP/perfgate-build"
  rm -rf "$dir" && mkdir -p "$dir"
  run_container "$image" PERFGATE_ACTION_BUILD_STEP=plan "PERFGATE_ACTION_BUILD_DIR=$dir"
  [ "$status" -eq 0 ] || return 1
  if [ ! -f "$dir/build-plan.json" ]; then
    echo "perfgate: perfgate.yml has no service.build: no A/B build; the baseline comes from the configuration (an artifact or a record)"
    return 0
  fi
  workdir="$(trimmed "$(printenv 'INPUT_WORKING-DIRECTORY' || true)")"  # a hyphen: not a bash variable
  workdir="${workdir:-.}"
  if [ "$mode" = run ] && [[ "${GITHUB_EVENT_NAME:-}" == pull_request* ]]; then
    base="$(cd -- "$workdir" && host_python perfgate.action_base .)" || code=$?
    if [ "$code" -ne 0 ]; then status="$code"; return 1; fi
    against=(--against "$base")
  fi
  (cd -- "$workdir" && host_python perfgate.build --plan "$dir/build-plan.json" "${against[@]}" --out "$dir/builds") \
    || code=$?
  if [ "$code" -ne 0 ]; then status=$(( code == 2 ? 2 : 3 )); return 1; fi
  build_env=(PERFGATE_ACTION_BUILD_STEP=run "PERFGATE_ACTION_BUILD_DIR=$dir")
}

main() {
  check_paths || return
  local image mode
  image="$("$scripts/action-image.sh")" || { status=3; return; }
  mode="$(trimmed "${INPUT_MODE:-run}")"
  if [ "$mode" = run ] || [ "$mode" = baseline ] || [ -z "$mode" ]; then
    build_service "$image" "${mode:-run}" || return
  fi
  run_container "$image" "${build_env[@]}"
}

main
