"""The load-generator seam: what perfgate needs from the program that loads the service, and which one it uses.

A load generator is found once (`find`), says its version (stored in the record's environment), runs one
load window into a raw report file (`run` -> LoadSample, the OK calls' latencies written beside it), reads
such a report again (`parse`), probes whether a service is ready (`ready`, the gRPC health check), and says
whether it runs here (`check`, for `perfgate doctor`).
ghz (load/ghz.py) is the one implementation; docs/architecture.md "Adding a load generator" shows the steps.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from perfgate.errors import ConfigError, ToolError
from perfgate.load.sample import LoadSample, LoadWindow

if TYPE_CHECKING:
    import numpy as np


class GeneratorCrashed(ToolError):
    """The load generator itself crashed (not the target): the run may be retried."""


class LoadGenerator(Protocol):
    name: str  # as in `load.generator`

    def version(self) -> str: ...

    def run(self, target: Any, window: LoadWindow, output: Path, *, name: str,
            latencies_to: Path | None = None) -> LoadSample:
        """One load window against config.target (a TargetConfig); the raw report stays at `output`.
        Raises ToolError (GeneratorCrashed when the generator itself crashed)."""
        ...

    def parse(self, report: Path) -> tuple[LoadSample, np.ndarray]:
        """A raw report written by `run`: its LoadSample and the OK calls' latencies (ns)."""
        ...

    def ready(self, address: str) -> str | None:
        """None when the gRPC service at `address` answers its health check, else why not."""
        ...

    def check(self) -> tuple[bool, str]:
        """Whether it runs on this machine, and what `perfgate doctor` says about it."""
        ...


# load.generator name -> the module and class implementing it; the class's find(explicit binary or None)
# returns it or raises a ToolError saying how to install it. Named, not imported: config/keys.py reads the names.
GENERATORS: dict[str, tuple[str, str]] = {"ghz": ("perfgate.load.ghz", "Ghz")}


def find_generator(name: str = "ghz", explicit: str | None = None) -> LoadGenerator:
    if name not in GENERATORS:
        raise ConfigError(f"load.generator: {name!r} is not a load generator perfgate drives "
                          f"(one of: {', '.join(GENERATORS)})")
    module, cls = GENERATORS[name]
    return getattr(importlib.import_module(module), cls).find(explicit)
