"""Verdict quality of perfgate's default flow on the example greeter (issue #12, "Prove it").

The default flow is what the Action runs on a pull request when perfgate.yml says how to build the service:
perfgate builds the base commit and the head, starts both, finds the request rate itself and loads both
builds at once (duet), then compares them pair by pair. Here, per gate: a fresh temporary git repository
holding the greeter at two commits, `perfgate run --against HEAD~1` in it, the kernel view on. Scenarios
(the head commit's change; the base is always the greeter as it is):

  aa        a comment changes: the same code on both sides            -> PASS >= 90 %, FAIL <= 1 %
  cpu5      main.checksumPayload does more work, sized for +5 % CPU per request at the flow's own rate: with
            --calibrate N, N gates first measure what +200 % of its work does (the function's share of the CPU
            depends on the rate, so a knob sized at another rate is diluted or inflated), and the knob is
            5 % / that share; without, KNOB_PCT (~13 % of the CPU at 1200 req/s) -> FAIL >= 95 %, named first >= 95 %
  sleep     a 2 ms sleep on 10 % of the calls (-regress-sleep-pct), no CPU change -> FAIL >= 90 %
  hog       the same code; 3 busy loops on the machine for the whole gate            -> never FAIL
  cpulimit  the same code; the head's service in a cgroup with cpu.max = CPU_LIMIT CPUs from its start -> never FAIL
  heavy_aa  as aa, each call doing HEAVY_ITEMS items of work (~5 ms of CPU, a few hundred calls/s on 2 cores):
            a service far slower than the greeter's default (only when --scenarios names it)       -> as aa

Each gate's record of what happened is one line of bench/results/default_flow.jsonl, written as soon as the gate
ends (an interrupted run keeps what it measured): outcome, rules, the first CPU mover named (a significant one)
and the top riser, the measured changes, the gate's wall time (build, probes and reports included) beside its
load time (warm-up, capacity probes and duet windows), and the 1-minute load average before and after.
`--report` prints the table from that file; `--write` also puts it into docs/benchmarks.md. Not a test: a full
run is about 100 gates of 1.5-2 minutes. Smoke it with `--gates 1 --scenarios aa --pairs 5 --duration 1`.

`--rejudge` judges kept gates (`--keep`) again with this checkout's compare: the verdict is a pure function of the
two records and the config, so this is the verdict the gate would have given. The outcome and rules must come out
the same (the naming does not touch them). A gate judged before the weighted correction gets the naming fields of
this code, the old name kept as `unweighted_named_mover`; a gate whose movers' test counted the capacity probes'
profiles is judged once more on copies of its records without them, its name from the duet windows alone kept as
`windows_only_named_mover` (the same gates, paired).

usage: .venv/bin/python bench/bench_default_flow.py [--gates 20] [--detect-gates 20] [--control-gates 8]
           [--scenarios aa,cpu5,sleep,hog,cpulimit] [--pairs N] [--duration S] [--keep]
           [--calibrate N | --knob PCT] [--rejudge] [--report] [--write]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from docs_section import add_table_options, run_and_report
from greeter_gate import (
    COMMENT_ONLY,
    DEFAULT_ITEMS,
    add_gate_options,
    append_result,
    flow_config,
    gate_in_new_repo,
    gate_result,
    rejudge_gate,
    results_by_scenario,
)
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from perfgate.capture.cgroup import CgroupUnavailable, CpuGroup  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "default_flow.jsonl"
# an earlier run on a machine busy with other work (load average 11-17), kept for comparison
LOADED_RESULTS = ROOT / "bench" / "results" / "default_flow_loaded.jsonl"
WELCH_RESULTS = ROOT / "bench" / "results" / "default_flow_2ea356e.jsonl"
THREE_S_RESULTS = ROOT / "bench" / "results" / "default_flow_3s_profiles.jsonl"
RATE_04_RESULTS = ROOT / "bench" / "results" / "default_flow_rate04.jsonl"
WORK = Path(os.environ.get("PERFGATE_BENCH_DIR", "/tmp/perfgate-bench-default-flow"))
FUNCTION = "main.checksumPayload"
KNOB_PCT = 38.5  # +38.5 % of checksumPayload's work ~ +5 % CPU per request at ~13 % of the CPU (docs/benchmarks.md)
HOGS, CPU_LIMIT = 3, 0.5
HEAVY_ITEMS = 1024
GATES = [
    {"metric": "latency.p95", "max_increase_pct": 10},
    {"metric": "rps", "max_decrease_pct": 10},
    {"metric": "cpu_per_request", "max_increase_pct": 3},
    {"metric": "error_rate", "max_value": 0.01},
]
CALIBRATION_KNOB_PCT = 200.0
TARGET_CPU_CHANGE = 0.05


def cpu_knob(pct: float) -> tuple[tuple[str, str, str]]:
    """checksumPayload does `pct` % more work in the head commit."""
    return (("main.go", 'fs.Float64("regress-cpu-pct", 0,', f'fs.Float64("regress-cpu-pct", {pct},'),)


def knob_pct(edits: tuple[tuple[str, str, str]]) -> float:
    return float(edits[0][2].split(", ")[1].rstrip(","))


# the head commit's edits per scenario (hog and cpulimit disturb an unchanged service)
EDITS = {
    "aa": (COMMENT_ONLY,),
    "cpu5": cpu_knob(KNOB_PCT),
    "calibrate": cpu_knob(CALIBRATION_KNOB_PCT),
    "sleep": (("main.go", 'fs.Duration("regress-sleep", 0,', 'fs.Duration("regress-sleep", 2*time.Millisecond,'),
              ("main.go", 'fs.Float64("regress-sleep-pct", 100,', 'fs.Float64("regress-sleep-pct", 10,')),
}


@contextlib.contextmanager
def disturbance(scenario: str, folder: Path) -> Iterator[None]:
    """hog: busy loops for the whole gate; cpulimit: the head's service into a cpu.max group once it starts."""
    if scenario == "hog":
        hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"],  # noqa: S603
                                 start_new_session=True) for _ in range(HOGS)]
        try:
            yield
        finally:
            for hog in hogs:
                hog.kill()
                hog.wait()
        return
    if scenario != "cpulimit":
        yield
        return
    stop = threading.Event()
    with CpuGroup(cpus=CPU_LIMIT) as group:
        watcher = threading.Thread(target=_limit_head, args=(group, folder, stop), daemon=True)
        watcher.start()
        try:
            yield
        finally:
            stop.set()
            watcher.join(timeout=10)


