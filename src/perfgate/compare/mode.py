"""Which comparison mode produced a verdict, and at what request rate: read from the records, said in every report."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from perfgate.compare.inputs import ComparisonInputs, same_run
from perfgate.verdict import RunSetup

SOURCE_MODES = {"artifact": "baseline artifact", "path": "baseline record", "records": "saved records"}
SCHEDULE_MODES = {"alternate": "interleaved, alternating", "restart": "interleaved, restarting each build"}


def run_setup(inputs: ComparisonInputs) -> RunSetup:
    cand = inputs.candidate.record
    rate = _rate(cand.load_settings)
    if inputs.baseline is None:
        return RunSetup(mode="first run", description="first run: no baseline to compare with yet", **rate)
    base = inputs.baseline.record
    if same_run(inputs.baseline, inputs.candidate):
        mode, description = _same_job(base.load_settings, cand.load_settings)
    else:
        mode = SOURCE_MODES.get(inputs.baseline_source or "", "baseline record")
        description = (f"the candidate was measured in this job and compared with a {mode} measured in another run "
                       f"({base.created_at}); the runner's drift between runs is allowed for only as far as "
                       "earlier records of the baseline show it")
    return RunSetup(mode=mode, description=f"{description}; {_rate_text(rate)}", **rate)


def _same_job(base: Mapping[str, Any], cand: Mapping[str, Any]) -> tuple[str, str]:
    schedule = cand.get("schedule")
    if schedule != "duet":
        mode = SCHEDULE_MODES.get(str(schedule), "interleaved, alternating")
        return mode, f"both builds measured in this job ({mode}) and compared repetition pair by repetition pair"
    base_build, cand_build = base.get("build"), cand.get("build")
    if isinstance(base_build, Mapping) and isinstance(cand_build, Mapping):
        return "built A/B duet", (f"perfgate built the base ({_commit(base_build)}) and the head "
                                  f"({_commit(cand_build)}) and loaded both at once on this runner (duet), "
                                  "compared repetition pair by repetition pair")
    return "hand-configured duet", ("both builds, as compare.baseline_service and service start them, loaded at once "
                                    "on this runner (duet), compared repetition pair by repetition pair")


def _commit(build: Mapping[str, Any]) -> str:
    commit = str(build.get("commit") or "")[:12]
    ref = build.get("ref")
    if ref:
        return f"{ref} at {commit}" if commit else str(ref)
    return f"the working tree at {commit}" if commit else "the working tree"


def _rate(settings: Mapping[str, Any]) -> dict[str, Any]:
    rps = settings.get("rps")
    if not isinstance(rps, int) or isinstance(rps, bool) or rps <= 0:
        return {}
    automatic = settings.get("rps_source") == "automatic"
    capacities = settings.get("capacity_rps_at_start")
    return {"rps": rps, "rps_source": "automatic" if automatic else "configured",
            "rate_fraction": settings.get("rate_fraction") if automatic else None,
            "capacity_rps_at_start": dict(capacities) if automatic and isinstance(capacities, Mapping) else {}}


def _rate_text(rate: Mapping[str, Any]) -> str:
    if not rate:
        return "load without a rate limit (as fast as load.concurrency callers go)"
    if rate["rps_source"] != "automatic":
        return f"each side loaded at {rate['rps']:,} requests/s (load.rps)"
    capacities = ", ".join(f"{role} {value:,.0f}" for role, value in rate["capacity_rps_at_start"].items())
    return (f"each side loaded at {rate['rps']:,} requests/s, found automatically: {rate['rate_fraction']:g} × the "
            f"smaller capacity measured before the first repetition ({capacities} requests/s)")
