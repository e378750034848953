"""Find a service's net/http/pprof endpoint and the command line it was started with.

Only the gRPC address's own host is probed, on a short fixed list of ports, each with a short timeout:
a missing endpoint costs a few connection refusals, not minutes.
"""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass

from perfgate import placeholders
from perfgate.procs import is_secret_name

PROBE_TIMEOUT_S = 0.5
MAX_BODY = 64 << 10
MAX_ARGS = 64
PPROF_INDEX = "/debug/pprof/"
COMMON_PORTS = (6060, 6061, 8080, 8081, 9090, 9091)  # net/http/pprof's documented 6060 first
REDACTED = "REDACTED"
HOST_PORT = re.compile(r"^(?:[A-Za-z0-9.-]*|\[[0-9A-Fa-f:.]*\]):(?P<port>[0-9]{1,5})$")  # 127.0.0.1:50051, :50051


@dataclass(frozen=True)
class Pprof:
    url: str
    tried: tuple[str, ...]  # every URL probed, in order


def candidate_ports(grpc_port: int) -> tuple[int, ...]:
    """The common debug ports, then the ports beside the gRPC one (services often put HTTP next to it)."""
    near = (grpc_port + 1, grpc_port - 1, grpc_port + 1000)
    ports = [*COMMON_PORTS, *(p for p in near if 0 < p < 65536)]
    return tuple(dict.fromkeys(p for p in ports if p != grpc_port))


def find_pprof(host: str, grpc_port: int) -> Pprof | None:
    tried = []
    for port in candidate_ports(grpc_port):
        base = f"http://{_url_host(host)}:{port}"
        tried.append(base + PPROF_INDEX)
        if _is_pprof_index(base + PPROF_INDEX):
            return Pprof(base, tuple(tried))
    return None


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _get(url: str) -> bytes | None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy
    try:
        with opener.open(url, timeout=PROBE_TIMEOUT_S) as response:
            return response.read(MAX_BODY) if response.status == 200 else None
    except (OSError, ValueError, urllib.error.URLError):
        return None


def _is_pprof_index(url: str) -> bool:
    body = _get(url)
    return body is not None and b"/debug/pprof/" in body and b"profile" in body and b"goroutine" in body


@dataclass(frozen=True)
class Cmdline:
    argv: tuple[str, ...]
    redacted: tuple[str, ...]  # flags whose values were replaced because their names look secret


def read_cmdline(pprof_url: str) -> Cmdline | None:
    """/debug/pprof/cmdline: the running process's argv, NUL-separated. Values of secret-looking flags
    (token, password, key, ...) are replaced: this ends up in a file the user commits."""
    body = _get(pprof_url.rstrip("/") + "/debug/pprof/cmdline")
    if not body:
        return None
    argv = body.decode("utf-8", "replace").split("\0")[:MAX_ARGS]
    if not argv[0] or not all(arg.isprintable() for arg in argv):
        return None
    return redact(argv)


def redact(argv: list[str]) -> Cmdline:
    out, redacted = [argv[0]], []
    for i, arg in enumerate(argv[1:], start=1):
        flag, sep, _ = arg.partition("=")
        if arg.startswith("-") and sep and is_secret_name(flag.lstrip("-").replace("-", "_")):
            out.append(f"{flag}={REDACTED}")
            redacted.append(flag)
        elif not arg.startswith("-") and _secret_flag(argv[i - 1]):
            out.append(REDACTED)
            redacted.append(argv[i - 1])
        else:
            out.append(arg)
    return Cmdline(tuple(out), tuple(redacted))


def _secret_flag(previous: str) -> bool:
    return previous.startswith("-") and "=" not in previous and is_secret_name(previous.lstrip("-").replace("-", "_"))


def with_placeholders(cmdline: Cmdline, ports: Mapping[int, str]) -> tuple[tuple[str, ...], frozenset[str]]:
    """The command line as service.command for a build perfgate starts: {binary} for the program, and each
    host:PORT value (`-addr 127.0.0.1:50051`, `--addr=:50051`) whose port is in `ports` replaced by that port's
    placeholder, so perfgate can start two builds at once on ports it picks. Also: the placeholders used."""
    argv, used = [placeholders.BINARY], set()
    for arg in cmdline.argv[1:]:
        flag, sep, value = arg.partition("=") if arg.startswith("-") else ("", "", arg)
        match = HOST_PORT.match(value)
        placeholder = ports.get(int(match.group("port"))) if match else None
        if placeholder is None:
            argv.append(arg)
            continue
        argv.append(f"{flag}{sep}{placeholder}")
        used.add(placeholder)
    return tuple(argv), frozenset(used)
