"""Publish a verdict that is already saved: reports, job summary, outputs, annotations, PR comment, Pushgateway.

Nothing here changes the gate's exit code: the verdict (and the records) are on disk before this
runs, and each publishing failure becomes a warning that says what went wrong and what to do.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from perfgate import gha
from perfgate.config import Config
from perfgate.errors import EXIT_INCONCLUSIVE, EXIT_PASS, EXIT_TOOL, PerfgateError
from perfgate.metrics import outputs as metric_outputs
from perfgate.verdict import VERDICT_FILE, Verdict

if TYPE_CHECKING:
    from perfgate import github
    from perfgate.record import RunRecord

# perfgate.github (PyGithub, requests) is imported only where a pull request is at hand: a compare outside a
# pull request, or a run without a comment to post, does not pay for it.
FORK_SUMMARY_NOTE = ("\n\n> **perfgate could not comment on this pull request** ({reason}). "
                     "The report is above in this job summary.\n")


@dataclass(frozen=True)
class Published:
    markdown: str
    files: Mapping[str, Path]
    comment: github.CommentResult | None
    warnings: tuple[str, ...]


def publish_verdict(verdict: Verdict, config: Config, out: Path, *, environ: Mapping[str, str] | None = None,
                    stdout: TextIO | None = None, pr: github.PrContext | None = None,
                    records: Sequence[RunRecord] = ()) -> Published:
    """`records`: the verdict's run records when the caller has them loaded (the plots draw from them)."""
    environ = os.environ if environ is None else environ
    stdout = gha.raw_stream(stdout or sys.stdout)  # our own workflow commands; external text in them is escaped
    in_actions = gha.in_github_actions(environ)
    token = environ.get("GITHUB_TOKEN", "")
    if in_actions and token:
        print(gha.add_mask(token), file=stdout, flush=True)
    warnings: list[str] = []
    markdown, files = _render(verdict, config, out, warnings, records)
    pr = pr or _pr_from_event(environ, out, warnings)
    comment = _comment(verdict, config, markdown, pr, token, environ, in_actions, warnings)
    if in_actions:
        _annotate(verdict, stdout)
        summary = markdown + (FORK_SUMMARY_NOTE.format(reason=_one_line(comment.message))
                              if comment and not comment.ok else "")
        gha.append_step_summary(summary, environ.get("GITHUB_STEP_SUMMARY"))
        _set_outputs(verdict, out, files, environ, warnings)
    _push(verdict, config, environ, warnings)
    for warning in warnings:
        line = gha.annotation("warning", warning, "perfgate") if in_actions else f"perfgate: warning: {warning}"
        print(line, file=stdout if in_actions else sys.stderr, flush=True)
    return Published(markdown, files, comment, tuple(warnings))


def publish_saved_verdict(config: Config, source: Path, *, pr_number: int | None,
                          environ: Mapping[str, str] | None = None) -> int:
    """`perfgate publish --from DIR`: the fork-safe workflow_run job posts what the PR job measured."""
    environ = os.environ if environ is None else environ
    folder = source if source.is_dir() else source.parent
    verdict = as_untrusted(Verdict.load(source / VERDICT_FILE if source.is_dir() else source), folder)
    pr = _pr_for_saved(folder, pr_number, environ)
    result = publish_verdict(verdict, config, folder, environ=environ, pr=pr)
    if pr is not None and (result.comment is None or not result.comment.ok):
        return EXIT_TOOL
    return EXIT_PASS


def as_untrusted(verdict: Verdict, folder: Path) -> Verdict:
    """A saved verdict may come from a fork's artifact: it names record folders to read only inside `folder`,
    and its `go tool pprof` command is shown only when it is exactly the command perfgate writes (a fork could
    otherwise put `; curl … | sh` into a code block the bot posts for maintainers to paste)."""
    sides = {name: replace(summary, path=f"{summary.path} (outside {folder}: not read)")
             for name in ("baseline", "candidate") if (summary := getattr(verdict, name)) is not None
             and not Path(summary.path).resolve().is_relative_to(folder.resolve())}
    command = verdict.cpu.pprof_diff_command
    if command and not _is_pprof_diff_command(command):
        sides["cpu"] = replace(verdict.cpu, pprof_diff_command=None)
    return replace(verdict, **sides)


