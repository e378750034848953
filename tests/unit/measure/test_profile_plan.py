"""measure/cpu.py: when a repetition's profiles run, and the count of requests its load waits for."""

from __future__ import annotations

import threading

import pytest

from perfgate.config import load_config
from perfgate.measure.cpu import ProfilePlan, RequestsSent, profile_plan


def plan(*settings: str):
    return profile_plan(load_config(None, environ={}, set_args=list(settings), require_target=False))


@pytest.mark.parametrize(("duration", "seconds"), [(4, 4), (4.5, 4), (1, 1), (10, 10)])
def test_by_default_the_profile_is_sent_before_the_load_and_covers_the_whole_window(duration, seconds):
    assert plan(f"load.duration_s={duration}") == ProfilePlan(0.0, seconds, lead=True)


def test_an_offset_puts_the_profile_inside_the_window_with_a_margin_at_both_ends():
    assert plan("load.duration_s=4", "cpu.start_offset_s=0.4") == ProfilePlan(0.4, 3, lead=False)
    assert plan("load.duration_s=10", "cpu.start_offset_s=0") == ProfilePlan(0.0, 10, lead=False)


@pytest.mark.parametrize(("settings", "says"), [
    (("load.duration_s=0.5",), "shorter than the 1 s a profile needs"),
    (("load.duration_s=2", "cpu.start_offset_s=0.6"), "use at least 2.2 s"),
])
def test_a_window_with_no_whole_second_to_profile_says_why(settings, says):
    reason = plan(*settings)
    assert isinstance(reason, str) and says in reason


def test_the_load_waits_until_every_expected_request_is_counted_down_once():
    sent = RequestsSent()
    assert sent.wait(0)  # nothing expected: no wait
    first, second = sent.expect(), sent.expect()
    assert not sent.wait(0)
    first()
    first()  # a second call (sent, then the thread's finally) does not count another request down
    assert not sent.wait(0)
    threading.Timer(0.05, second).start()
    assert sent.wait(5)
