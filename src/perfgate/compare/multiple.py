"""Multiple-testing corrections: Holm (family-wise error) and Benjamini-Hochberg (false discovery rate),
the latter optionally weighted (Genovese, Roeder & Wasserman 2006: p_i / w_i in place of p_i, the weights fixed
before the data and averaging 1, which keeps the false discovery rate at its level).

Plain Python over a handful to a few hundred p-values, so the report can rank what moved without loading
numpy or scipy (the gate's tests import those where they run).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal


def adjust_pvalues(pvalues: Sequence[float], method: Literal["holm", "bh"] = "holm",
                   weights: Sequence[float] | None = None) -> list[float]:
    """Adjusted p-values, in input order: Holm (family-wise error) or Benjamini-Hochberg (FDR); weights (BH only,
    positive, averaging 1) divide each p-value first."""
    if method not in ("holm", "bh"):
        raise ValueError(f"unknown adjustment method {method!r}; use 'holm' or 'bh'")
    try:
        p = [float(v) for v in pvalues]
    except TypeError:
        raise ValueError("pvalues must be a flat sequence") from None
    if any(math.isnan(v) or not 0 <= v <= 1 for v in p):
        raise ValueError(f"p-values must be within [0, 1], got {list(pvalues)}")
    m = len(p)
    if weights is not None:
        p = [min(1.0, v / w) for v, w in zip(p, _checked_weights(weights, m, method), strict=True)]
    order = sorted(range(m), key=p.__getitem__)  # stable, like numpy's argsort(kind="stable")
    adjusted = [0.0] * m
    if method == "holm":
        # step-down: the i-th smallest (0-based) is multiplied by m - i; adjusted values never decrease
        running = 0.0
        for i, index in enumerate(order):
            running = max(running, min(1.0, (m - i) * p[index]))
            adjusted[index] = running
    else:
        # step-up: the i-th smallest (1-based) is multiplied by m / i; adjusted values never decrease
        running = math.inf
        for i in range(m - 1, -1, -1):
            index = order[i]
            running = min(running, p[index] * m / (i + 1))
            adjusted[index] = min(1.0, running)
    return adjusted


def _checked_weights(weights: Sequence[float], m: int, method: str) -> list[float]:
    w = [float(v) for v in weights]
    if method != "bh":
        raise ValueError("weights are for method 'bh' only")
    if len(w) != m or any(not math.isfinite(v) or v <= 0 for v in w):
        raise ValueError(f"weights must be {m} positive numbers, got {list(weights)}")
    if m and abs(sum(w) / m - 1) > 1e-9:
        raise ValueError(f"weights must average 1 (they average {sum(w) / m:.6g})")
    return w
