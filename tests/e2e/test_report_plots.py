"""PNG plots and the self-contained HTML report, drawn from real run records.

The records are real: ghz runs against the example service (a baseline build and one with an extra 1 ms
sleep per call) and the run-queue stats come from recorded real bpftrace output (tests/data/runq) through
the real parser. The slow test measures both sides with `perfgate run` itself, bpftrace included.
"""

from __future__ import annotations

import base64
import io
import json
import re
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image as mpimg
from support.greeter import CALL, DATA, base_config, free_port, greeter_argv, wait_for_port, write_config
from support.paths import GHZ, ROOT
from support.report_fixtures import HOSTILE_NAMES, fail_verdict, inconclusive_verdict, move, pass_verdict, with_movers
from support.report_render import inspect_html, rendered

from perfgate.capture.runq_parse import parse_bpftrace_json, stats_from_output
from perfgate.config import load_config
from perfgate.environment import fingerprint
from perfgate.load.ghz import Ghz
from perfgate.load.sample import LoadWindow
from perfgate.procs import stop_process_group
from perfgate.record import RunRecord, load_record
from perfgate.record_parts import CpuCapture, Repetition, RunqCapture
from perfgate.report.html import write_html
from perfgate.report.plots import PLOT_SIZE_PX, SIDE_COLOURS, bucket_label, ecdf_points, write_plots
from perfgate.report.render import render_all

RUNQ_DATA = ROOT / "tests" / "data" / "runq"
WINDOW = LoadWindow(duration_s=None, total=400, concurrency=4, connections=1, rps=0, request_timeout_s=5,
                    max_run_s=20)


# ---------------------------------------------------------------- real records
def _runq_stats(recording: str):
    meta = json.loads((RUNQ_DATA / "meta.json").read_text())[recording]
    output = parse_bpftrace_json((RUNQ_DATA / f"{recording}.jsonl").read_text().splitlines())
    return stats_from_output(output, returncode=meta["returncode"], depth_interval_ms=100, ncpus=2,
                             service_comm=meta["service_comm"], service_pids=(meta["service_pid"],))


