"""The Markdown report: golden files, hostile text rendered by GitHub's cmark-gfm, truncation, Mermaid.

Regenerate the golden files after an intended change with PERFGATE_UPDATE_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import replace

import pytest
from support.paths import GOLDEN
from support.report_fixtures import (
    HOSTILE_NAMES,
    fail_verdict,
    inconclusive_verdict,
    pass_verdict,
    summary,
    with_movers,
)
from support.report_render import ZWSP, rendered

from perfgate.report.blocks import Chart
from perfgate.report.markdown import COMMENT_LIMIT_CHARS, render_markdown
from perfgate.report.mermaid import mermaid_number, xychart
from perfgate.verdict import verdict_from_dict

VERDICTS = {"pass": pass_verdict, "fail": fail_verdict, "inconclusive": inconclusive_verdict}
OUR_TAGS = {"h2", "h3", "p", "strong", "code", "ul", "li", "table", "thead", "tbody", "tr", "th", "td",
            "details", "summary", "pre", "blockquote", "br", "sub"}


# ---------------------------------------------------------------- golden files
@pytest.mark.parametrize("name", sorted(VERDICTS))
def test_markdown_matches_golden_file(name):
    markdown = render_markdown(VERDICTS[name]())
    path = GOLDEN / f"report_{name}.md"
    if os.environ.get("PERFGATE_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(markdown, encoding="utf-8")
    expected = path.read_text(encoding="utf-8")
    if markdown != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), markdown.splitlines(True),
                                            f"golden/{path.name}", "rendered"))
        pytest.fail(f"Markdown differs from {path} (PERFGATE_UPDATE_GOLDEN=1 regenerates it):\n{diff}")


@pytest.mark.parametrize("name", sorted(VERDICTS))
def test_verdict_read_back_from_json_renders_the_same(name):
    verdict = VERDICTS[name]()
    assert render_markdown(verdict_from_dict(verdict.to_dict())) == render_markdown(verdict)


# ---------------------------------------------------------------- content
def test_fail_report_leads_with_the_outcome_reason_and_biggest_mover():
    lines = render_markdown(fail_verdict()).splitlines()
    assert lines[0] == "## perfgate"
    headline = rendered(lines[2]).all_text
    assert headline.startswith("❌ FAIL — latency.p95 regressed +15.0 %")
    assert "biggest mover: latency.p95 +15.0 % (+1.511 ms)" in headline


def test_headline_does_not_repeat_the_outcome_word():
    verdict = replace(fail_verdict(), headline="FAIL: latency.p95#0: regression +15 %")
    assert "<strong>❌ FAIL</strong> — latency.p95#&#8203;0: regression +15 %" in render_markdown(verdict)


def test_metric_table_has_both_sides_change_ci_p_and_rule_outcome():
    page = rendered(render_markdown(fail_verdict()))
    metrics = page.tables[0]
    # the level the intervals were computed at: alpha 0.05 in each tail, 8 vs 8 repetitions
    verdict = fail_verdict()
    level = verdict.metrics[0].ci_level
    assert {m.ci_level for m in verdict.metrics} == {level} and 0.90 <= level < 0.95
    assert metrics[0] == ["Metric", "Baseline", "Candidate", "Change", f"{int(level * 1000) / 10:.1f} % CI", "p",
                          "Rule"]
    p95 = next(row for row in metrics if row[0] == "latency.p95")
    assert p95[1:4] == ["10.07 ms", "11.59 ms", "+15.0 % (+1.511 ms)"]
    assert p95[4].startswith("[+13") and "adj. 0.0008" in p95[5] and p95[6] == "❌ FAIL (+10.0 %)"
    rps = next(row for row in metrics if row[0] == "rps")
    assert rps[6] == "✅ PASS (-10.0 %)"


def test_cpu_movers_and_pprof_command_are_shown():
    markdown = render_markdown(fail_verdict())
    page = rendered(markdown)
    risers = next(t for t in page.tables if t[0][0] == "Function" and t[1][0] == "main.checksumPayload")
    assert risers[1][2:7] == ["31.2 µs", "40.5 µs", "+9.3 µs", "+29.8 %", "12.5 → 14.7 %"]
    assert "```sh\ngo tool pprof -top -normalize -diff_base=perfgate-out/baseline/cpu/rep-01" in markdown
    assert "<details open><summary>CPU: functions that moved</summary>" in markdown  # open on FAIL


def test_kernel_view_shows_both_sides_and_the_contended_runner():
    page = rendered(render_markdown(inconclusive_verdict()))
    kernel = next(t for t in page.tables if t[0] == ["", "Baseline", "Candidate"])
    assert kernel[1] == ["run-queue latency p99 (service)", "48 µs", "160 µs"]
    assert kernel[2] == ["run-queue latency p99 (whole machine)", "70 µs", "410 µs"]
    assert "Longest run of consecutive run-queue depth samples above 5 in the candidate: 12." in page.all_text
    contention = next(t for t in page.tables if t[0][:2] == ["", "Starved windows"])
    assert contention[1][:2] == ["baseline", "0 of 4"] and contention[2][:2] == ["candidate", "3 of 4"]
    assert contention[2][3] == "23 % (0.46 CPUs)"  # the median of its windows (45, 1, 45, 1 %)
    assert "The runner was contended" in page.all_text
    assert "other processes starved the candidate in 50 % of its windows, the baseline in 0 %" in page.all_text
    assert "candidate, repetition 4: throttled by a 0.5-CPU limit in 60 % of periods" in page.all_text
    # process names come from the machine: shown as text, never as markup
    assert "main.(*T).<scri (4242) 0.90 CPUs" in page.all_text


def test_inconclusive_says_why_and_what_to_do():
    markdown = render_markdown(inconclusive_verdict())
    assert "### Why inconclusive, and what to do" in markdown
    text = rendered(markdown).all_text
    for suggestion in inconclusive_verdict().suggestions:
        assert suggestion in text
    assert "too few repetitions to ever detect a change" in text


def test_unavailable_collectors_are_said_not_hidden():
    text = rendered(render_markdown(pass_verdict())).all_text
    assert "Kernel view unavailable: bpftrace not found" in text
    text = rendered(render_markdown(inconclusive_verdict())).all_text
    expected = "CPU profile unavailable: GET http://127.0.0.1:6060/debug/pprof/profile failed"
    assert expected in text.replace(ZWSP, "")


def test_no_baseline_renders_the_candidate_alone():
    verdict = replace(pass_verdict(), baseline=None, metrics=(), rules=(), headline="no baseline yet")
    markdown = render_markdown(verdict)
    assert "no baseline" in markdown and "xychart-beta" in markdown
    assert "### Metrics" not in markdown


# ---------------------------------------------------------------- hostile text
def _hostile_verdict():
    verdict = fail_verdict()
    return replace(verdict, notes=HOSTILE_NAMES, reasons=(*verdict.reasons, *HOSTILE_NAMES),
                   headline="regressed in `main.<img src=x onerror=alert(1)>` @team")


@pytest.mark.parametrize("name", sorted(VERDICTS))
def test_rendered_report_has_no_html_links_images_or_comments_from_outside(name):
    verdict = _hostile_verdict() if name == "fail" else VERDICTS[name]()
    markdown = render_markdown(verdict)
    assert "<!--" not in markdown and "-->" not in markdown  # nothing can open or close a marker comment
    page = rendered(markdown)
    assert not page.comments
    assert page.tag_names <= OUR_TAGS, page.tag_names
    text = page.all_text
    assert not re.search(r"@(?!\u200b)", text), "every @ is followed by a zero-width space (no pings)"
    assert not re.search(r"#\d", "".join(page.prose)), "no #123 cross-references outside code"


def test_hostile_function_names_render_as_themselves_in_their_own_cells():
    page = rendered(render_markdown(fail_verdict()))
    risers = next(t for t in page.tables if t[0][0] == "Function" and t[1][0] == "main.checksumPayload")
    assert all(len(row) == 9 for row in risers), "a name with | must not add table cells"
    names = [row[0].replace(ZWSP, "") for row in risers[1:]]
    assert names == ["main.checksumPayload", "main.(*T).<script>alert(1)</script>", "a|b", "`code`",
                     "@everyone", "[x](javascript:y)"]


def test_hostile_notes_and_refs_render_as_plain_text():
    page = rendered(render_markdown(_hostile_verdict()))
    text = page.all_text.replace(ZWSP, "")
    for name in HOSTILE_NAMES:
        assert " ".join(name.split("\n")) in text, name
    assert "regressed in `main.<img src=x onerror=alert(1)>` @team" in text
    assert "(feature/<script>@everyone|x)" in text


def test_code_block_fence_cannot_be_closed_from_inside():
    verdict = fail_verdict()
    command = "go tool pprof -diff_base '```' b.pb.gz\n````\n<!-- x --> @everyone"
    markdown = render_markdown(replace(verdict, cpu=replace(verdict.cpu, pprof_diff_command=command)))
    page = rendered(markdown)
    pre = [t for t in page.tags if t[0] == "pre"]
    assert len(pre) == 2  # the Mermaid chart and the command, nothing escaped from the fence
    assert "`````sh\n" in markdown and "<\u200b!-- x --\u200b>" in markdown


# ---------------------------------------------------------------- size limit
def test_thousands_of_movers_stay_under_the_limit_and_say_how_many_are_not_shown():
    verdict = with_movers(fail_verdict(), 3000)
    markdown = render_markdown(verdict)
    assert len(markdown) < COMMENT_LIMIT_CHARS
    assert "… 2,985 more functions not shown here; all are in verdict.json." in markdown
    assert "Shortened to fit" not in markdown


def test_thousands_of_movers_all_requested_are_cut_to_the_limit_saying_what_was_cut():
    markdown = render_markdown(with_movers(fail_verdict(), 3000), max_movers=None)
    assert len(markdown) <= 65_000
    note = markdown.rstrip().splitlines()[-1]
    assert note.startswith("> Shortened to fit GitHub's comment limit of 65,536 characters: "
                           "left out Records, Notes")
    assert re.search(r"showed [\d,]+ of 6,000 rows of CPU: functions that moved", note), note
    assert "<summary>CPU: functions that moved</summary>" in markdown and "pkg0." in markdown
    _assert_well_formed(markdown)
    assert "latency.p95 regressed" in markdown and "### Metrics" in markdown


def test_sections_are_dropped_lowest_priority_first_then_rows():
    verdict = replace(fail_verdict(), notes=tuple(f"note {i} " + "n" * 100 for i in range(200)))
    markdown = render_markdown(verdict, max_chars=12_000)
    assert len(markdown) <= 12_000
    assert "Shortened to fit" in markdown and "left out Records, Notes" in markdown
    assert "<summary>Notes" not in markdown and "### Metrics" in markdown
    _assert_well_formed(markdown)


def test_a_huge_reason_list_is_cut_by_rows_and_finally_by_text():
    verdict = replace(inconclusive_verdict(), reasons=tuple(f"reason {i}: " + "r" * 500 for i in range(400)))
    markdown = render_markdown(verdict, max_chars=1_000)
    assert len(markdown) <= 1_000
    assert markdown.startswith("## perfgate\n\n<strong>❓ INCONCLUSIVE</strong>")
    assert "Shortened to fit" in markdown
    _assert_well_formed(markdown)


def test_max_chars_below_a_useful_size_is_refused():
    with pytest.raises(ValueError, match="max_chars must be at least 1000"):
        render_markdown(fail_verdict(), max_chars=500)


def _assert_well_formed(markdown: str) -> None:
    assert markdown.count("<details") == markdown.count("</details>")
    fences = [line for line in markdown.splitlines() if line.startswith("```")]
    assert len(fences) % 2 == 0, fences


# ---------------------------------------------------------------- Mermaid chart
XYCHART_LINE = re.compile(
    r'^(%%\{init: \{"themeVariables": \{"xyChart": '
    r'\{"plotColorPalette": "#[0-9a-f]{6}(, #[0-9a-f]{6})*"\}\}\}\}%%'
    r'|xychart-beta'
    r'|    title "[^"]*"'
    r'|    x-axis "repetition" \[\d+(, \d+)*\]'
    r'|    y-axis "[^"]*"'
    r'|    line \[-?\d+(\.\d+)?(, -?\d+(\.\d+)?)*\])$')


def test_p95_chart_is_a_mermaid_xychart_of_both_sides():
    markdown = render_markdown(fail_verdict())
    block = re.search(r"```mermaid\n(.*?)\n```", markdown, re.S).group(1)
    for line in block.splitlines():
        assert XYCHART_LINE.match(line), line
    lines = [line for line in block.splitlines() if line.startswith("    line")]
    assert lines[0] == "    line [10.1, 10.3, 9.9, 10, 10.2, 10.15, 9.95, 10.05]"
    assert len(lines) == 2
    assert "<sub>blue: baseline · orange: candidate</sub>" in markdown


def test_chart_accepts_only_finite_numbers_and_plain_decimals():
    chart = Chart('p95 "quoted" %% title', "ms", (("baseline", (1e-7, 12345678.9, float("nan"))),
                                                   ("candidate", (float("inf"), -2.5))))
    source = xychart(chart)
    assert 'title "p95 quoted title"' in source
    assert "line [0, 12345678.9]" in source and "line [-2.5]" in source
    assert "e-" not in source and "nan" not in source.lower() and "inf" not in source.lower()
    with pytest.raises(ValueError):
        mermaid_number(float("nan"))


def test_a_lone_candidate_keeps_its_colour():
    verdict = replace(pass_verdict(), baseline=None)
    markdown = render_markdown(verdict)
    assert '"plotColorPalette": "#ff7f0e"' in markdown and "<sub>orange: candidate</sub>" in markdown


def test_no_chart_without_per_repetition_values():
    verdict = replace(pass_verdict(), baseline=None, candidate=summary("candidate", ()))
    assert "mermaid" not in render_markdown(verdict)


def test_the_movers_note_says_when_the_services_own_functions_weighed_more():
    failed = fail_verdict()
    plain = render_markdown(failed)
    assert "Benjamini-Hochberg-adjusted over the 50 functions" in plain and "weighted" not in plain
    weighted = render_markdown(replace(failed, cpu=replace(failed.cpu, functions_own=4)))
    assert ("weighted Benjamini-Hochberg-adjusted over the 50 functions with at least 1 % of the CPU; the 4 that "
            "are the service's own code, not the standard library's or a dependency's, hold 50 % of its weight"
            ) in weighted
    most = render_markdown(replace(failed, cpu=replace(failed.cpu, functions_own=40)))  # weights equal: plain BH
    assert "weighted" not in most and "Benjamini-Hochberg-adjusted over the 50 functions" in most


def test_a_cpu_rise_with_no_function_named_is_not_called_noise():
    failed = fail_verdict()
    unnamed = tuple(replace(m, p_adjusted=0.3, significant=False) for m in failed.cpu.risers)
    text = render_markdown(replace(failed, cpu=replace(failed.cpu, risers=unnamed, fallers=())))
    assert "The total rose, but no single function's change is significant" in text
    assert "no function moved beyond sampling noise" not in text
    quiet = pass_verdict()  # its CPU rule passed: nothing rose, and none named is noise
    text = render_markdown(replace(quiet, cpu=replace(quiet.cpu, risers=unnamed, fallers=())))
    assert "no function moved beyond sampling noise" in text and "The total rose" not in text
