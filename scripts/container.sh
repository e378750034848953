#!/usr/bin/env bash
# Build the Action's image with podman on a machine that has no Docker engine and
# reaches no container registry (this project's CI; docs/action.md "Testing the image here").
#
# usage: scripts/container.sh base    ensure the local Debian bookworm base image exists; print its name
#        scripts/container.sh build   base + `podman build` of the Dockerfile; print the image name
#        scripts/container.sh conf    print the containers.conf that `podman run` needs here
#        scripts/container.sh docker ARGS...
#                                     a `docker` CLI served by podman with this machine's settings (runc, the
#                                     containers.conf; builds with chroot isolation FROM the local base), for
#                                     the tests that run the Action's own step script (a `docker` on PATH)
#
# The base stands in for debian:bookworm-slim (same Debian, same apt sources). It is made
# once with debootstrap and cached OUTSIDE the repo, so later runs pay only for the podman
# layer cache: $PERFGATE_CONTAINER_CACHE (default /var/cache/perfgate-container as root,
# else ~/.cache/perfgate-container) keeps the rootfs and containers.conf; podman's own
# storage keeps the imported base and the build layers.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ "$(id -u)" -eq 0 ]; then default_cache=/var/cache/perfgate-container; else default_cache="$HOME/.cache/perfgate-container"; fi
CACHE="${PERFGATE_CONTAINER_CACHE:-$default_cache}"
BASE_IMAGE="${PERFGATE_BASE_IMAGE:-localhost/perfgate-base:bookworm}"
IMAGE="${PERFGATE_IMAGE:-localhost/perfgate-action:dev}"
MIRROR="${PERFGATE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SECURITY_MIRROR="${PERFGATE_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
DEFAULT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

log() { printf 'container: %s\n' "$*" >&2; }

# crun and podman's default rlimits fail on this kernel; runc with no default ulimits works.
containers_conf() {
  local conf="$CACHE/containers.conf"
  if [ ! -f "$conf" ]; then
    mkdir -p "$CACHE"
    printf '[containers]\ndefault_ulimits = []\npids_limit = 0\n\n[engine]\nruntime = "runc"\n' > "$conf"
  fi
  printf '%s\n' "$conf"
}

debian_sources() {
  printf 'Types: deb\nURIs: %s\nSuites: bookworm bookworm-updates\nComponents: main\n' "$MIRROR"
  printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n'
  printf 'Types: deb\nURIs: %s\nSuites: bookworm-security\nComponents: main\n' "$SECURITY_MIRROR"
  printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
}

cached_rootfs() {
  local rootfs="$CACHE/rootfs-bookworm"
  if [ -f "$rootfs/.perfgate-complete" ]; then printf '%s\n' "$rootfs"; return; fi
  command -v debootstrap >/dev/null || { log "debootstrap is missing: run scripts/setup.sh --container"; exit 3; }
  rm -rf "$rootfs"
  mkdir -p "$CACHE"
  log "debootstrap bookworm into $rootfs (once; later builds reuse it)"
  debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >&2
  rm -f "$rootfs/etc/apt/sources.list"
  debian_sources > "$rootfs/etc/apt/sources.list.d/debian.sources"  # the same sources as debian:bookworm-slim
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb
  touch "$rootfs/.perfgate-complete"
  printf '%s\n' "$rootfs"
}

# A TLS-intercepting proxy (as on this project's CI machines) signs with a CA only the host
# trusts; the local base trusts the host's CAs too, so pip and `go install` work in the build.
# The published image never sees this: it is built FROM debian:bookworm-slim.
add_host_cas() {
  local rootfs="$1"
  mkdir -p "$rootfs/usr/local/share/ca-certificates" "$rootfs/etc/ssl/certs"
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
  fi
  if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
  fi
}

ensure_base() {
  if podman image exists "$BASE_IMAGE"; then printf '%s\n' "$BASE_IMAGE"; return; fi
  local rootfs; rootfs="$(cached_rootfs)"
  add_host_cas "$rootfs"
  log "importing $rootfs as $BASE_IMAGE"
  tar -C "$rootfs" --exclude=./.perfgate-complete -c . | podman import \
    --change "ENV PATH=$DEFAULT_PATH" \
    --change "ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt" \
    --change 'CMD ["bash"]' \
    - "$BASE_IMAGE" >/dev/null
  printf '%s\n' "$BASE_IMAGE"
}

build_image() {
  local base conf; base="$(ensure_base)"; conf="$(containers_conf)"
  log "building $IMAGE from $ROOT/Dockerfile (BASE_IMAGE=$base)"
  build() {  # chroot isolation: the default OCI isolation fails on this machine's hybrid cgroups
    CONTAINERS_CONF="$conf" podman build --isolation=chroot --layers --build-arg "BASE_IMAGE=$base" \
      -f "$ROOT/Dockerfile" "$@" "$ROOT" >&2
  }
  # The build stages get tags too, so pruning what each rebuild leaves behind keeps their
  # layers (ghz, the pinned Python dependencies) in the cache.
  build --target ghz -t "$IMAGE-ghz"
  build --target python -t "$IMAGE-python"
  build -t "$IMAGE"
  podman image prune -f >/dev/null
  printf '%s\n' "$IMAGE"
}

# docker's flags and podman's agree for what the Action calls (image inspect, pull, build, run).
docker_cli() {
  local conf; conf="$(containers_conf)"
  if [ "${1:-}" = build ]; then
    shift
    local base; base="$(ensure_base)"
    CONTAINERS_CONF="$conf" exec podman build --isolation=chroot --layers --build-arg "BASE_IMAGE=$base" "$@"
  fi
  CONTAINERS_CONF="$conf" exec podman --runtime runc "$@"
}

case "${1:-}" in
  base) ensure_base ;;
  build) build_image ;;
  conf) containers_conf ;;
  docker) shift; docker_cli "$@" ;;
  *) log "usage: $0 base|build|conf|docker"; exit 2 ;;
esac
