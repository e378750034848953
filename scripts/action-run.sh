#!/usr/bin/env bash
# Run perfgate's image the way the Action does: ONE place holds the run flags. scripts/action.sh (the
# Action's step) calls it with `docker`; the container tests with `podman` or through the same step.
#
# usage: scripts/action-run.sh ENGINE IMAGE [ARGS...]
#   ENGINE  docker or podman (a CLI that takes docker's `run` flags)
#   IMAGE   the perfgate image (the Dockerfile, built or pulled)
#   ARGS    perfgate arguments; none in the Action, where the INPUT_* variables decide
#
# Why these flags (docs/action.md "What needs privileges and why"):
#   --network host   the service under test runs on the runner host; localhost must be the host's
#   --pid host       bpftrace and the pprof/runq collectors see the host's processes
#   --privileged     bpftrace loads BPF programs and attaches to host kernel tracepoints
#   -v tracing dirs  debugfs/tracefs, kernel modules and headers, when the host has them
#   -v workspace, runner.temp, file-command and event folders at the SAME paths, so every path in
#                    the GITHUB_* variables means the same inside and outside (no translation);
#                    scripts/action.sh refuses input paths outside the workspace and runner.temp
#   -e NAME          GITHUB_*, RUNNER_*, INPUT_*, PERFGATE_* and CI pass by name: values (the token)
#                    never appear in the argv; ACTIONS_* runtime tokens stay out
# The exit code is the container's (perfgate's verdict code, or the engine's 125-127 when the container
# could not run); scripts/action.sh turns it into the step's result and the `exit-code` output.
set -euo pipefail

if [ "$#" -lt 2 ]; then
  echo "usage: $0 docker|podman IMAGE [ARGS...]" >&2
  exit 2
fi
engine="$1" image="$2"
shift 2

workdir="$(pwd -P)"
workspace="${GITHUB_WORKSPACE:-$workdir}"
run_args=(run --rm --network host --pid host --privileged --workdir "$workdir")
mounted=()

mount_dir() {  # mount_dir PATH [ro]: bind PATH at the same path, once
  local dir="$1" mode="${2:-rw}" seen
  [ -d "$dir" ] || return 0
  for seen in "${mounted[@]}"; do
    case "$dir/" in "$seen"/*) return 0 ;; esac
  done
  mounted+=("$dir")
  run_args+=(--volume "$dir:$dir:$mode")
}

mount_dir "$(cd "$workspace" && pwd -P)"
mount_dir "$workdir"
[ -n "${RUNNER_TEMP:-}" ] && mount_dir "$(cd "$RUNNER_TEMP" && pwd -P)"
for var in GITHUB_OUTPUT GITHUB_STEP_SUMMARY GITHUB_ENV GITHUB_PATH GITHUB_STATE; do
  [ -n "${!var:-}" ] && mount_dir "$(dirname "${!var}")"
done
[ -n "${GITHUB_EVENT_PATH:-}" ] && mount_dir "$(dirname "$GITHUB_EVENT_PATH")" ro
for dir in /sys/kernel/debug /sys/kernel/tracing; do
  mount_dir "$dir"
done
for dir in /lib/modules /usr/src; do
  mount_dir "$dir" ro
done

while IFS= read -r -d '' entry; do
  name="${entry%%=*}"
  case "$name" in
    GITHUB_*|RUNNER_*|INPUT_*|PERFGATE_*|CI) run_args+=(--env "$name") ;;
  esac
done < <(env -0)

status=0
"$engine" "${run_args[@]}" "$image" "$@" || status=$?

# The container ran as root: hand what it wrote in the workspace and runner.temp back to the runner's
# user, or a self-hosted runner cannot clean them for the next job. PERFGATE_WORKSPACE_OWNER=UID:GID
# names another owner.
owner="${PERFGATE_WORKSPACE_OWNER:-$(id -u):$(id -g)}"
if [ "$owner" != "0:0" ]; then
  handed=("$workspace")
  [ -n "${RUNNER_TEMP:-}" ] && [ -d "$RUNNER_TEMP" ] && handed+=("$RUNNER_TEMP")
  volumes=()
  for dir in "${handed[@]}"; do volumes+=(--volume "$dir:$dir"); done
  "$engine" run --rm --entrypoint chown "${volumes[@]}" "$image" -R --from=0:0 "$owner" "${handed[@]}" \
    || echo "::warning::perfgate: could not chown ${handed[*]} to $owner"
fi
exit "$status"
