"""perfgate's GitHub side through PyGithub: the sticky PR comment, PR context, baseline artifacts.

client.py holds the retry policy and what the others share; comment.py, context.py and
artifacts.py hold one job each. This module re-exports the names the rest of perfgate uses.
"""

from perfgate.github.artifacts import (
    ACTIONS_READ_HINT,
    BaselineSource,
    DownloadedArtifact,
    download_baseline_artifact,
    download_baseline_history,
    download_run_artifact,
    locate_baseline_artifact,
    locate_baseline_history,
)
from perfgate.github.client import RetryPolicy, api_url_from_env
from perfgate.github.comment import (
    COMMENT_LIMIT_CHARS,
    COMMENT_TRUNCATION_NOTE,
    STICKY_MARKER,
    CommentResult,
    fit_comment_body,
    upsert_sticky_comment,
)
from perfgate.github.context import (
    PR_CONTEXT_FILE,
    PrContext,
    read_pr_context,
    read_pr_context_file,
    read_workflow_run_event,
    write_pr_context,
)
from perfgate.github.pulls import verify_pr_for_run

__all__ = [
    "ACTIONS_READ_HINT",
    "COMMENT_LIMIT_CHARS",
    "COMMENT_TRUNCATION_NOTE",
    "PR_CONTEXT_FILE",
    "STICKY_MARKER",
    "BaselineSource",
    "CommentResult",
    "DownloadedArtifact",
    "PrContext",
    "RetryPolicy",
    "api_url_from_env",
    "download_baseline_artifact",
    "download_baseline_history",
    "download_run_artifact",
    "fit_comment_body",
    "locate_baseline_artifact",
    "locate_baseline_history",
    "read_pr_context",
    "read_pr_context_file",
    "read_workflow_run_event",
    "upsert_sticky_comment",
    "verify_pr_for_run",
    "write_pr_context",
]