def _limit_head(group: CpuGroup, folder: Path, stop: threading.Event) -> None:
    """Move every process started from the head's build (a binary under the gate's folder whose path names the
    candidate side) into the group, as soon as it appears."""
    moved: set[int] = set()
    while not stop.wait(0.05):
        for pid in _head_service_pids(folder) - moved:
            with contextlib.suppress(OSError, CgroupUnavailable):
                group.move(pid)
                moved.add(pid)


def _head_service_pids(folder: Path) -> set[int]:
    found = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            binary = os.path.realpath(proc / "exe")
        except OSError:
            continue
        if binary.startswith(str(folder)) and "candidate" in Path(binary).parts:
            found.add(int(proc.name))
    return found


def one_gate(scenario: str, args: argparse.Namespace) -> dict:
    items = HEAVY_ITEMS if scenario == "heavy_aa" else DEFAULT_ITEMS
    return gate_in_new_repo(WORK, scenario, args,
                            lambda out: flow_config(out, GATES, args.pairs, args.duration, items=items),
                            EDITS.get(scenario, (COMMENT_ONLY,)), summarize,
                            during=lambda folder: disturbance(scenario, folder), keep=surprising)


def surprising(result: dict) -> bool:
    """An outcome off the scenario's goal: its records are kept (under WORK) to be looked at."""
    expected = {"aa": ("PASS", "WARN"), "heavy_aa": ("PASS", "WARN"), "cpu5": ("FAIL",),
                "sleep": ("FAIL",)}.get(result["scenario"])
    if result["scenario"] == "calibrate":
        return False
    if expected is None:
        return result["outcome"] == "FAIL"
    return result["outcome"] not in expected


