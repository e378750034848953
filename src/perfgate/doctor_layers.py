"""`perfgate doctor`'s entries for the layers below the CPU: does the service's net/http/pprof serve each
profile perfgate fetches in a load window, and is its profiling rate on? One second of each delta profile,
fetched at once, the way a repetition does (capture/layers.py); urllib, so doctor starts without requests."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from perfgate.capture.layers import BLOCK, DELTA_KINDS, GOROUTINE, MUTEX, LayerKind, parse_layer, summarize
from perfgate.capture.pprof import profile_url
from perfgate.errors import ProfileError
from perfgate.profile.parse import MAX_PROFILE_BYTES

DELTA_SECONDS = 1
TIMEOUT_S = DELTA_SECONDS + 5.0
GOROUTINES = "goroutines"


def check_layers(pprof_url: str | None, wanted: tuple[str, ...], *, why_not: str) -> dict[str, tuple[bool, str]]:
    """(available, why) per wanted layer, in the config's order of layer names."""
    if pprof_url is None:
        return {name: (False, f"needs the CPU profile's endpoint: {why_not}") for name in wanted}
    kinds = [kind for name, kind in DELTA_KINDS.items() if name in wanted]
    with ThreadPoolExecutor(max_workers=max(len(kinds), 1)) as pool:
        futures = {kind.name: pool.submit(_delta_status, pprof_url, kind) for kind in kinds}
    statuses = {name: future.result() for name, future in futures.items()}
    if GOROUTINES in wanted:
        statuses[GOROUTINES] = _goroutine_status(pprof_url)
    return {name: statuses[name] for name in (*DELTA_KINDS, GOROUTINES) if name in statuses}


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:  # noqa: S310 - http(s) only, checked by check_pprof
        return response.read(MAX_PROFILE_BYTES + 1)


def _failure(url: str, error: Exception) -> str:
    if isinstance(error, urllib.error.HTTPError):
        body = error.read(300).decode("utf-8", "replace").strip()
        return f"GET {url} answered HTTP {error.code}: {' '.join(body.split())}"
    if isinstance(error, ProfileError):
        return f"GET {url} did not answer with a profile: {error.message}"
    return f"GET {url} failed: {type(error).__name__}: {error}"


def _delta_status(pprof_url: str, kind: LayerKind) -> tuple[bool, str]:
    url = f"{profile_url(pprof_url, kind.name)}?seconds={DELTA_SECONDS}"
    try:
        body = _get(url)
        summary = summarize(body, kind, name=url)
    except (urllib.error.URLError, OSError, ValueError, ProfileError) as error:
        return False, _failure(url, error)
    if not summary.duration_ns:
        return False, f"GET {url} sent the cumulative profile: this net/http/pprof serves no delta profiles"
    if kind is BLOCK and summary.rate_off:
        return False, f"block profiling is off in the service: {kind.rate_hint}"
    if kind is MUTEX:
        period = _mutex_period(pprof_url)
        if period == 0:
            return False, f"mutex profiling is off in the service (sampling period=0): {kind.rate_hint}"
        rate = f", sampling period {period}" if period else ""
        return True, f"{url} serves delta profiles{rate}"
    return True, f"{url} serves delta profiles"


def _mutex_period(pprof_url: str) -> int | None:
    try:
        text = _get(f"{profile_url(pprof_url, MUTEX.name)}?debug=1")
    except (urllib.error.URLError, OSError, ValueError):
        return None
    match = re.search(rb"^sampling period=(\d+)$", text[:4096], re.MULTILINE)
    return int(match.group(1)) if match else None


def _goroutine_status(pprof_url: str) -> tuple[bool, str]:
    url = profile_url(pprof_url, GOROUTINE.name)
    try:
        count = parse_layer(_get(url), GOROUTINE, name=url).total
    except (urllib.error.URLError, OSError, ValueError, ProfileError) as error:
        return False, _failure(url, error)
    return True, f"{url} answers: {count} goroutines now"
