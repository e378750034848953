"""Pushgateway export: the exposition text, and real pushes to a real prometheus-pushgateway read back."""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import requests
from support.greeter import free_port
from support.report_fixtures import fail_verdict, inconclusive_verdict, pass_verdict, rule

from perfgate.errors import ToolError
from perfgate.procs import stop_process_group
from perfgate.report.pushgateway import ALLOWED_LABELS, exposition, grouping_path, push_metrics

PUSHGATEWAY = Path("/usr/bin/prometheus-pushgateway")
SAMPLE_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
LABEL_PAIR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')
BRANCH = "feature/faster-<sort>|@team"


# ---------------------------------------------------------------- reading the exposition format back
def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


def parse_samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = SAMPLE_LINE.match(line)
        assert match, f"not a sample line: {line!r}"
        name, labels_text, value = match.groups()
        labels = {}
        if labels_text:
            pairs = LABEL_PAIR.findall(labels_text)
            assert "".join(f'{k}="{v}"{sep}' for k, v, sep in pairs) == labels_text, line
            labels = {k: _unescape(v) for k, v, _ in pairs}
        samples.append((name, labels, float(value)))
    return samples


def value_of(samples, name: str, **labels: str) -> float:
    found = [v for n, ls, v in samples if n == name and all(ls.get(k) == want for k, want in labels.items())]
    assert len(found) == 1, (name, labels, found)
    return found[0]


# ---------------------------------------------------------------- the text
def test_exposition_is_valid_text_format_0_0_4():
    text = exposition(fail_verdict())
    assert text.endswith("\n") and not text.endswith("\n\n")
    seen_help, seen_type = set(), set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name = line.split(" ")[2]
            assert name not in seen_help
            seen_help.add(name)
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind == "gauge" and name in seen_help and name not in seen_type
            seen_type.add(name)
        else:
            name = SAMPLE_LINE.match(line).group(1)
            assert name in seen_type, f"sample before its TYPE: {line}"
    samples = parse_samples(text)  # SAMPLE_LINE allows exactly one value after the labels: no timestamps
    assert {k for _, labels, _ in samples for k in labels} <= ALLOWED_LABELS


def test_headline_values_are_in_base_units():
    verdict = fail_verdict()
    samples = parse_samples(exposition(verdict))
    p95 = next(m for m in verdict.metrics if m.name == "latency.p95")
    p95_seconds = (p95.baseline_median / 1e3, p95.candidate_median / 1e3)
    assert value_of(samples, "perfgate_baseline_latency_p95_seconds") == pytest.approx(p95_seconds[0])
    assert value_of(samples, "perfgate_candidate_latency_p95_seconds") == pytest.approx(p95_seconds[1])
    cpu = next(m for m in verdict.metrics if m.name == "cpu_per_request")
    assert value_of(samples, "perfgate_candidate_cpu_seconds_per_request") == pytest.approx(
        cpu.candidate_median / 1e6)
    assert value_of(samples, "perfgate_candidate_runq_latency_p99_seconds") == pytest.approx(61.5e-6)
    assert value_of(samples, "perfgate_baseline_requests_per_second") == pytest.approx(5107.5)
    assert value_of(samples, "perfgate_candidate_error_ratio") == 0.0
    assert value_of(samples, "perfgate_verdict", verdict="FAIL") == 1.0
    assert value_of(samples, "perfgate_verdict", verdict="PASS") == 0.0
    assert value_of(samples, "perfgate_verdict_code") == 3.0
    assert value_of(samples, "perfgate_exit_code") == 1.0
    assert value_of(samples, "perfgate_rule_outcome_code", rule="latency.p99", metric="latency.p99") == 1.0


def test_no_baseline_exports_the_candidate_from_its_summary():
    verdict = replace(pass_verdict(), baseline=None, metrics=(), rules=())
    samples = parse_samples(exposition(verdict))
    assert value_of(samples, "perfgate_candidate_latency_p95_seconds") == pytest.approx(0.010085)
    assert not [n for n, _, _ in samples if n.startswith("perfgate_baseline_")]
    assert value_of(samples, "perfgate_verdict", verdict="PASS") == 1.0


def test_label_values_are_escaped():
    hostile = rule('a"b\\c\nd', None, "FAIL", "x", "y")
    text = exposition(replace(inconclusive_verdict(), rules=(hostile,)))
    assert 'rule="a\\"b\\\\c\\nd"' in text
    assert value_of(parse_samples(text), "perfgate_rule_outcome_code", rule='a"b\\c\nd') == 3.0


def test_grouping_key_path_uses_base64_for_slashes_and_empty_values():
    assert grouping_path("perfgate") == "/metrics/job/perfgate"
    assert grouping_path("perf gate", instance="runner-1") == "/metrics/job/perf%20gate/instance/runner-1"
    assert grouping_path("perfgate", branch="feature/x") == "/metrics/job/perfgate/branch@base64/ZmVhdHVyZS94"
    assert grouping_path("a/b", instance="") == "/metrics/job@base64/YS9i/instance@base64/="
    with pytest.raises(ValueError):
        grouping_path("")


# ---------------------------------------------------------------- a real Pushgateway
@contextlib.contextmanager
def running_pushgateway(folder: Path) -> Iterator[str]:
    """A real Pushgateway on a free loopback port, metrics in memory only; stopped and reaped after."""
    if not PUSHGATEWAY.exists():
        pytest.fail(f"{PUSHGATEWAY} missing: run `scripts/setup.sh --system` (make test does)")
    port = free_port()
    log = folder / "pushgateway.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([str(PUSHGATEWAY), f"--web.listen-address=127.0.0.1:{port}",  # noqa: S603
                                    "--persistence.file=", "--log.level=warn"],
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process, log)
        yield url
    finally:
        stop_process_group(process)