def summarize(verdict: dict, scenario: str, code: int) -> dict:
    metrics = {m["name"]: m for m in verdict["metrics"]}
    risers = verdict["cpu"].get("risers") or []
    named = _named(verdict)
    cpu = metrics.get("cpu_per_request") or {}
    return {
        "scenario": scenario, "outcome": verdict["outcome"], "exit_code": code,
        "rules": {r["rule"]: r["outcome"] for r in verdict["rules"]},
        "causes": sorted({(r.get("evidence") or {}).get("cause") for r in verdict["rules"]} - {None}),
        "named_mover": named, "top_riser": risers[0]["function"] if risers else None,
        "cpu_per_request_change": cpu.get("rel_change"), "cpu_mde": cpu.get("mde_rel"),
        "p95_change": (metrics.get("latency.p95") or {}).get("rel_change"),
        "p95_mde": (metrics.get("latency.p95") or {}).get("mde_rel"),
        "functions_tested": verdict["cpu"].get("functions_tested"),
        "inconclusive_rules": [r["rule"] for r in verdict["rules"] if r["outcome"] == "INCONCLUSIVE"],
        **({"naming": naming(verdict), "functions_own": verdict["cpu"]["functions_own"],
            "probe_profiles": verdict["cpu"].get("probe_profiles", 0)} if "functions_own" in verdict["cpu"] else {}),
    }


def naming(verdict: dict) -> str:
    """How the verdict's CPU movers were named: "weighted" (the service's own functions holding half the weight),
    "weighted, probes" when the capacity probes' profiles were counted too."""
    return "weighted, probes" if verdict["cpu"].get("probe_profiles") else "weighted"


NAMING_KEYS = ("named_mover", "top_riser", "functions_tested", "naming", "functions_own", "probe_profiles")


def rejudge(results: Path = RESULTS) -> None:
    """Judge kept gates again with this checkout's compare (module docstring)."""
    rows = [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines() if line.strip()]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, check=True, capture_output=True,
                            text=True).stdout.strip()
    for row in rows:
        folder = Path(row["kept"]) if row.get("kept") else None
        if "outcome" not in row or folder is None or not folder.is_dir():
            continue
        if not row.get("naming"):
            _rejudge_unweighted(row, folder, commit)
        elif row.get("probe_profiles") and "windows_only_named_mover" not in row:
            row["windows_only_named_mover"] = _named(_same_verdict(row, folder, without_probe_profiles=True))
            print(f"{folder.name}: named {row['named_mover']}, from the windows alone "
                  f"{row['windows_only_named_mover']}", flush=True)
    scratch = results.with_suffix(".tmp")
    scratch.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    scratch.replace(results)


def _rejudge_unweighted(row: dict, folder: Path, commit: str) -> None:
    fresh = summarize(_same_verdict(row, folder), row["scenario"], row["exit_code"])
    row.update({"unweighted_named_mover": row.get("named_mover"), "rejudged_at": commit},
               **{key: fresh.get(key) for key in NAMING_KEYS})
    print(f"{folder.name}: {row['outcome']}, named {row['named_mover']} (was {row['unweighted_named_mover']})",
          flush=True)


def _same_verdict(row: dict, folder: Path, *, without_probe_profiles: bool = False) -> dict:
    """The kept gate's verdict from this checkout's compare; its outcome and rules must be the gate's own."""
    code, verdict = rejudge_gate(folder, without_probe_profiles=without_probe_profiles)
    fresh = summarize(verdict, row["scenario"], code)
    if (fresh["outcome"], fresh["rules"]) != (row["outcome"], row["rules"]):
        raise SystemExit(f"{folder}: judged again, {fresh['outcome']} {fresh['rules']} where the gate said "
                         f"{row['outcome']} {row['rules']}")
    return verdict


def _named(verdict: dict) -> str | None:
    return next((r["function"] for r in verdict["cpu"].get("risers") or [] if r.get("significant")), None)


