"""How a duet spends its minute of load when the user did not say: the default flow's pairs and window length.

The default flow (built A/B, duet, automatic rate) gets LOAD_BUDGET_S of load per gate. What decides its verdicts
is the number of pairs: an unchanged PR PASSes only when every rule's one-sided bound clears its threshold, and the
bound's distance from the estimate shrinks as 1/sqrt(pairs) (docs/statistics.md, "A duet within a time budget").
So the default is as many pairs of WINDOW_S windows as fit once the warm-up and the capacity probes (each build
alone, so lost to the comparison) have had their time. WINDOW_S = 4 s: within a window the noise that differs
between the builds averages like independent events, so shorter windows buy little precision, while each window
pays a fixed cost (ghz's start, the capacity probe beside each pair, pprof's whole seconds). A user who sets
load.repetitions or load.duration_s gets exactly that.
"""

from __future__ import annotations

import math
from dataclasses import replace

from perfgate.config import LoadConfig

LOAD_BUDGET_S = 60.0
WINDOW_S = 4.0
MIN_PAIRS = 7  # the signed-rank floor at Holm over 4 fail rules (the default gates); fewer are compared unpaired


def duet_load(load: LoadConfig, *, fixed_s: float, per_pair_s: float) -> LoadConfig:
    """`load` with the default flow's repetitions and window length where the user set neither.

    fixed_s: load time before the first pair besides the warm-up (the probes that set the rate); per_pair_s:
    load time per pair besides its window (one capacity probe per build). At least MIN_PAIRS pairs, even if
    that passes the budget.
    """
    if load.total is not None or "duration_s" in load.given:
        window = load.duration_s
    else:
        window = WINDOW_S
        load = replace(load, duration_s=WINDOW_S)
    if "repetitions" in load.given or window is None:
        return load
    room = LOAD_BUDGET_S - load.warmup_s - fixed_s
    pairs = math.floor(room / (window + per_pair_s) + 1e-9)
    return replace(load, repetitions=max(MIN_PAIRS, pairs))


def load_seconds(load: LoadConfig, *, fixed_s: float, per_pair_s: float) -> float:
    """The load time a duet with these settings takes (what the budget counts)."""
    window = load.duration_s or 0.0
    return load.warmup_s + fixed_s + load.repetitions * (window + per_pair_s)
