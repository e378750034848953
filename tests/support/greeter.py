"""The example service on free loopback ports, and small perfgate.yml files that load it."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from support.paths import GREETER

CALL = "greeter.Greeter/SayHello"
DATA = {"name": "perfgate", "items": 64}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout_s} s")


@dataclass(frozen=True)
class Greeter:
    grpc_port: int
    pprof_port: int
    pid: int

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def pprof_url(self) -> str:
        return f"http://127.0.0.1:{self.pprof_port}"


def greeter_argv(grpc_port: int, pprof_port: int, *knobs: str) -> list[str]:
    return [str(GREETER), "-grpc-addr", f"127.0.0.1:{grpc_port}", "-pprof-addr", f"127.0.0.1:{pprof_port}", *knobs]


def base_config(address: str, *, pprof_url: str | None = None, **sections: dict) -> dict:
    """A small, fast perfgate.yml as a dict; sections override or extend the defaults given here."""
    config: dict = {
        "target": {"address": address, "call": CALL, "data": DATA},
        "load": {"concurrency": 4, "duration_s": 1.5, "warmup_s": 0.5, "repetitions": 3},
        "cpu": {"pprof_url": pprof_url} if pprof_url else {"enabled": False},
        "kernel": {"enabled": False},
    }
    for name, values in sections.items():
        config[name] = {**config.get(name, {}), **values} if isinstance(values, dict) else values
    return config


def write_config(folder: Path, config: dict) -> Path:
    path = folder / "perfgate.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path
