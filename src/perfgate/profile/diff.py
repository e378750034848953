"""`perfgate profile diff BASE CAND`: where the CPU moved between two profiles, per function.

The figures of `go tool pprof -diff_base=BASE -normalize -top CAND` (google/pprof's fetch.go): the candidate's
samples are scaled one by one to the base's total (Profile.Normalize then ScaleN: round(value * base_sum /
cand_sum), halves away from zero), the base's are subtracted, and percentages are of the base's total. A
function whose flat and cum both net to zero is not listed (pprof's graph drops such nodes). Tests check it
against the real `go tool pprof` on real profiles.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

from perfgate.errors import ProfileError
from perfgate.profile.model import FunctionCost, Profile
from perfgate.profile.parse import parse_profile
from perfgate.profile.render import render_top


def normalized_diff(base_file: Path, candidate_file: Path) -> Profile:
    """CAND - BASE like pprof's -diff_base -normalize: a Profile whose costs are the (signed) changes."""
    base = parse_profile(base_file)
    candidate = parse_profile(candidate_file)
    if base.sample_types != candidate.sample_types or base.period_type != candidate.period_type:
        raise ProfileError(f"{candidate_file} and {base_file} are not the same kind of profile "
                           f"({candidate.sample_types} vs {base.sample_types}); pprof refuses to diff them too")
    ratio = base.value_sum / candidate.value_sum if candidate.value_sum else 0.0
    if ratio != 1.0:
        candidate = parse_profile(candidate_file, scale=ratio)
    functions = {}
    for name in base.functions.keys() | candidate.functions.keys():
        before, after = base.cost(name), candidate.cost(name)
        if (after.flat, after.cum) != (before.flat, before.cum):
            functions[name] = FunctionCost(after.flat - before.flat, after.cum - before.cum)
    return replace(base, name=f"{candidate.name} - {base.name} (candidate scaled by {ratio:.4g})",
                   functions=MappingProxyType(functions), duration_ns=0)


def render_profile_diff(base_file: Path, candidate_file: Path, *, as_json: bool) -> str:
    """pprof's -top table of the change (percentages of the base's total), or JSON [{function, flat, cum}]."""
    return render_top(normalized_diff(base_file, candidate_file), as_json=as_json)
