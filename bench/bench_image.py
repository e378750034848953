"""The Action's image: how long a cold build of the Dockerfile takes, where the time goes, and how big it is.

Not a test: it measures. A cold build is what the Action does on a runner that cannot pull the release
image (action-image.sh falls back to `docker build`): no layer cache, the base image already present.
Here the base is the local debootstrapped bookworm (scripts/container.sh base) and podman builds with
chroot isolation, one stage after another; apt, PyPI and the Go module proxy are reached over the network.
Each build step's time comes from the moment its `STEP n/m` line appears to the next one.

Sizes: the image as stored (uncompressed layers), and `podman save` gzip-compressed, about what a pull
transfers.

    .venv/bin/python bench/bench_image.py            # print the section (a cold build: minutes of CPU)
    .venv/bin/python bench/bench_image.py --write    # write it into docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import gzip
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from docs_section import replace_section

ROOT = Path(__file__).resolve().parents[1]
CONTAINER_SH = ROOT / "scripts" / "container.sh"
SECTION = "## The Action's image (bench/bench_image.py)"
STEP = re.compile(r"^(?:\[(?P<stage>[^\]]+)\] )?STEP \d+/\d+: (?P<what>.*)$")


@dataclass(frozen=True)
class Step:
    label: str
    seconds: float


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kwargs)  # noqa: S603


def cold_build(tag: str, base: str, conf: str, *, cache: bool = False) -> tuple[float, list[Step]]:
    """podman build --no-cache, timing each STEP line to the next; (total seconds, steps)."""
    argv = ["podman", "build", "--isolation=chroot", "--layers" if cache else "--no-cache",
            "--build-arg", f"BASE_IMAGE={base}",
            "-f", str(ROOT / "Dockerfile"), "-t", tag, str(ROOT)]
    env = {**os.environ, "CONTAINERS_CONF": conf}
    steps: list[Step] = []
    started = current_at = time.monotonic()
    current = None
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env) as build:  # noqa: S603
        for line in build.stdout:
            match = STEP.match(line.strip())
            if not match:
                continue
            now = time.monotonic()
            if current is not None:
                steps.append(Step(current, now - current_at))
            stage = match.group("stage") or "1/1"
            current, current_at = f"{stage}: {match.group('what')[:90]}", now
        code = build.wait()
    end = time.monotonic()
    if current is not None:
        steps.append(Step(current, end - current_at))
    if code != 0:
        sys.exit(f"the build failed (exit {code}); run it by hand: {' '.join(argv)}")
    return end - started, steps


def sizes(tag: str) -> tuple[int, int]:
    stored = int(run(["podman", "image", "inspect", "--format", "{{.Size}}", tag], timeout=120).stdout.strip())
    with subprocess.Popen(["podman", "save", tag], stdout=subprocess.PIPE) as save:  # noqa: S603, S607
        compressed = len(gzip.compress(save.stdout.read(), compresslevel=6))
    return stored, compressed


def section(total_s: float, steps: list[Step], stored: int, compressed: int, load: tuple[float, ...]) -> str:
    slow = sorted(steps, key=lambda s: s.seconds, reverse=True)[:6]
    lines = [
        SECTION, "",
        f"`bench/bench_image.py`, {date.today().isoformat()}, {os.cpu_count()} CPUs, kernel {platform.release()}, "
        f"load average before the build {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1/5/15 min; other jobs "
        "shared the machine). A cold `podman build --no-cache` of the Dockerfile (chroot isolation, stages one "
        "after another), FROM the local Debian bookworm base, as the Action builds it when it cannot pull the "
        "release image. Docker with BuildKit, on a hosted runner, builds the ghz and Python stages in parallel.",
        "",
        "| | |", "|---|---:|",
        f"| cold build, wall time | {total_s:.0f} s |",
        f"| image size, stored (uncompressed) | {stored / 1e6:.0f} MB |",
        f"| image size, `podman save` gzip-compressed (about what a pull transfers) | {compressed / 1e6:.0f} MB |",
        "", "The slowest steps:", "", "| step | seconds |", "|---|---:|",
    ]
    lines += ["| `" + s.label.replace("|", "\\|") + f"` | {s.seconds:.0f} |" for s in slow]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tag", default="localhost/perfgate-action:bench-cold")
    parser.add_argument("--write", action="store_true", help=f"write the section into docs/benchmarks.md ({SECTION})")
    parser.add_argument("--smoke", action="store_true", help="use the layer cache (checks the script only)")
    args = parser.parse_args()
    if args.smoke and args.write:
        parser.error("--smoke figures are not a cold build: not written")
    base = run([str(CONTAINER_SH), "base"], timeout=1800).stdout.split()[-1]
    conf = run([str(CONTAINER_SH), "conf"], timeout=60).stdout.strip()
    load = os.getloadavg()
    total_s, steps = cold_build(args.tag, base, conf, cache=args.smoke)
    stored, compressed = sizes(args.tag)
    text = section(total_s, steps, stored, compressed, load)
    print(text)
    subprocess.run(["podman", "rmi", "-f", args.tag], capture_output=True, check=False)  # noqa: S603, S607
    if args.write:
        replace_section(SECTION, text)


if __name__ == "__main__":
    main()
