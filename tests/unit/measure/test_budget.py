"""measure/budget.py: the default flow's pairs and window length fit its minute of load, unless the user said."""

from __future__ import annotations

import pytest

from perfgate import capacity
from perfgate.ab import default_flow_load
from perfgate.config import load_config
from perfgate.measure.budget import LOAD_BUDGET_S, MIN_PAIRS, WINDOW_S, load_seconds


def config(*settings: str):
    return load_config(None, environ={}, set_args=list(settings), require_target=False)


def costs(cfg) -> dict[str, float]:
    fixed_s, per_pair_s = capacity.probe_seconds() if not cfg.load.rps else (0.0, 0.0)
    return {"fixed_s": fixed_s, "per_pair_s": per_pair_s}


@pytest.mark.parametrize("settings", [(), ("load.rps=500",), ("load.warmup_s=5",)])
def test_the_default_flow_fills_its_minute_with_as_many_pairs_as_fit(settings):
    cfg = config(*settings)
    load = default_flow_load(cfg)
    assert load.duration_s == WINDOW_S
    used = load_seconds(load, **costs(cfg))
    one_more = load_seconds(load.__class__(**{**load.__dict__, "repetitions": load.repetitions + 1}), **costs(cfg))
    assert used <= LOAD_BUDGET_S < one_more
    assert load.repetitions >= MIN_PAIRS


def test_what_the_user_set_is_kept():
    assert default_flow_load(config("load.repetitions=20")).repetitions == 20
    chosen = default_flow_load(config("load.duration_s=10"))
    assert chosen.duration_s == 10 and chosen.repetitions == MIN_PAIRS  # 10 s windows: fewer fit, never under the floor
    by_count = default_flow_load(config("load.total=5000"))
    assert by_count.total == 5000 and by_count.duration_s is None
    assert default_flow_load(config("load.total=5000", "load.repetitions=6")).repetitions == 6


def test_which_keys_were_set_does_not_change_what_a_record_says_it_measured():
    assert config().digest() == config("load.duration_s=5", "load.repetitions=5").digest()
    assert config().load.given == frozenset() and config("load.rps=10").load.given == {"rps"}
