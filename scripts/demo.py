"""`make demo`: the whole gate on the example service, as a user would run it.

1. a baseline of the example greeter (perfgate starts and stops it),
2. a candidate with the regression knob on (+300 % of main.checksumPayload's work, about +45 % CPU per request:
   a regression no runner's drift hides, so the baseline-then-candidate demo shows a FAIL),
3. the verdict (FAIL, naming the metric and the function) with its reports,
all under perfgate-out/demo/. Exits 0 when the pipeline ran and gave a verdict, whatever it was.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "perfgate-out" / "demo"
KNOB_PCT = "300"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def perfgate(*args: str, env: dict[str, str]) -> int:
    argv = [sys.executable, "-m", "perfgate", *args]
    print("$ perfgate " + " ".join(args), flush=True)
    return subprocess.run(argv, env=env, cwd=ROOT, timeout=900, check=False).returncode  # noqa: S603


def main() -> int:
    grpc, pprof = free_port(), free_port()
    greeter = ROOT / ".tools" / "bin" / "greeter"
    settings = [
        f"target.address=127.0.0.1:{grpc}",
        f"cpu.pprof_url=http://127.0.0.1:{pprof}",
        "service.command=" + json.dumps([str(greeter), "-grpc-addr", f"127.0.0.1:{grpc}",
                                         "-pprof-addr", f"127.0.0.1:{pprof}"]),
        "load.duration_s=3", "load.warmup_s=1", "load.repetitions=6",
        # The baseline comes from another run and has no history, so the gate could not tell a regression from
        # the runner drifting between the two runs (docs/statistics.md, "Without a drift estimate"): the demo
        # states the drift instead, ±10 %, about what runs minutes apart drifted on a shared 2-vCPU VM.
        "compare.run_noise_pct=10",
    ]
    common = ["--config", str(ROOT / "examples" / "perfgate.yml"), "--out", str(OUT)]
    for setting in settings:
        common += ["--set", setting]
    env = {**os.environ, "PATH": f"{ROOT / '.tools' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("GITHUB_ACTIONS", None)

    print(f"== 1/2 baseline: the example greeter as it is ({OUT / 'baseline'})")
    code = perfgate("run", "--baseline", *common, env=env)
    if code != 0:
        print(f"demo: the baseline run failed with exit code {code}", file=sys.stderr)
        return code
    print(f"== 2/2 candidate: main.checksumPayload does +{KNOB_PCT}% of its work ({OUT / 'candidate'})")
    knob_env = {**env, "PERFGATE_SERVICE__ENV": json.dumps({"GREETER_REGRESS_CPU_PCT": KNOB_PCT,
                                                            "GREETER_REGRESS_FUNCTION": "checksumPayload"})}
    code = perfgate("run", "--compare-to", str(OUT / "baseline"), *common, env=knob_env)
    if code not in (0, 1, 4):
        print(f"demo: the candidate run failed with exit code {code}", file=sys.stderr)
        return code
    print(f"\nverdict (exit code {code}): {OUT / 'verdict.json'}")
    for name in ("report.md", "report.html"):
        if (OUT / name).exists():
            print(f"report: {OUT / name}")
    print(f"records: {OUT / 'baseline'}  {OUT / 'candidate'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