@pytest.fixture(scope="module")
def pushgateway(tmp_path_factory) -> Iterator[str]:
    with running_pushgateway(tmp_path_factory.mktemp("pushgateway")) as url:
        yield url


def _wait_ready(url: str, process: subprocess.Popen, log: Path, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"pushgateway exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            if requests.get(f"{url}/-/ready", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    pytest.fail(f"pushgateway not ready after {timeout_s} s: {log.read_text()[-2000:]}")


def _scrape(url: str):
    response = requests.get(f"{url}/metrics", timeout=5)
    response.raise_for_status()
    return parse_samples(response.text)


def test_push_and_read_back_from_the_real_gateway(pushgateway):
    verdict = fail_verdict()
    shown = push_metrics(verdict, url=pushgateway, job="perfgate-test", instance="runner-1", branch=BRANCH)
    assert shown.startswith(f"{pushgateway}/metrics/job/perfgate-test/instance/runner-1/branch@base64/")
    samples = _scrape(pushgateway)
    group = {"job": "perfgate-test", "instance": "runner-1", "branch": BRANCH}
    assert value_of(samples, "perfgate_verdict", verdict="FAIL", **group) == 1.0
    assert value_of(samples, "perfgate_verdict", verdict="INCONCLUSIVE", **group) == 0.0
    p95 = next(m for m in verdict.metrics if m.name == "latency.p95")
    assert value_of(samples, "perfgate_candidate_latency_p95_seconds", **group) == pytest.approx(
        p95.candidate_median / 1e3)
    assert value_of(samples, "perfgate_rule_outcome_code", rule="cpu_per_request", **group) == 3.0
    assert value_of(samples, "push_failure_time_seconds", **group) == 0.0
    assert value_of(samples, "push_time_seconds", **group) > 0


def test_a_second_push_replaces_the_group_and_leaves_other_groups_alone(pushgateway):
    push_metrics(fail_verdict(), url=pushgateway, job="perfgate-replace", branch="main")
    push_metrics(fail_verdict(), url=pushgateway, job="perfgate-replace", branch="release/1.x")
    push_metrics(pass_verdict(), url=pushgateway + "/", job="perfgate-replace", branch="main")
    samples = _scrape(pushgateway)
    main = {"job": "perfgate-replace", "branch": "main"}
    assert value_of(samples, "perfgate_verdict", verdict="PASS", **main) == 1.0
    assert value_of(samples, "perfgate_verdict", verdict="FAIL", **main) == 0.0
    rules_on_main = [labels["rule"] for name, labels, _ in samples
                     if name == "perfgate_rule_outcome_code" and labels.items() >= main.items()]
    assert sorted(rules_on_main) == sorted(r.rule for r in pass_verdict().rules), "PUT replaced the group"
    release = {"job": "perfgate-replace", "branch": "release/1.x"}
    assert value_of(samples, "perfgate_verdict", verdict="FAIL", **release) == 1.0


def test_hostile_label_values_survive_the_round_trip(pushgateway):
    hostile = rule('lat"ency\\p95\nx', None, "WARN", "x", "y")
    verdict = replace(inconclusive_verdict(), rules=(hostile,))
    push_metrics(verdict, url=pushgateway, job="perfgate-hostile", instance="")
    samples = _scrape(pushgateway)
    labels = {"job": "perfgate-hostile", "rule": 'lat"ency\\p95\nx'}
    assert value_of(samples, "perfgate_rule_outcome_code", **labels) == 1.0


def test_a_gateway_answering_an_error_is_a_tool_error(pushgateway):
    with pytest.raises(ToolError, match=r"rejected the metrics: HTTP 404") as caught:
        push_metrics(pass_verdict(), url=f"{pushgateway}/not-a-prefix", job="perfgate")
    assert "the gate's verdict is not affected" in str(caught.value)


def test_a_type_clash_with_another_group_is_reported_with_the_gateway_s_message(tmp_path):
    with running_pushgateway(tmp_path) as url:
        clash = "# TYPE perfgate_exit_code counter\nperfgate_exit_code 1\n"
        assert requests.put(f"{url}/metrics/job/other-tool", data=clash, timeout=5).status_code == 200
        with pytest.raises(ToolError, match=r"HTTP 400: pushed metrics are invalid") as caught:
            push_metrics(pass_verdict(), url=url, job="perfgate")
    assert "another type" in str(caught.value)


def test_an_unreachable_gateway_is_a_tool_error_without_the_password():
    port = free_port()
    with pytest.raises(ToolError, match="could not push metrics to the Pushgateway") as caught:
        push_metrics(pass_verdict(), url=f"http://ci:s3cret@127.0.0.1:{port}", job="perfgate", timeout_s=2)
    assert "s3cret" not in str(caught.value) and f"***@127.0.0.1:{port}" in str(caught.value)
    assert "ConnectionError" in str(caught.value)


def test_a_gateway_that_never_answers_times_out():
    with socket.socket() as server:  # accepts connections (kernel backlog) but never replies
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(ToolError, match="ReadTimeout"):
            push_metrics(pass_verdict(), url=f"http://127.0.0.1:{port}", job="perfgate", timeout_s=0.5)
        assert time.monotonic() - started < 10
