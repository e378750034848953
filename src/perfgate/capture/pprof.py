"""Fetching profiles from a service's net/http/pprof over HTTP: nothing else (the profile package parses them).

fetch_profile_body is the one HTTP fetch (CPU profiles, and the delta and snapshot profiles of
capture/layers.py): one overall deadline, a size bound, and every failure a ProfileUnavailable naming the URL.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit

from perfgate.errors import ToolError
from perfgate.profile.aggregate import UnreadableProfile
from perfgate.profile.parse import MAX_PROFILE_BYTES, mib, parse_bytes

if TYPE_CHECKING:
    import http.client
    import socket

PROFILE_PATH = "/debug/pprof/profile"
CONNECT_TIMEOUT_S = 5.0
ERROR_BODY_CHARS = 300


class ProfileUnavailable(ToolError):
    """The service did not hand over a profile (CPU by default); `reason` says why, for the report."""

    def __init__(self, reason: str, hint: str | None = None, *, kind: str = "cpu") -> None:
        self.reason = reason
        self.kind = kind
        super().__init__(f"{kind} profile unavailable: {reason}", hint)


def profile_url(pprof_url: str, name: str = "profile") -> str:
    """{pprof_url}/debug/pprof/NAME (the CPU profile by default); a pprof_url that already ends in
    /debug/pprof or /debug/pprof/profile is taken as the service's root."""
    base = pprof_url.rstrip("/")
    for suffix in (PROFILE_PATH, "/debug/pprof"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    return f"{base}/debug/pprof/{name}"


def default_fetch_timeout_s(seconds: int) -> float:
    """pprof waits seconds * 1.5; short windows on a busy CI runner get at least 5 s of slack."""
    return seconds + max(seconds / 2, 5.0)


def fetch_cpu_profile(pprof_url: str, seconds: int, *, timeout_s: float | None = None,
                      on_sent: Callable[[], None] | None = None) -> bytes:
    """GET {pprof_url}/debug/pprof/profile?seconds=N and return the body once it parses as a profile.

    Blocks for about `seconds` (the server profiles for that long before it answers). The
    caller must not overlap two requests to one process: Go then answers 500 "cpu profiling
    already in use". Every failure is a ProfileUnavailable whose reason names the URL.
    on_sent: called once the request is on the wire (the server starts profiling when it reads it).
    """
    body = fetch_profile_body(profile_url(pprof_url), seconds, timeout_s=timeout_s, on_sent=on_sent)
    try:
        parse_bytes(body, profile_url(pprof_url))
    except UnreadableProfile as bad:
        raise ProfileUnavailable(f"{profile_url(pprof_url)} returned a body that is not a CPU profile: {bad}") from None
    return body


def fetch_profile_body(url: str, seconds: int | None, *, timeout_s: float | None = None, kind: str = "cpu",
                       params: Mapping[str, str] | None = None, on_sent: Callable[[], None] | None = None) -> bytes:
    """GET a pprof endpoint (with ?seconds=N when given: net/http/pprof then answers after N seconds) and
    return its body, at most MAX_PROFILE_BYTES. Every failure is a ProfileUnavailable of `kind` naming the URL.

    One deadline bounds the whole request (connect, the wait for the answer, every read): each socket
    operation may wait only for what is left of it, so a server that trickles bytes cannot stretch it.
    """
    if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 1):
        raise ValueError(f"seconds must be a positive integer, got {seconds!r}")
    wait_s = seconds or 0
    limit_s = default_fetch_timeout_s(wait_s) if timeout_s is None else float(timeout_s)
    if limit_s <= wait_s:
        raise ValueError(f"timeout_s ({limit_s}) must be longer than the profile ({wait_s} s)")
    query = {**(params or {}), **({"seconds": str(seconds)} if seconds is not None else {})}

    def unavailable(reason: str) -> ProfileUnavailable:
        return ProfileUnavailable(reason, kind=kind)

    return _Request(url, query, limit_s, wait_s, unavailable).body(on_sent)


