"""Import the compare and report stages while the warm-up runs, so the gate does not pay for them after the
last window (scipy and matplotlib cost ~1 s of CPU to import).

The thread starts before the warm-up and is joined before the first measured window: nothing of it runs inside
a window, where it would take CPU from the service being measured. An import that fails here fails again,
with its message, where the gate imports the module itself.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Sequence

# The gate's modules import scipy and matplotlib only where a test runs or a plot is drawn: those are named
# here so that their import cost is paid during the warm-up too.
GATE_MODULES = ("perfgate.compare.inputs", "perfgate.gate", "scipy.stats", "perfgate.publish",
                "perfgate.report.html", "perfgate.report.markdown", "perfgate.report.flamegraph")
PLOT_MODULES = ("perfgate.report.plots", "matplotlib.figure", "matplotlib.backends.backend_agg")


def gate_modules(*, plots: bool) -> tuple[str, ...]:
    """What a run that compares imports after its last window: with the plotting modules when it draws plots."""
    return GATE_MODULES + (PLOT_MODULES if plots else ())


class Preload:
    def __init__(self, modules: Sequence[str] = GATE_MODULES) -> None:
        self.modules = tuple(modules)
        self.thread = threading.Thread(target=self._import_all, name="perfgate-preload", daemon=True)

    def start(self) -> Preload:
        self.thread.start()
        return self

    def _import_all(self) -> None:
        for module in self.modules:
            try:
                importlib.import_module(module)
            except Exception:  # noqa: BLE001, S112 - the gate's own import reports it
                continue

    def join(self) -> None:
        """Wait for the imports: called after the warm-up, before the first window."""
        if self.thread.is_alive() or self.thread.ident is not None:
            self.thread.join()
