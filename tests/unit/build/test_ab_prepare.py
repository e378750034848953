"""ab.prepare_run and friends without starting anything: placeholders filled, ports picked, a built A/B duet set up
from one service section, and what must not be configured by hand alongside it."""

from __future__ import annotations

import pytest

from perfgate.ab import build_plan, check_ab_config, duet_config, free_ports, prepare_run, side_config
from perfgate.build.manifest import Builds, BuiltSide
from perfgate.capacity import choose_rate
from perfgate.config import load_config
from perfgate.errors import ConfigError, ToolError

BUILT = {"service.build": "go build -o {output} .", "service.command": "{binary} -g {address} -p {pprof_address}"}


def config(**settings):
    values = {"target.call": "a.B/C", **settings}
    return load_config(None, environ={}, set_args=[f"{k}={v}" for k, v in values.items()])


def builds(tmp_path, *sides: str) -> Builds:
    for side in sides:
        (tmp_path / side).mkdir()
        binary = tmp_path / side / "service"
        binary.write_text("#!/bin/sh\n")
        binary.chmod(0o755)
    made = Builds(tmp_path, {side: BuiltSide(side, "main" if side == "base" else None, f"{side[0]}" * 40,
                                             f"{side}/service", 1.0) for side in sides})
    made.save()
    return made


def test_free_ports_are_distinct_loopback_ports():
    ports = free_ports(4)
    assert len(set(ports)) == 4 and all(1024 <= p <= 65535 for p in ports)


def test_side_config_fills_the_placeholders_and_points_target_and_pprof_at_the_picked_ports(tmp_path):
    base = config(**BUILT)
    side = side_config(base, tmp_path / "service", base.service, [50001, 50002])
    assert side.service.command == (str((tmp_path / "service").resolve()), "-g", "127.0.0.1:50001", "-p",
                                    "127.0.0.1:50002")
    assert side.target.address == "127.0.0.1:50001" and side.target.address_picked
    assert side.cpu.pprof_url == "http://127.0.0.1:50002"
    other = side_config(base, tmp_path / "service", base.service, [50003, 50004])
    assert side.digest() == other.digest()  # the ports perfgate picks are not part of what was measured


def test_other_braces_in_the_command_stay_as_they_are(tmp_path):
    base = config(**{**BUILT, "service.command": "['{binary}', -g, '{address}', -t, '{{.Name}}', '{port}']"})
    side = side_config(base, tmp_path / "service", base.service, [1, 2])
    assert side.service.command[3:] == ("-t", "{{.Name}}", "{port}")


def test_a_placeholder_yaml_read_as_a_mapping_gets_a_hint_to_quote_it():
    with pytest.raises(ConfigError, match="quote the command"):
        config(**{**BUILT, "service.command": "{binary}"})


def test_a_duet_config_runs_head_as_service_and_base_as_the_baseline_service_on_their_own_ports(tmp_path):
    made = builds(tmp_path, "base", "head")
    duet = duet_config(config(**BUILT), made)
    assert duet.compare.mode == "interleaved" and duet.compare.schedule == "duet"
    assert duet.compare.concurrent_builds and duet.load.rps == 0  # rps 0: perfgate finds the rate
    assert duet.service.command[0].endswith("head/service")
    assert duet.compare.baseline_service.command[0].endswith("base/service")
    addresses = {duet.target.address, duet.compare.baseline_address, duet.cpu.pprof_url,
                 duet.compare.baseline_pprof_url}
    assert len(addresses) == 4


def test_prepare_run_with_builds_of_both_sides_is_a_built_duet(tmp_path):
    made = builds(tmp_path, "base", "head")
    prepared = prepare_run(config(**BUILT), against=None, builds_dir=tmp_path, as_baseline=False, say=print)
    assert prepared.built == (made.sides["base"], made.sides["head"])
    assert prepared.config.compare.schedule == "duet"


def test_prepare_run_with_a_head_build_only_measures_it_alone(tmp_path):
    builds(tmp_path, "head")
    prepared = prepare_run(config(**BUILT), against=None, builds_dir=tmp_path, as_baseline=True, say=print)
    assert prepared.built is None and prepared.config.compare.mode == "baseline"
    assert prepared.config.service.command[0].endswith("head/service")


def test_without_a_build_the_addresses_are_still_picked():
    prepared = prepare_run(config(**{"service.command": "./svc --listen {address}"}), against=None,
                           builds_dir=None, as_baseline=False, say=print)
    assert prepared.config.service.command[-1] == prepared.config.target.address
    assert prepared.config.target.address.startswith("127.0.0.1:")


@pytest.mark.parametrize(("settings", "problem"), [
    ({"service.command": "./svc"}, "--against needs service.build"),
    ({}, "--against needs service.build"),
])
def test_against_without_a_build_is_a_usage_error(settings, problem):
    with pytest.raises(ConfigError, match=problem):
        prepare_run(config(**{"target.address": "127.0.0.1:1", **settings}), against="main", builds_dir=None,
                    as_baseline=False, say=print)


@pytest.mark.parametrize(("settings", "problem"), [
    ({"cpu.pprof_url": "http://127.0.0.1:6060", "service.command": "{binary} -g {address}"}, "cpu.pprof_url"),
    ({"service.command": "'{binary}'", "target.address": "127.0.0.1:1"}, r"use \{address\}"),
    ({"kernel.service_pids": "[1]"}, "kernel.service_pids"),
    ({"baseline.path": "old/"}, "baseline.path"),
    ({"compare.baseline_address": "127.0.0.1:2", "compare.mode": "interleaved",
      "compare.baseline_service.command": "./base"}, "compare.mode / compare.baseline_service"),
])
def test_what_a_built_duet_sets_up_itself_must_not_be_set_by_hand(settings, problem):
    with pytest.raises(ConfigError, match=problem):
        check_ab_config(config(**{**BUILT, **settings}), as_baseline=False)
    with pytest.raises(ConfigError, match="--baseline"):
        check_ab_config(config(**BUILT), as_baseline=True)


def test_a_dynamic_build_whose_loader_is_missing_cannot_run_here(tmp_path):
    made = builds(tmp_path, "head")
    side = made.sides["head"]
    missing = Builds(tmp_path, {"head": BuiltSide(side.side, None, None, side.binary, 1.0, "/lib/ld-nowhere.so.9")})
    missing.save()
    with pytest.raises(ToolError, match="needs /lib/ld-nowhere.so.9 to start") as caught:
        prepare_run(config(**BUILT), against=None, builds_dir=tmp_path, as_baseline=False, say=print)
    assert "CGO_ENABLED" in caught.value.hint


def test_build_plan_carries_the_build_keys():
    plan = build_plan(config(**BUILT, **{"service.build_env": "{CGO_ENABLED: '0'}", "service.build_timeout_s": 90,
                                         "service.pass_env": "[NPM_TOKEN]"}))
    assert plan.command == ("go", "build", "-o", "{output}", ".") and plan.timeout_s == 90
    assert dict(plan.env) == {"CGO_ENABLED": "0"} and plan.pass_env == ("NPM_TOKEN",)
    assert build_plan(config(**{"target.address": "127.0.0.1:1"})) is None


def test_the_rate_is_a_quarter_of_the_smaller_median_capacity_and_at_least_one():
    assert choose_rate([4000, 4100, 3900], [2000, 2100]) == 512
    assert choose_rate([3.0, 2.0], [9.0, 9.0]) == 1