def _is_pprof_diff_command(command: str) -> bool:
    """`go tool pprof` with -diff_base=A, -normalize, -top or -http=localhost:0, then B: quoted as shlex.join
    quotes it, so a shell runs that one command, whatever the file names hold."""
    try:
        words = shlex.split(command)
    except ValueError:
        return False
    flags = words[3:-1]
    shape = (len(words) >= 5 and words[:3] == ["go", "tool", "pprof"]
             and all(flag in ("-top", "-normalize", "-http=localhost:0") or flag.startswith("-diff_base=")
                     for flag in flags))
    return shape and shlex.join(words) == command


# ---------------------------------------------------------------- pieces
def _render(verdict: Verdict, config: Config, out: Path, warnings: list[str],
            records: Sequence[RunRecord] = ()) -> tuple[str, dict[str, Path]]:
    from perfgate.report.markdown import render_markdown
    from perfgate.report.render import render_all

    try:
        files = render_all(verdict, out, title=config.report.title, plots=config.report.plots, records=records)
        return files.markdown.read_text(encoding="utf-8"), files.as_dict()
    except Exception as error:  # noqa: BLE001 - a broken renderer must not lose the verdict or its exit code
        warnings.append(f"could not write the reports: {type(error).__name__}: {error}")
        return render_markdown(verdict, title=config.report.title), {}


def _pr_from_event(environ: Mapping[str, str], out: Path, warnings: list[str]) -> github.PrContext | None:
    """On pull_request events: the PR, also saved as pr.json for a later workflow_run job."""
    event_path = environ.get("GITHUB_EVENT_PATH")
    if environ.get("GITHUB_EVENT_NAME") not in ("pull_request", "pull_request_target") or not event_path:
        return None
    from perfgate import github

    try:
        pr = github.read_pr_context(event_path)
        github.write_pr_context(out / github.PR_CONTEXT_FILE, pr)
        return pr
    except (PerfgateError, OSError) as error:
        warnings.append(f"could not read the pull request from the event: {error}")
        return None


def _pr_for_saved(folder: Path, pr_number: int | None, environ: Mapping[str, str]) -> github.PrContext | None:
    from perfgate import github

    pr_file = folder / github.PR_CONTEXT_FILE
    if environ.get("GITHUB_EVENT_NAME") == "workflow_run" and environ.get("GITHUB_EVENT_PATH"):
        # pr.json is the fork's word; the event and the API are GitHub's. docs/security.md.
        run = github.read_workflow_run_event(environ["GITHUB_EVENT_PATH"])
        claimed = github.read_pr_context_file(pr_file, expected_repo=run.repo,
                                              expected_head_sha=run.head_sha)
        if pr_number is not None:
            claimed = replace(claimed, pr_number=pr_number)
        return github.verify_pr_for_run(claimed, run, token=environ.get("GITHUB_TOKEN", ""),
                                        api_url=github.api_url_from_env(environ))
    if pr_file.exists():
        pr = github.read_pr_context_file(pr_file)
        return pr if pr_number is None else github.PrContext(pr.repo, pr_number, pr.head_sha, pr.base_ref,
                                                             pr.is_fork)
    if pr_number is not None and environ.get("GITHUB_REPOSITORY"):
        return github.PrContext(environ["GITHUB_REPOSITORY"], pr_number, "", "", False)
    return None