def _measure(folder: Path, role: str, address: str, recording: str, repetitions: int = 3) -> RunRecord:
    pairs = [f"target.address={address}", f"target.call={CALL}", f"target.data={json.dumps(DATA)}"]
    target = load_config(None, environ={}, set_args=pairs).target
    stats = _runq_stats(recording)
    reps = []
    for index in range(1, repetitions + 1):
        load_file = f"load/rep-{index:02d}.json"
        sample = Ghz(str(GHZ)).run(target, WINDOW, folder / load_file, name=f"rep {index}")
        reps.append(Repetition(index=index, started_at="2026-01-02T03:04:05Z",
                               ended_at="2026-01-02T03:04:06Z", load=sample, load_file=load_file,
                               cpu=CpuCapture(status="disabled", reason="cpu.enabled is false"),
                               runq=RunqCapture(status=stats.status, reason=None, file=None, stats=stats)))
    record = RunRecord(role=role, created_at="2026-01-02T03:04:05Z", config_digest="test",
                       target={"address": address, "call": CALL}, load_settings={"total": WINDOW.total},
                       environment=fingerprint(Ghz(str(GHZ))), repetitions=tuple(reps), complete=True)
    return record.save(folder)


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("records")
    folders = []
    for role, knobs, recording in (("baseline", (), "pid_filter_only"),
                                   ("candidate", ("-regress-sleep", "1ms"), "greeter_ok")):
        grpc, pprof = free_port(), free_port()
        process = subprocess.Popen(greeter_argv(grpc, pprof, *knobs), stdout=subprocess.DEVNULL,  # noqa: S603
                                   stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_for_port(grpc)
            folders.append(_measure(root / role, role, f"127.0.0.1:{grpc}", recording).path)
        finally:
            stop_process_group(process)
    return folders[0], folders[1]


def _pointing_at(verdict, baseline: Path, candidate: Path):
    return replace(verdict, baseline=replace(verdict.baseline, path=str(baseline)),
                   candidate=replace(verdict.candidate, path=str(candidate)))


def _assert_png(path: Path, key: str) -> np.ndarray:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = mpimg.imread(path)
    width, height = PLOT_SIZE_PX[key]
    assert pixels.shape[:2] == (height, width), (key, pixels.shape)
    assert pixels[..., :3].std() > 0.05, f"{key} looks blank"
    return pixels


def _has_colour(pixels: np.ndarray, hex_colour: str, at_least: int = 50) -> bool:
    rgb = np.array([int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    close = np.abs(pixels[..., :3] - rgb).max(axis=-1) < 0.02
    return int(close.sum()) >= at_least


# ---------------------------------------------------------------- plots
def test_every_plot_from_real_records(records, tmp_path):
    verdict = _pointing_at(fail_verdict(), *records)
    plots = write_plots(verdict, tmp_path)
    assert plots.skipped == {}
    assert sorted(plots) == sorted(PLOT_SIZE_PX)
    for key, path in plots.items():
        assert path == tmp_path / f"{key}.png"
        pixels = _assert_png(path, key)
        if key != "cpu_delta":
            for role in ("baseline", "candidate"):
                assert _has_colour(pixels, SIDE_COLOURS[role]), (key, role)


def test_plots_are_skipped_with_a_reason_when_inputs_are_missing(tmp_path):
    verdict = inconclusive_verdict()  # no CPU profiles, record folders that do not exist
    plots = write_plots(verdict, tmp_path)
    assert sorted(plots) == ["percentiles"]  # from the verdict's per-repetition p95 alone
    _assert_png(plots["percentiles"], "percentiles")
    assert plots.skipped["cpu_delta"] == ("no CPU profiles (cpu profile unavailable: GET http://127.0.0.1:6060"
                                          "/debug/pprof/profile failed: connection refused)")
    assert "perfgate-out/baseline: not a folder" in plots.skipped["latency_cdf"]
    assert plots.skipped["runq_histogram"].startswith("no run-queue data (")


def test_plots_draw_from_the_records_the_caller_loaded(records, tmp_path):
    verdict = _pointing_at(fail_verdict(), *records)
    loaded = [load_record(folder) for folder in records]
    from_disk = write_plots(verdict, tmp_path / "disk")
    handed = write_plots(verdict, tmp_path / "handed", loaded)
    assert sorted(handed) == sorted(from_disk) == sorted(PLOT_SIZE_PX)
    for key in PLOT_SIZE_PX:
        assert handed[key].read_bytes() == from_disk[key].read_bytes(), key
    # A handed record is the side whose path it has: one repetition fewer changes the percentile strips, while a
    # record of another folder is not used (that side is read from its folder).
    fewer = replace(loaded[0], repetitions=loaded[0].repetitions[:1])
    elsewhere = replace(loaded[1], path=tmp_path / "elsewhere", repetitions=loaded[1].repetitions[:1])
    changed = write_plots(verdict, tmp_path / "changed", [fewer, elsewhere])
    assert changed["percentiles"].read_bytes() != from_disk["percentiles"].read_bytes()
    only_elsewhere = write_plots(verdict, tmp_path / "elsewhere-out", [elsewhere])
    assert only_elsewhere["percentiles"].read_bytes() == from_disk["percentiles"].read_bytes()


def test_a_damaged_record_skips_its_plots_instead_of_crashing(records, tmp_path):
    baseline = tmp_path / "baseline"
    baseline.mkdir()
    (baseline / "record.json").write_text("{not json", encoding="utf-8")
    candidate = tmp_path / "candidate"
    subprocess.run(["cp", "-r", str(records[1]), str(candidate)], check=True)  # noqa: S603, S607
    for damaged in (candidate / "load").glob("rep-02.*"):  # the report and its latency array
        damaged.unlink()
    verdict = _pointing_at(replace(pass_verdict(), cpu=replace(pass_verdict().cpu, risers=(), fallers=())),
                           baseline, candidate)
    plots = write_plots(verdict, tmp_path / "out")
    assert "rep-02." in plots.skipped["latency_cdf"]
    assert "No such file" in plots.skipped["latency_cdf"] or "no report" in plots.skipped["latency_cdf"]
    assert plots.skipped["cpu_delta"] == "no function's CPU cost moved"
    assert "runq_histogram" in plots and "percentiles" in plots  # the candidate's record.json is intact


def test_cpu_bars_only_for_functions_that_moved_significantly(tmp_path):
    noise = (move("runtime.mallocgc", 1.0, 1.2, p=0.4), move("main.handle", 2.0, 1.9, p=0.7))
    quiet = replace(pass_verdict(), cpu=replace(pass_verdict().cpu, risers=noise[:1], fallers=noise[1:]))
    assert "significantly" in write_plots(quiet, tmp_path / "quiet").skipped["cpu_delta"]
    mover = replace(quiet, cpu=replace(quiet.cpu, risers=(move("main.checksum", 1.0, 1.5), *noise[:1])))
    assert "cpu_delta" in write_plots(mover, tmp_path / "mover")


def test_cdf_keeps_its_shape_when_subsampled():
    values = np.sort((np.random.default_rng(1).lognormal(size=50_000) * 1e6).astype(np.uint32))  # ns
    xs, ys = ecdf_points([values], values.size, max_points=500)
    assert xs.tolist() == np.quantile(values, ys, method="inverted_cdf").tolist()
    runs = [np.sort(part) for part in np.array_split(np.random.default_rng(2).permutation(values), 3)]
    assert ecdf_points(runs, values.size, max_points=500)[0].tolist() == xs.tolist()  # unmerged runs, same points
    assert len(xs) == 500 and ys[-1] == 1.0 and xs[-1] == values.max()
    assert abs(np.interp(0.5, ys, xs) - np.median(values)) < 0.02e6


def test_runq_bucket_labels():
    assert [bucket_label(0, 0), bucket_label(1, 1), bucket_label(4, 7), bucket_label(1024, 2047)] == \
           ["0", "1", "4–8", "1k–2k"]
    assert bucket_label(None, 9) == "<10" and bucket_label(50, None) == "≥50"


# ---------------------------------------------------------------- HTML
URL_ATTRIBUTES = {"src", "href", "action", "formaction", "srcset", "poster", "data", "background",
                  "xlink:href", "cite", "longdesc", "manifest", "ping"}
LOADING_TAGS = {"script", "link", "iframe", "frame", "object", "embed", "base", "form", "audio", "video",
                "source", "track", "svg", "use"}


def _assert_loads_nothing(text: str) -> None:
    """No element or style in the page can make the browser fetch anything (the CSP forbids it too)."""
    page = inspect_html(text)
    assert not page.tag_names & LOADING_TAGS, page.tag_names & LOADING_TAGS
    for tag, attrs in page.tags:
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            if name in URL_ATTRIBUTES:
                assert (tag, name) == ("img", "src") and value.startswith("data:image/png;base64,"), tag
    style = re.search(r"<style>(.*?)</style>", text, re.S).group(1)
    assert "url(" not in style and "@import" not in style and "//" not in style


def test_html_report_is_self_contained_and_embeds_every_plot(records, tmp_path):
    verdict = _pointing_at(_hostile(fail_verdict()), *records)
    files = render_all(verdict, tmp_path, title="perfgate <b>demo</b>")
    text = files.html.read_text(encoding="utf-8")
    _assert_loads_nothing(text)
    page = inspect_html(text)
    images = [attrs for tag, attrs in page.tags if tag == "img"]
    assert len(images) == len(PLOT_SIZE_PX)
    for attrs in images:
        assert attrs["src"].startswith("data:image/png;base64,")
        pixels = mpimg.imread(io.BytesIO(base64.b64decode(attrs["src"].split(",", 1)[1])), format="png")
        assert pixels.shape[:2] == (int(attrs["height"]), int(attrs["width"]))
    csp = next(attrs for tag, attrs in page.tags if tag == "meta" and attrs.get("http-equiv"))
    assert csp["content"] == "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
    assert "<title>perfgate &lt;b&gt;demo&lt;/b&gt;: FAIL</title>" in text


@pytest.mark.parametrize("bad", [
    '<img src="https://example.invalid/x.png">', '<link rel="stylesheet" href="x.css">', '<script>1</script>',
    '<a href="http://example.invalid">x</a>', '<p onclick="x()">x</p>'])
def test_the_self_containment_check_catches_references(bad):
    page = f"<html><head><style>p {{}}</style></head><body>{bad}</body></html>"
    with pytest.raises(AssertionError):
        _assert_loads_nothing(page)
    with pytest.raises(AssertionError):
        _assert_loads_nothing("<style>body { background: url(http://example.invalid/x) }</style>")


def test_html_has_the_same_content_as_the_markdown(records, tmp_path):
    verdict = _pointing_at(_hostile(fail_verdict()), *records)
    files = render_all(verdict, tmp_path)
    shown = inspect_html(files.html.read_text(encoding="utf-8")).all_text
    for text in (*verdict.reasons, *verdict.notes, verdict.headline, verdict.cpu.pprof_diff_command,
                 *(m.function for m in verdict.cpu.risers), *(m.function for m in verdict.cpu.fallers)):
        assert " ".join(text.split("\n")) in shown, text
    for heading in ("Metrics", "p95 latency per repetition", "CPU: functions that moved",
                    "Kernel view: run-queue latency", "Gate rules: 6 checked, 3 not passing"):
        assert heading in shown
    markdown = files.markdown.read_text(encoding="utf-8")
    assert markdown.startswith("## perfgate\n") and len(markdown) <= 65_000
    assert sorted(files.as_dict()) == sorted(["markdown", "html", *PLOT_SIZE_PX])


def test_html_says_which_plots_were_not_drawn_and_why(tmp_path):
    verdict = inconclusive_verdict()
    plots = write_plots(verdict, tmp_path)
    text = write_html(verdict, tmp_path, plots).read_text(encoding="utf-8")
    shown = inspect_html(text).all_text
    assert "Plot “Latency CDF” not drawn: no per-call latencies to plot" in shown
    assert text.count("<img ") == 1


def test_html_of_thousands_of_movers_renders_the_capped_lists(tmp_path):
    verdict = with_movers(fail_verdict(), 2000)
    text = write_html(verdict, tmp_path).read_text(encoding="utf-8")
    assert "… 1,985 more functions not shown here; all are in verdict.json." in text
    assert "<script" not in text.replace("&lt;script", "")


def _hostile(verdict):
    return replace(verdict, notes=HOSTILE_NAMES, reasons=(*verdict.reasons, *HOSTILE_NAMES[:4]))


# ---------------------------------------------------------------- the real stack
@pytest.fixture(scope="module")
def measured(tmp_path_factory) -> Path:
    """`perfgate run --baseline`, then `perfgate run` of a build with 60 % more CPU work in one stage:
    real ghz, pprof and bpftrace (where it works here). Returns the output folder holding both records."""
    from perfgate.cli import main

    root = tmp_path_factory.mktemp("measured")
    out = root / "out"
    for role, knobs in (("baseline", ()), ("candidate", ("-regress-cpu-pct", "60"))):
        grpc, pprof = free_port(), free_port()
        process = subprocess.Popen(greeter_argv(grpc, pprof, *knobs), stdout=subprocess.DEVNULL,  # noqa: S603
                                   stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_for_port(grpc)
            wait_for_port(pprof)
            config = base_config(f"127.0.0.1:{grpc}", pprof_url=f"http://127.0.0.1:{pprof}",
                                 kernel={"enabled": True, "service_comm": "greeter"},
                                 load={"duration_s": 1.5, "warmup_s": 0, "repetitions": 2})
            folder = root / role
            folder.mkdir()
            argv = ["run", "--config", str(write_config(folder, config)), "--out", str(out)]
            assert main(argv + (["--baseline"] if role == "baseline" else [])) == 0
        finally:
            stop_process_group(process)
    return out


@pytest.mark.slow
def test_plots_of_records_measured_by_perfgate_run(measured, tmp_path):
    verdict = _pointing_at(fail_verdict(), measured / "baseline", measured / "candidate")
    files = render_all(verdict, tmp_path)
    assert {"latency_cdf", "percentiles", "cpu_delta"} <= set(files.plots)
    assert set(files.skipped_plots) <= {"runq_histogram"}, files.skipped_plots  # bpftrace may be unavailable
    for key, path in files.plots.items():
        _assert_png(path, key)
    _assert_loads_nothing(files.html.read_text(encoding="utf-8"))


@pytest.mark.slow
def test_reports_of_the_real_gate(measured):
    """`perfgate compare` on the measured records: the real gate decides, publish calls these renderers."""
    pytest.importorskip("perfgate.compare.profile", reason="gate.py needs compare/profile.py, not there yet")
    from perfgate.cli import main
    from perfgate.verdict import Verdict

    out = measured / "compared"
    config = measured.parent / "candidate" / "perfgate.yml"
    code = main(["compare", "--config", str(config), "--baseline", str(measured / "baseline"),
                 "--candidate", str(measured / "candidate"), "--out", str(out)])
    verdict = Verdict.load(out)
    assert code == verdict.exit_code
    pngs = list(out.glob("*.png"))
    assert {"latency_cdf", "percentiles"} <= {p.stem for p in pngs}
    for path in pngs:
        _assert_png(path, path.stem)
    html = (out / "report.html").read_text(encoding="utf-8")
    _assert_loads_nothing(html)
    assert html.count("<img ") == len(pngs)
    markdown = (out / "report.md").read_text(encoding="utf-8")
    page = rendered(markdown)
    metrics = page.tables[0]
    assert metrics[0][0] == "Metric" and {"latency.p95", "rps"} <= {row[0] for row in metrics[1:]}
    assert next(row for row in metrics if row[0] == "latency.p95")[6] != "–", "rule outcome beside its metric"