class _Request:
    """One GET with http.client under an overall deadline (requests cannot shorten a read mid-stream)."""

    def __init__(self, url: str, query: Mapping[str, str], limit_s: float, wait_s: int, unavailable) -> None:
        import http.client  # here: comparing records (no fetch) need not load the HTTP and TLS modules

        self.url, self.limit_s, self.wait_s, self.unavailable = url, limit_s, wait_s, unavailable
        self.deadline = time.monotonic() + limit_s
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise unavailable(f"{url}: expected an http:// or https:// URL")
        self.target = (parts.path or "/") + "?" + urlencode({**dict(parse_qsl(parts.query)), **query})
        connection = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        self.sock: socket.socket | None = None
        self.response: http.client.HTTPResponse | None = None
        try:
            self.connection = connection(parts.hostname, parts.port, timeout=min(CONNECT_TIMEOUT_S, limit_s))
        except ValueError as error:  # a port that is not a number
            raise unavailable(f"{url}: {error}") from None

    def body(self, on_sent: Callable[[], None] | None = None) -> bytes:
        import http.client

        try:
            self._connect()
            self.connection.request("GET", self.target, headers={"Accept-Encoding": "identity"})
            if on_sent is not None:
                on_sent()
            response = self.response = self._within(self.connection.getresponse)
            if response.status != 200:
                raise self.unavailable(f"{self.url} returned {response.status}: {self._error_text(response)}")
            return self._read(response)
        except TimeoutError:
            raise self.unavailable(self._late()) from None
        except (OSError, http.client.HTTPException) as error:
            raise self.unavailable(f"request to {self.url} failed: {_os_reason(error)}") from None
        finally:
            self._hang_up()

    def _hang_up(self) -> None:
        """Close the response and the socket now: on a closing answer http.client has already let go of both, and
        a server still sending (a missed deadline) must not keep the connection until they are collected."""
        if self.response is not None:
            self.response.close()
        self.connection.close()
        if self.sock is not None:
            self.sock.close()

    def _connect(self) -> None:
        try:
            self.connection.connect()
            self.sock = self.connection.sock  # kept: http.client drops its own once a closing answer arrives
        except TimeoutError:
            raise self.unavailable(f"cannot connect to {self.url}: no answer within {CONNECT_TIMEOUT_S:.0f} s") \
                from None
        except OSError as error:
            raise self.unavailable(f"cannot connect to {self.url}: {_os_reason(error)}") from None

    def _within(self, operation):
        """Run one blocking socket operation with what is left of the deadline as its timeout."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        self.sock.settimeout(left)
        return operation()

    def _read(self, response: http.client.HTTPResponse) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while chunk := self._within(lambda: response.read1(256 * 1024)):
            size += len(chunk)
            if size > MAX_PROFILE_BYTES:
                raise self.unavailable(f"{self.url} sent more than {mib(MAX_PROFILE_BYTES)}, too much for a profile")
            chunks.append(chunk)
        return b"".join(chunks)

    def _late(self) -> str:
        asked = f" (asked for {self.wait_s} s of profiling)" if self.wait_s else ""
        return f"{self.url} sent no complete profile within {self.limit_s:.1f} s{asked}"

    def _error_text(self, response: http.client.HTTPResponse) -> str:
        import http.client

        try:
            raw = self._within(lambda: response.read(4096)) or b""
        except (OSError, http.client.HTTPException):
            raw = b""
        text = " ".join(raw.decode("utf-8", "replace").split())
        if len(text) > ERROR_BODY_CHARS:
            text = text[:ERROR_BODY_CHARS] + "…"
        return text or response.reason or "no body"


def _os_reason(error: BaseException) -> str:
    """The short reason ("Connection refused"): the OS error's text, else the exception's."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    text = str(error) or type(error).__name__
    match = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    if match:
        return match.group(1).strip()
    return text if len(text) <= ERROR_BODY_CHARS else text[:ERROR_BODY_CHARS] + "…"