def calibrate(args: argparse.Namespace) -> None:
    """Size the cpu5 knob at this machine's and this flow's rate: the function's share of the CPU is what +200 %
    of its work adds, divided by 2; the knob is TARGET_CPU_CHANGE over that share."""
    changes = []
    for number in range(args.calibrate):
        result = one_gate("calibrate", args)
        result["design"] = {"pairs": args.pairs, "duration_s": args.duration}
        append_result(RESULTS, result)
        changes.append(result["cpu_per_request_change"])
        print(f"[calibration {number + 1}/{args.calibrate}] +{CALIBRATION_KNOB_PCT:g} % of the work: CPU per request "
              f"{100 * result['cpu_per_request_change']:+.1f} %", flush=True)
    share = sorted(changes)[len(changes) // 2] / (CALIBRATION_KNOB_PCT / 100)
    if share <= 0:
        raise SystemExit(f"calibration measured no CPU change ({changes}): is the machine quiet?")
    knob = round(100 * TARGET_CPU_CHANGE / share, 1)
    EDITS["cpu5"] = cpu_knob(knob)
    print(f"main.checksumPayload carries {100 * share:.1f} % of the CPU at this rate: cpu5 knob +{knob:g} %",
          flush=True)


def spread(wanted: dict[str, int]) -> list[str]:
    """Every scenario's gates spread evenly over the whole run (gate k of n at (k + 1/2) / n of it), so each
    scenario meets the machine's states over the run alike, whatever its count."""
    return [s for _, _, s in sorted(((k + 0.5) / n, order, s) for order, (s, n) in enumerate(wanted.items())
                                    for k in range(n))]


def run(args: argparse.Namespace) -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    if args.knob is not None:
        EDITS["cpu5"] = cpu_knob(args.knob)
    elif args.calibrate and "cpu5" in args.scenarios.split(","):
        calibrate(args)
    counts = {"aa": args.gates, "cpu5": args.detect_gates, "sleep": args.sleep_gates or args.detect_gates,
              "hog": args.control_gates, "cpulimit": args.control_gates, "heavy_aa": args.gates}
    plan = spread({s: counts[s] for s in args.scenarios.split(",")})
    for number, scenario in enumerate(plan, 1):
        result = gate_result(one_gate, scenario, args)
        if scenario == "cpu5":
            result["knob_pct"] = knob_pct(EDITS["cpu5"])
        append_result(RESULTS, result)
        print(f"[{number}/{len(plan)}] {scenario}: {result.get('outcome', 'error')} "
              f"(wall {result.get('wall_s')} s, load {result.get('load_s')} s, "
              f"load average {result.get('load_avg_before')})", flush=True)


# ---------------------------------------------------------------- the table
GOALS = {"aa": "PASS >= 90 %, INCONCLUSIVE <= 10 %, FAIL <= 1 %", "cpu5": "FAIL >= 95 %, named first >= 95 %",
         "sleep": "FAIL >= 90 %", "hog": "FAIL never", "cpulimit": "FAIL never"}
GOALS["heavy_aa"] = GOALS["aa"]


def report(results: Path = RESULTS) -> str:
    groups = results_by_scenario(results)
    lines = ["| scenario | goal | gates | PASS | INCONCLUSIVE | FAIL | errors | named first | ranked first "
             "| median CPU/request change | median p95 change | rate (req/s per build) | wall s (median) "
             "| load s (median) | load average (median, max) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for scenario in ("aa", "cpu5", "sleep", "hog", "cpulimit", "heavy_aa"):
        group = groups.get(scenario)
        if not group:
            continue
        ok = [g for g in group if "outcome" in g]
        count = {o: sum(g["outcome"] == o for g in ok) for o in ("PASS", "WARN", "INCONCLUSIVE", "FAIL")}
        judged = newest_naming(ok)
        named, ranked = (share(sum(g.get(key) == FUNCTION for g in rows), len(rows)) if scenario == "cpu5" else "–"
                         for key, rows in (("named_mover", judged), ("top_riser", ok)))
        loads = sorted(g["load_avg_before"] for g in ok)
        lines.append(
            f"| {scenario} | {GOALS[scenario]} | {len(group)} | {share(count['PASS'] + count['WARN'], len(ok))} | "
            f"{share(count['INCONCLUSIVE'], len(ok))} | {share(count['FAIL'], len(ok))} | {len(group) - len(ok)} | "
            f"{named} | {ranked} | "
            f"{median_pct(ok, 'cpu_per_request_change')} | "
            f"{median_pct(ok, 'p95_change')} | {median_of(ok, 'rps')} | {median_of(ok, 'wall_s')} | "
            f"{median_of(ok, 'load_s')} | {median_of(ok, 'load_avg_before')}, {max(loads, default=0):.1f} |")
    lines += naming_notes(groups)
    knobs = sorted({g["knob_pct"] for g in groups.get("cpu5", []) if g.get("knob_pct") is not None})
    calibration = [g["cpu_per_request_change"] for g in groups.get("calibrate", []) if "outcome" in g]
    if knobs:
        lines.append(f"\ncpu5 knob: +{', +'.join(f'{k:g}' for k in knobs)} % of main.checksumPayload's work"
                     + (f" (calibrated: +{CALIBRATION_KNOB_PCT:g} % of its work moved CPU per request by "
                        f"{', '.join(f'{100 * c:+.1f}' for c in calibration)} %)" if calibration else ""))
    return "\n".join(lines)


def newest_naming(gates: list[dict]) -> list[dict]:
    """The gates judged with the newest naming of CPU movers any of them has (all gates when none says)."""
    for label in ("weighted, probes", "weighted"):
        judged = [g for g in gates if g.get("naming") == label]
        if judged:
            return judged
    return gates


def naming_notes(groups: dict[str, list[dict]]) -> list[str]:
    """What "named first" counts when gates were judged by several namings, and what the A/A gates named."""
    ok = [g for g in groups.get("cpu5", []) if "outcome" in g]
    probes = [g for g in ok if g.get("naming") == "weighted, probes"]
    weighted = [g for g in ok if g.get("naming") == "weighted"]
    unweighted = [g.get("unweighted_named_mover", g.get("named_mover")) for g in ok
                  if not g.get("naming") or "unweighted_named_mover" in g]
    aa = [g for s in ("aa", "heavy_aa") for g in groups.get(s, []) if "outcome" in g]
    notes = []
    if probes:
        alone = [g["windows_only_named_mover"] for g in probes if "windows_only_named_mover" in g]
        aa_probes = [g for g in aa if g.get("naming") == "weighted, probes"]
        notes.append(f"\ncpu5 \"named first\": the {len(probes)} gates whose movers' test counted the capacity "
                     f"probes' CPU profiles beside the duet windows' (weighted correction); the same gates judged "
                     f"again from the windows' profiles alone: {share(sum(n == FUNCTION for n in alone), len(alone))}."
                     f" A/A gates with the probes' profiles that named a CPU mover: "
                     f"{share(sum(bool(g.get('named_mover')) for g in aa_probes), len(aa_probes))}; from the windows "
                     f"alone: {share(sum(bool(g.get('windows_only_named_mover')) for g in aa_probes), len(aa_probes))}"
                     ".")
    if weighted:
        aa_named = [bool(g.get("named_mover")) for g in aa if g.get("naming") == "weighted"]
        rejudged = sum("unweighted_named_mover" in g for g in weighted)
        notes.append(f"\nGates judged with the weighted correction from the windows' profiles only (runs before the "
                     f"probes were profiled; {rejudged} of them judged again from their kept records): cpu5 named "
                     f"first {share(sum(g.get('named_mover') == FUNCTION for g in weighted), len(weighted))}; A/A "
                     f"naming a CPU mover {share(sum(aa_named), len(aa_named))}"
                     f". With the unweighted correction: cpu5 named first "
                     f"{share(sum(n == FUNCTION for n in unweighted), len(unweighted))}.")
    return notes


def share(count: int, total: int) -> str:
    """'19/20 (95 %; 95 % CI 75-100 %)': the count, and the Clopper-Pearson interval of the rate."""
    if not total:
        return "–"
    interval = stats.binomtest(count, total).proportion_ci(confidence_level=0.95, method="exact")
    return f"{count}/{total} ({100 * count / total:.0f} %; {100 * interval.low:.0f}-{100 * interval.high:.0f} %)"


def median_of(group: list[dict], key: str) -> str:
    values = sorted(g[key] for g in group if g.get(key) is not None)
    return f"{values[len(values) // 2]:g}" if values else "–"


def median_pct(group: list[dict], key: str) -> str:
    values = sorted(g[key] for g in group if g.get(key) is not None)
    return f"{100 * values[len(values) // 2]:+.1f} %" if values else "–"


SECTION = "## Verdict quality in the default flow (bench/bench_default_flow.py)"
METHOD = """Each row is a number of independent gates, each `perfgate run --against HEAD~1` in a fresh temporary git
repository holding the example greeter at two commits (the head commit carries the scenario's change), as the
Action's default flow on a pull request runs it: perfgate builds both commits, starts both builds, finds the
request rate itself (capacity probes), loads both at once (duet) and compares them pair by pair, kernel view on.
Rules: `latency.p95` +10 %, `rps` -10 %, `cpu_per_request` +3 %, `error_rate` <= 1 %. "named first": the first CPU
mover the verdict names (only significant ones are named) is main.checksumPayload; "ranked first": it heads the
list of risers after attribution, significant or not. Rates come with their 95 % Clopper-Pearson interval. "wall
s" is the whole `perfgate run --against` (two builds, probes, load, reports); "load s" the time under load (warm-
up, capacity probes, duet windows). The scenarios ran interleaved (each one's gates spread evenly over the run),
so each met the machine's states alike. The machine: 2 vCPUs, nothing else running but the bench, the kernel's
autogroup off; the 1-minute load average before each gate is in the last column. Raw results, one line per gate:
bench/results/default_flow.jsonl, with each window's profiles requested before its load starts, covering the whole
4 s window: every scenario but heavy_aa from one run at c1b8783 (3 calibration gates first), then 10 more aa and 20
more cpu5 gates at e0e35fc (the same measurement; the knob from the first run's calibration, `--knob 50.8`), then
the heavy_aa gates at e970061: the A/A scenario on a service about 15 times slower per call (`items` 1024 in each
request: ~5 ms of CPU where the greeter's default is ~0.3 ms). Then 10 aa and 20 cpu5 gates at ec04df9 with their
records kept, and 10 aa and 20 cpu5 at 683308b, the first code naming CPU movers with the weighted correction (the
service's own functions holding half its weight); the ec04df9 gates were judged again by it from their records
(`--rejudge`, same outcomes and rules). Then 10 aa and 20 cpu5 gates at 38376ec, the first code that profiles the
capacity probes and counts their samples in the movers' test (as strata of their own), and 8 aa, 20 cpu5, 4 sleep,
4 hog and 4 cpulimit gates at 8861211 (the same measurement), all kept; each of their gates was judged again from
the duet windows' profiles alone (`--rejudge`). "named first" for cpu5 counts the gates judged with the probes'
profiles; the notes below give the same gates from the windows alone, and the earlier namings."""
RATE_04 = """A trial of a higher automatic rate, each build loaded at 0.4 of the smaller capacity instead of 0.25
(bench/results/default_flow_rate04.jsonl, at a7c5689, 3 calibration gates first, stopped after 29 gates; why
0.25 stays: "Verdict quality in the default flow: what the table shows", above)."""
THREE_S = """The run before, each 4 s window profiled for 3 s inside it (a margin at both ends;
bench/results/default_flow_3s_profiles.jsonl): aa and cpu5 at b10acce, the first run with the CPU movers' count
test; hog and cpulimit at 9cd4cb0 (10 gates each, interleaved with each other), whose gates took no fixed wait for
the goroutine snapshot after each window (their wall time is ~4 s shorter for it)."""
WELCH = """An earlier run, at 2ea356e, by the same method on the same machine
(bench/results/default_flow_2ea356e.jsonl): CPU movers were then named by Welch's t per function
(compare/movers.py). It also holds the sleep, hog and cpulimit rows, which the mover test does not touch: their
verdicts come from the rules."""
LOADED = """The same bench on the same machine while other work kept it busy (1-minute load average 11-17 on 2 vCPUs),
with an earlier version of the flow (before the contention snapshots around every window; results in
bench/results/default_flow_loaded.jsonl). Most gates ended INCONCLUSIVE there, and one hog gate FAILed on
latency.p95 (+27.6 %, CPU per request +0.7 %): the case the window contention snapshots were added for."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gates", type=int, default=20, help="A/A gates (aa, and heavy_aa)")
    parser.add_argument("--detect-gates", type=int, default=20, help="gates per regression scenario")
    parser.add_argument("--sleep-gates", type=int, default=0, help="gates of the sleep scenario "
                        "(default: --detect-gates)")
    parser.add_argument("--control-gates", type=int, default=8, help="gates per disturbance scenario")
    parser.add_argument("--scenarios", default="aa,cpu5,sleep,hog,cpulimit")
    add_gate_options(parser)
    parser.add_argument("--calibrate", type=int, default=0, metavar="N",
                        help="size the cpu5 knob first from N gates at +200 %% of the function's work")
    parser.add_argument("--knob", type=float, metavar="PCT",
                        help="the cpu5 knob in %% of the function's work, as an earlier --calibrate sized it")
    parser.add_argument("--rejudge", action="store_true", help="judge the kept gates again with this checkout's "
                        "compare (module docstring), then print the table")
    add_table_options(parser)
    args = parser.parse_args()
    if args.rejudge:
        rejudge()
        args.report = True
    return run_and_report(args, run, report, SECTION, METHOD, after=earlier_tables)


def earlier_tables() -> str:
    """The trial at a higher rate, the runs before (3 s profiles; before the CPU movers' count test), then the loaded
    machine's run, each under its own words."""
    return "".join(f"\n\n{words}\n\n{report(results)}" for words, results in
                   ((RATE_04, RATE_04_RESULTS), (THREE_S, THREE_S_RESULTS), (WELCH, WELCH_RESULTS),
                    (LOADED, LOADED_RESULTS)) if results.exists())


if __name__ == "__main__":
    sys.exit(main())
