"""The PyGithub client: retry policy, bounded waits, token redaction, and checks the other modules share.

The token is never printed: error text that could carry it passes through `redact_token`, and
PyGithub masks it in its own debug log. The API base URL comes from GITHUB_API_URL
(https://api.github.com, or https://HOST/api/v3 on GitHub Enterprise Server); see `api_url_from_env`.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
from github import Auth, Github, GithubException, GithubRetry
from urllib3.exceptions import InvalidHeader

from perfgate.errors import ConfigError

DEFAULT_API_URL = "https://api.github.com"

_REPO_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$")


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try against the GitHub API. Tests pass a recording `sleep` and zero spacing."""

    max_retries: int = 3
    backoff_factor_s: float = 1.0
    max_wait_s: float = 60.0  # cap on any single wait: Retry-After, rate-limit reset or backoff
    seconds_between_requests: float = 0.25  # PyGithub's spacing, as GitHub's best practices ask
    seconds_between_writes: float = 1.0
    timeout_s: float = 30.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False, repr=False)

    def backoff_s(self, attempt: int) -> float:
        return min(self.max_wait_s, self.backoff_factor_s * (2**attempt))


def api_url_from_env(env: Mapping[str, str] | None = None) -> str:
    """GITHUB_API_URL, or https://api.github.com outside Actions."""
    value = (os.environ if env is None else env).get("GITHUB_API_URL", "").strip()
    return (value or DEFAULT_API_URL).rstrip("/")


class _BoundedRetry(GithubRetry):
    """PyGithub's retry (5xx, rate-limit 403s) with every wait capped and the sleep injectable.

    Waits follow GitHub's documented order: Retry-After, then X-RateLimit-Reset when
    X-RateLimit-Remaining is 0, then PyGithub's secondary-limit wait or exponential backoff.
    """

    def __init__(self, *, sleep_fn: Callable[[float], None] = time.sleep, max_wait_s: float = 60.0,
                 **kwargs: Any) -> None:
        self.sleep_fn = sleep_fn
        self.max_wait_s = max_wait_s
        super().__init__(**kwargs)

    def new(self, **kw: Any) -> _BoundedRetry:
        kw.update(sleep_fn=self.sleep_fn, max_wait_s=self.max_wait_s)
        return super().new(**kw)

    def sleep(self, response: Any = None) -> None:
        wait = min(self._required_wait(response), self.max_wait_s)
        if wait > 0:
            self.sleep_fn(wait)

    def _required_wait(self, response: Any) -> float:
        if response is not None:
            try:
                after = self.get_retry_after(response) if self.respect_retry_after_header else None
            except InvalidHeader:
                after = None
            if after is not None:
                return after
            reset = str(response.headers.get("x-ratelimit-reset", ""))
            if response.headers.get("x-ratelimit-remaining") == "0" and reset.isdigit():
                return max(0.0, int(reset) - time.time()) + 1
        return self.get_backoff_time()


def make_client(token: str, api_url: str, policy: RetryPolicy, per_page: int = 100) -> Github:
    retry = _BoundedRetry(
        sleep_fn=policy.sleep,
        max_wait_s=policy.max_wait_s,
        total=policy.max_retries,
        backoff_factor=policy.backoff_factor_s,
        backoff_max=policy.max_wait_s,
        secondary_rate_wait=policy.max_wait_s,
        status_forcelist=[429, *range(500, 600)],
        allowed_methods=frozenset({"GET", "POST", "PATCH", "DELETE", "PUT", "HEAD"}),
    )
    return Github(
        auth=Auth.Token(token),
        base_url=api_url.rstrip("/"),
        timeout=max(1, math.ceil(policy.timeout_s)),  # PyGithub insists on an int
        per_page=per_page,
        retry=retry,
        seconds_between_requests=policy.seconds_between_requests or None,
        seconds_between_writes=policy.seconds_between_writes or None,
        lazy=True,
    )


def redact_token(text: str, token: str) -> str:
    return text.replace(token, "***") if token else text


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, GithubException):
        message = exc.message or (exc.data.get("message") if isinstance(exc.data, dict) else None)
        return f"HTTP {exc.status}: {message}" if message else f"HTTP {exc.status}"
    if isinstance(exc, requests.exceptions.RetryError):
        return f"gave up after retries ({exc})"
    return f"{type(exc).__name__}: {exc}"


def check_repo_name(value: Any, name: str) -> None:
    if not isinstance(value, str) or not _REPO_NAME.match(value) or ".." in value:
        raise ConfigError(f"{name} must look like 'owner/name', got {shorten(value)}")


def check_pr_number(value: Any, name: str) -> None:
    check_positive_int(value, name)


def check_positive_int(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**53:
        raise ConfigError(f"{name} must be a positive integer, got {shorten(value)}")


def shorten(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
