"""`perfgate profile top` (pprof's -top table, or JSON) and the `go tool pprof` diff command line."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from perfgate.profile.model import FunctionCost, Profile
from perfgate.profile.units import percentage, scale, scaled_label


def render_top(profile: Profile, *, as_json: bool) -> str:
    """The `profile top` output: pprof's -top table, or JSON [{function, flat, cum}] in profile.unit.

    Rows are sorted like pprof (flat descending, then name). The table prints values in the
    unit pprof would pick (-unit=minimum); the JSON keeps the raw integers.
    """
    rows = sorted(profile.functions.items(),
                  key=lambda item: (-abs(item[1].flat), item[0], -abs(item[1].cum)))
    if as_json:
        return json.dumps([{"function": name, "flat": cost.flat, "cum": cost.cum} for name, cost in rows],
                          indent=2, ensure_ascii=False)
    unit = _output_unit([cost for _, cost in rows], profile.total, profile.unit)

    def value(number: int) -> str:
        return scaled_label(number, profile.unit, unit)

    shown = sum(cost.flat for _, cost in rows)
    lines = [f"Profile: {profile.name}", f"Type: {profile.sample_type}"]
    if profile.duration_ns:
        lines.append(_duration_line(profile, value))
    lines.append(f"Showing nodes accounting for {value(shown)}, "
                 f"{percentage(shown, profile.total).strip()} of {value(profile.total)} total")
    lines.append(f"{'flat':>10s} {'flat':>5s}% {'sum':>5s}% {'cum':>10s} {'cum':>5s}%")
    running = 0
    for name, cost in rows:
        running += cost.flat
        lines.append(f"{value(cost.flat):>10s} {percentage(cost.flat, profile.total)} "
                     f"{percentage(running, profile.total)} {value(cost.cum):>10s} "
                     f"{percentage(cost.cum, profile.total)}  {name}")
    return "\n".join(lines)


def _duration_line(profile: Profile, value) -> str:
    duration = scaled_label(profile.duration_ns, "nanoseconds", "auto")
    line = f"Duration: {duration}, Total samples = {value(profile.total)}"
    total_ns = profile.total_ns
    if total_ns:
        line += f" ({percentage(total_ns, profile.duration_ns)})"
    return line


def _output_unit(costs: list[FunctionCost], total: int, sample_unit: str) -> str:
    """pprof's selectOutputUnit for -unit=minimum: readable for the smallest row and the total."""
    minimum = 0
    for cost in costs:
        smallest = abs(cost.flat) or abs(cost.cum)
        if smallest and (minimum == 0 or smallest < minimum):
            minimum = smallest
    if not costs:
        return sample_unit
    minimum = minimum or total
    _, min_unit = scale(minimum, sample_unit, "minimum")
    _, max_unit = scale(total, sample_unit, "minimum")
    unit = min_unit
    if min_unit != max_unit and minimum * 100 < total:
        _, unit = scale(100 * minimum, sample_unit, "minimum")
    return unit or sample_unit


def pprof_diff_command(base_file: Path | str, candidate_file: Path | str, *, http: bool = False) -> str:
    """The `go tool pprof` command that shows candidate minus baseline for two saved profiles.

    -normalize scales the candidate to the baseline's total first (the sides ran for different
    times or loads), so the table shows where the CPU moved; percentages are of the baseline.
    """
    view = ["-http=localhost:0"] if http else ["-top"]
    return shlex.join(["go", "tool", "pprof", f"-diff_base={base_file}", "-normalize", *view, str(candidate_file)])
