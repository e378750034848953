"""The starter perfgate.yml and PR workflow that `perfgate init` writes, as text with comments.

Built A/B (README's first example) when init can say how to build the service and the running service's
command line names its gRPC address as a flag: service.build with {output}, service.command with {binary},
{address} (and {pprof_address}), and a PR workflow of one job: the Action builds the base and the head and
perfgate runs both side by side. Otherwise the baseline-artifact flow: a push job records a baseline, the PR
job measures a service the workflow started and compares with it; the notes say what to change for A/B.

Every value that came from the service (its methods, its command line) is written as a JSON scalar or
flow collection (valid YAML, nothing to escape) and only after it passed the checks of reflect/probe;
comments hold only text of ours and such checked names. The workflow gets nothing from the service.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any

from perfgate import placeholders, release
from perfgate.config import DEFAULT_GATES, GateRule
from perfgate.starter.gobuild import GoBuild
from perfgate.starter.probe import Cmdline, with_placeholders
from perfgate.starter.reflect import Method

# The same pins as examples/workflows (a test checks they agree).
CHECKOUT = "actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1"
SETUP_GO = "actions/setup-go@b7ad1dad31e06c5925ef5d2fc7ad053ef454303e # v7.0.0"
UPLOAD_ARTIFACT = "actions/upload-artifact@bbbca2ddaa5d8feaa63e36b76fdaad77386f024f # v7.0.0"
WORKFLOW_PATH = ".github/workflows/perfgate.yml"


@dataclass(frozen=True)
class Findings:
    address: str
    method: Method | None
    other_calls: tuple[str, ...]
    pprof_url: str | None
    pprof_tried: tuple[str, ...]
    cmdline: Cmdline | None
    build: GoBuild | None
    branch: str  # the default branch: baselines are recorded on pushes to it
    subdir: str = "."  # the project's folder inside the repository


@dataclass(frozen=True)
class BuiltAB:
    """How perfgate builds and starts the service itself, so that a PR's base and head run side by side."""

    build: GoBuild
    command: tuple[str, ...]  # with {binary}, {address} and maybe {pprof_address}
    pprof: bool  # {pprof_address} is in the command: each build's CPU profiles


