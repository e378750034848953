#!/usr/bin/env bash
# Which perfgate image the Action runs (scripts/action.sh calls this): prints the image's ID on stdout,
# says on stderr where it came from, exits 3 when there is none.
#
#   1. the `image` input (INPUT_IMAGE): used as it is when the engine already has it (an image built or
#      loaded on a self-hosted runner is never pulled), else pulled. Neither: exit 3. No fallback to a
#      build here: the workflow asked for that image.
#   2. else PERFGATE_DEFAULT_IMAGE (a release's action.yml pins its published image by digest; empty on
#      main): local, else pulled; when the pull fails, a warning and 3.
#   3. build the action's Dockerfile (a few minutes on a cold runner; docs/action.md "The image").
#
# The ID, not the name, is what runs: another job on the same runner re-tagging the name cannot swap
# the image between here and `docker run`. Registry and build messages are external text: they are
# printed between ::stop-commands:: markers so no line of them can act as a workflow command.
set -uo pipefail

engine=docker
action_dir="${GITHUB_ACTION_PATH:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
requested="${INPUT_IMAGE:-}"
requested="${requested#"${requested%%[![:space:]]*}"}" requested="${requested%"${requested##*[![:space:]]}"}"
default_image="${PERFGATE_DEFAULT_IMAGE:-}"

say() { printf 'perfgate image: %s\n' "$*" >&2; }

untrusted() {  # stdin -> stderr, with workflow commands switched off around it
  local token
  token="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  printf '::stop-commands::%s\n' "$token" >&2
  cat >&2
  printf '::%s::\n' "$token" >&2
}

local_id() {  # the ID of an image the engine already has, or nothing
  "$engine" image inspect --format '{{.Id}}' "$1" 2>/dev/null | head -n 1
}

pulled_id() {  # pull, then the ID; the engine's complaint (external text) when that fails
  local output
  if output="$("$engine" pull --quiet "$1" 2>&1)"; then
    local_id "$1"
    return
  fi
  printf '%s\n' "$output" | tail -n 20 | untrusted
  return 1
}

built_id() {
  local iid started output
  iid="$(mktemp)"
  started=$SECONDS
  say "building $action_dir/Dockerfile (no prebuilt image; this takes a few minutes on a fresh runner)"
  if output="$("$engine" build --quiet --iidfile "$iid" --tag perfgate-action:local "$action_dir" 2>&1)"; then
    say "built in $((SECONDS - started)) s"
    cat "$iid"
    rm -f "$iid"
    return
  fi
  rm -f "$iid"
  printf '%s\n' "$output" | tail -n 40 | untrusted
  echo "::error title=perfgate: image build failed::building the action's Dockerfile failed (the output is above); pass a prebuilt image with the image input" >&2
  return 1
}

case "$requested$default_image" in
  *[[:space:]]*|-*)
    echo "::error title=perfgate: bad image input::the image input must be one image reference (no spaces, not starting with -)" >&2
    exit 3 ;;
esac

if [ -n "$requested" ]; then
  id="$(local_id "$requested")"
  if [ -n "$id" ]; then say "using $requested, found on this runner (not pulled)"; echo "$id"; exit 0; fi
  say "pulling $requested"
  if id="$(pulled_id "$requested")" && [ -n "$id" ]; then echo "$id"; exit 0; fi
  echo "::error title=perfgate: image not available::the image input names an image this runner does not have and could not pull (the engine's message is above); check the name, the registry login, or leave image empty" >&2
  exit 3
fi

if [ -n "$default_image" ]; then
  id="$(local_id "$default_image")"
  if [ -n "$id" ]; then say "using $default_image, found on this runner"; echo "$id"; exit 0; fi
  say "pulling $default_image"
  if id="$(pulled_id "$default_image")" && [ -n "$id" ]; then echo "$id"; exit 0; fi
  echo "::warning title=perfgate: prebuilt image not pulled::could not pull the release image (the engine's message is above); building the Dockerfile instead, which is slower" >&2
fi

built_id || exit 3