def _comment(verdict: Verdict, config: Config, markdown: str, pr: github.PrContext | None, token: str,
             environ: Mapping[str, str], in_actions: bool, warnings: list[str]) -> github.CommentResult | None:
    mode = config.report.comment
    if mode == "never" or (mode == "auto" and not (in_actions and pr)):
        return None
    if pr is None:
        warnings.append("report.comment is `always` but there is no pull request here (not a pull_request "
                        "event, no pr.json, no --pr)")
        return None
    if not token:
        warnings.append("no GITHUB_TOKEN: pass the github-token input to let perfgate comment")
        return None
    from perfgate import github

    marker = f"<!-- perfgate:sticky:{_marker_safe(config.report.title)} -->"
    result = github.upsert_sticky_comment(repo=pr.repo, pr_number=pr.pr_number, body=markdown, token=token,
                                          api_url=github.api_url_from_env(environ), is_fork=pr.is_fork,
                                          marker=marker)
    if not result.ok:
        warnings.append(result.message)
    return result


def _marker_safe(title: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in title)[:60]


def _annotate(verdict: Verdict, stdout: TextIO) -> None:
    levels = {"FAIL": "error", "WARN": "warning", "INCONCLUSIVE": "warning"}
    for rule in verdict.rules:
        if rule.outcome in levels:
            print(gha.annotation(levels[rule.outcome], rule.reason, f"perfgate {rule.outcome}: {rule.rule}"),
                  file=stdout, flush=True)
    if verdict.outcome == "INCONCLUSIVE":
        print(_inconclusive_annotation(verdict), file=stdout, flush=True)


def _inconclusive_annotation(verdict: Verdict) -> str:
    """Why the check is green (or red) on an INCONCLUSIVE verdict, with the reasons."""
    why = "; ".join(verdict.reasons) or verdict.headline
    if verdict.exit_code == EXIT_INCONCLUSIVE:
        return gha.annotation("warning", f"Not a failure: the check stays green (fail-on-inconclusive: true, or "
                                         f"compare.fail_on_inconclusive, makes it fail). Why: {why}",
                              "perfgate INCONCLUSIVE")
    return gha.annotation("error", f"This fails the check because fail-on-inconclusive is true. Why: {why}",
                          "perfgate INCONCLUSIVE")


def action_outputs(verdict: Verdict, out: Path, files: Mapping[str, Path]) -> dict[str, str]:
    """Every output action.yml declares, each set: empty when this run has no such value (a metric not
    measured in this mode, e.g. capacity outside a built A/B duet, or a change with no baseline to divide by)."""
    outputs = {"verdict": verdict.outcome, "exit-code": str(verdict.exit_code), "headline": verdict.headline,
               "comparison": verdict.setup.mode if verdict.setup is not None else "",
               "verdict-json": str(out / VERDICT_FILE)}
    outputs.update({f"report-{name}": str(files[name]) if name in files else "" for name in ("markdown", "html")})
    changes = {c.name: c.rel_change for c in verdict.metrics}
    for output, metric in metric_outputs().items():
        change = changes.get(metric.name)
        outputs[output] = f"{100 * change:.2f}" if change is not None else ""
    return outputs


def _set_outputs(verdict: Verdict, out: Path, files: Mapping[str, Path], environ: Mapping[str, str],
                 warnings: list[str]) -> None:
    outputs = action_outputs(verdict, out, files)
    try:
        gha.set_outputs(outputs, environ.get("GITHUB_OUTPUT"))
    except (OSError, ValueError) as error:
        warnings.append(f"could not write the step outputs: {error}")


def _push(verdict: Verdict, config: Config, environ: Mapping[str, str], warnings: list[str]) -> None:
    push = config.report.pushgateway
    if push is None:
        return
    from perfgate.report.pushgateway import push_metrics

    branch = environ.get("GITHUB_HEAD_REF") or environ.get("GITHUB_REF_NAME") or verdict.candidate.git_ref
    try:
        push_metrics(verdict, url=push.url, job=push.job, instance=push.instance, branch=branch)
    except PerfgateError as error:
        warnings.append(f"could not push to the Pushgateway: {error.message}")


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]