def _j(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _port(address: str) -> int | None:
    """The port of host:port or http://host:port[/...]; None when there is none."""
    tail = address.rsplit(":", 1)[-1].split("/")[0]
    return int(tail) if tail.isdigit() else None


def built_ab(found: Findings) -> BuiltAB | None:
    """Built A/B when the build is known and the running service's command line names its gRPC address."""
    if found.build is None or found.cmdline is None:
        return None
    ports: dict[int, str] = {}
    for address, placeholder in ((found.pprof_url, placeholders.PPROF_ADDRESS), (found.address, placeholders.ADDRESS)):
        port = _port(address) if address else None
        if port is not None:
            ports[port] = placeholder  # the gRPC address last: it wins a port both name
    command, used = with_placeholders(found.cmdline, ports)
    if placeholders.ADDRESS not in used:
        return None
    return BuiltAB(found.build, command, placeholders.PPROF_ADDRESS in used)


def starter_config(found: Findings) -> str:
    lines = [f"# yaml-language-server: $schema={release.SCHEMA_URL}",
             f"# Written by `perfgate init {found.address}`. Review it, then commit it with {WORKFLOW_PATH}.",
             f"# Every key: {release.DOCS_URL}/configuration.md"]
    ab = built_ab(found)
    if ab is not None:
        lines += ["# On every pull request the Action builds the PR's base commit and its head (service.build), and",
                  "# perfgate starts both on free loopback ports, loads them at once at a rate it finds itself,",
                  "# compares them pair by pair and gates.", "",
                  "target:                                # no address: perfgate picks one per build ({address})"]
        lines += _target(found)
        lines += _built_service(found, ab)
        lines += _built_cpu(found, ab)
    else:
        lines += ["", "target:", f"  address: {_j(found.address)}"]
        lines += _target(found)
        lines += ["", "load:", "  duration_s: 5                       # each repetition's load window",
                  "  repetitions: 6                      # per side; the statistics need >= 4 to ever call a change"]
        lines += _service(found)
        lines += _cpu(found)
        lines += ["", "baseline:", "  missing: pass                       # PRs before the first baseline exists "
                  "pass, with a note"]
    lines += ["", "gates:                                # perfgate's defaults, spelled out"]
    lines += [f"  - {_rule(rule)}" for rule in DEFAULT_GATES]
    return "\n".join(lines) + "\n"


def _built_service(found: Findings, ab: BuiltAB) -> list[str]:
    lines = ["", "service:                              # perfgate builds it, starts it, checks it and stops it",
             f"  build: {_j(ab.build.command)}",
             "  build_env: {\"CGO_ENABLED\": \"0\"}     # static: the builds run inside perfgate's container",
             f"  command: {_j(list(ab.command))}",
             "  # ^ the running service's own flags (from /debug/pprof/cmdline), its addresses as placeholders"]
    if found.cmdline is not None and found.cmdline.redacted:
        lines.append(f"  # TODO: {', '.join(found.cmdline.redacted)} looked secret and became REDACTED: "
                     "use service.env / service.pass_env")
    return [*lines, "  ready: grpc_health                  # grpc_health | port | none"]


def _built_cpu(found: Findings, ab: BuiltAB) -> list[str]:
    if ab.pprof:
        return ["", "# CPU profiles: each build's net/http/pprof on the {pprof_address} perfgate picks"]
    if found.pprof_url:
        return ["", f"# net/http/pprof answered on {_j(found.pprof_url)}, an address its command line does not name:",
                "# make it a flag and pass {pprof_address} in service.command to get each build's CPU profiles."]
    return _cpu(found)


def _target(found: Findings) -> list[str]:
    if found.method is None:
        return ["  call: \"package.Service/Method\"     # TODO: reflection found no method; name the one to load"]
    lines = [f"  call: {_j(found.method.call)}"]
    if found.other_calls:
        lines.append(f"  # other methods found by reflection: {', '.join(found.other_calls)}")
    lines.append(f"  data: {_j(dict(found.method.request))}")
    lines.append(f"  # ^ {found.method.request_type} with every field at its zero value: make it a typical request")
    return lines


def _service(found: Findings) -> list[str]:
    if found.build is None:
        return ["", "# No Go main package found: start the service in the workflow before perfgate runs,",
                f"# listening on {found.address} (or add a `service:` section, docs/configuration.md)."]
    lines = ["", "service:                              # perfgate starts the build the workflow made, and stops it"]
    if found.cmdline is None:
        lines += [f"  command: {_j([found.build.binary])}",
                  f"  # TODO: add the flags that make it listen on {found.address} (its command line was not",
                  "  # readable: /debug/pprof/cmdline did not answer)"]
    else:
        lines += [f"  command: {_j([found.build.binary, *found.cmdline.argv[1:]])}",
                  "  # ^ the running service's own flags (from /debug/pprof/cmdline)"]
        if found.cmdline.redacted:
            lines.append(f"  # TODO: {', '.join(found.cmdline.redacted)} looked secret and became REDACTED: "
                         "use service.env / service.pass_env")
    lines.append("  ready: grpc_health                  # grpc_health | port | none")
    return lines


def _cpu(found: Findings) -> list[str]:
    if found.pprof_url:
        return ["", "cpu:", f"  pprof_url: {_j(found.pprof_url)}   # found: net/http/pprof answers here"]
    return ["", "# No net/http/pprof endpoint answered (tried /debug/pprof/ on ports "
            f"{', '.join(url.rsplit(':', 1)[1].split('/')[0] for url in found.pprof_tried) or 'none'}).",
            "# Serve it (Go: import _ \"net/http/pprof\") and set cpu.pprof_url to see which functions moved."]


def _rule(rule: GateRule) -> str:
    defaults = GateRule(metric=rule.metric)
    shown = {item.name: getattr(rule, item.name) for item in fields(GateRule)
             if item.name == "metric" or getattr(rule, item.name) != getattr(defaults, item.name)}
    return "{" + ", ".join(f"{key}: {_j(_number(value))}" for key, value in shown.items()) + "}"


def _number(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def starter_workflow(found: Findings) -> str:
    if built_ab(found) is not None:
        return _built_ab_workflow(found)
    here = found.subdir != "."
    prefix = f"{found.subdir}/" if here else ""
    build = _build_steps(found, prefix)
    perfgate_with = [f"          working-directory: {found.subdir}"] if here else []
    return "\n".join([
        "# Written by `perfgate init`: the performance gate.",
        f"# On every push to {found.branch} it records a baseline (artifact perfgate-baseline); on every pull",
        "# request it measures the PR, compares with the newest baseline of the PR's base branch, keeps one",
        "# comment up to date and fails the check on a regression.",
        "name: perfgate",
        "",
        "on:",
        "  push:",
        f"    branches: [{_j(found.branch)}]",
        "  pull_request:",
        "",
        "permissions: {}",
        "",
        "concurrency:",
        "  group: perfgate-${{ github.event.pull_request.number || github.ref }}",
        "  cancel-in-progress: ${{ github.event_name == 'pull_request' }}",
        "",
        *(["defaults:", "  run:", f"    working-directory: {found.subdir}", ""] if here else []),
        "jobs:",
        "  baseline:",
        "    name: record the baseline",
        "    if: github.event_name == 'push'",
        "    permissions:",
        "      contents: read",
        "    runs-on: ubuntu-24.04",
        "    timeout-minutes: 30",
        "    steps:",
        *build,
        "      - name: perfgate (baseline)",
        f"        uses: {release.action_uses()}",
        "        with:",
        "          mode: baseline",
        *perfgate_with,
        f"      - uses: {UPLOAD_ARTIFACT}",
        "        with:",
        "          name: perfgate-baseline",
        f"          path: {prefix}perfgate-out/baseline",
        "          retention-days: 90",
        "          if-no-files-found: error",
        "",
        "  gate:",
        "    name: perfgate",
        "    if: github.event_name == 'pull_request'",
        "    permissions:",
        "      contents: read",
        "      actions: read          # find and download the base branch's baseline artifact",
        "      pull-requests: write   # the sticky comment",
        "    runs-on: ubuntu-24.04",
        "    timeout-minutes: 30",
        "    steps:",
        *build,
        "      - name: perfgate",
        f"        uses: {release.action_uses()}",
        "        with:",
        "          baseline-branch: ${{ github.event.pull_request.base.ref }}",
        *perfgate_with,
        "      - name: Keep the report",
        "        if: ${{ !cancelled() }}",
        f"        uses: {UPLOAD_ARTIFACT}",
        "        with:",
        "          name: perfgate-report",
        f"          path: {prefix}perfgate-out",
        "          retention-days: 14",
    ]) + "\n"


def _build_steps(found: Findings, prefix: str) -> list[str]:
    steps = [f"      - uses: {CHECKOUT}", "        with:", "          persist-credentials: false"]
    if found.build is None:
        return [*steps, "      - name: Build and start the service",
                "        run: |",
                f"          echo '::error::perfgate init found no Go main package: build and start the service here, "
                f"listening on {found.address}'",
                "          exit 1"]
    return [*steps, f"      - uses: {SETUP_GO}", "        with:", f"          go-version-file: {prefix}go.mod",
            "          cache: false", "      - name: Build the service, static (perfgate runs it in its container)",
            f"        run: {found.build.shell}"]


def _built_ab_workflow(found: Findings) -> str:
    here = found.subdir != "."
    return "\n".join([
        "# Written by `perfgate init`: the performance gate, built A/B. On every pull request the action builds",
        "# the PR's base commit and its head (service.build in perfgate.yml), perfgate runs both side by side on",
        "# this runner, keeps one comment up to date and fails the check on a regression. No baseline artifact",
        "# is needed.",
        "name: perfgate",
        "",
        "on:",
        "  pull_request:",
        "",
        "permissions: {}",
        "",
        "concurrency:",
        "  group: perfgate-${{ github.event.pull_request.number }}",
        "  cancel-in-progress: true",
        "",
        "jobs:",
        "  gate:",
        "    name: perfgate",
        "    permissions:",
        "      contents: read         # the checkout, and the pull request's base commit to build",
        "      pull-requests: write   # the sticky comment",
        "    runs-on: ubuntu-24.04",
        "    timeout-minutes: 30",
        "    steps:",
        f"      - uses: {CHECKOUT}",
        "        with:",
        "          persist-credentials: false",
        f"      - uses: {SETUP_GO}",
        "        with:",
        f"          go-version-file: {found.subdir + '/' if here else ''}go.mod",
        "          cache: false",
        "      - name: perfgate",
        f"        uses: {release.action_uses()}",
        *(["        with:", f"          working-directory: {found.subdir}"] if here else []),
        "      - name: Keep the report",
        "        if: ${{ !cancelled() }}",
        f"        uses: {UPLOAD_ARTIFACT}",
        "        with:",
        "          name: perfgate-report",
        f"          path: {found.subdir + '/' if here else ''}perfgate-out",
        "          retention-days: 14",
    ]) + "\n"
