"""pytest fixtures for the fake GitHub API. A test module enables them with

    pytest_plugins = ["support.ghapi.fixture"]  (tests/conftest.py does, for every test)

and then asks for `fake_github` (api.github.com), `fake_ghes` (under /api/v3) or `github_spec`.

Each fake fails its test at teardown when perfgate sent a request (or the fake sent an answer)
that does not validate against GitHub's OpenAPI description.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .server import TEST_TOKEN, FakeGitHub
from .spec import GitHubSpec, load_github_spec


@pytest.fixture(scope="session")
def github_spec() -> GitHubSpec:
    try:
        return load_github_spec()
    except FileNotFoundError as exc:
        pytest.fail(str(exc))


def _run_fake(spec: GitHubSpec, prefix: str) -> Iterator[FakeGitHub]:
    with FakeGitHub(spec, token=TEST_TOKEN, prefix=prefix) as fake:
        yield fake
    assert not fake.violations, "requests or answers outside GitHub's OpenAPI description:\n" + "\n".join(
        fake.violations)


@pytest.fixture
def fake_github(github_spec: GitHubSpec) -> Iterator[FakeGitHub]:
    """A fake api.github.com (base_url without a prefix)."""
    yield from _run_fake(github_spec, "")


@pytest.fixture
def fake_ghes(github_spec: GitHubSpec) -> Iterator[FakeGitHub]:
    """A fake GitHub Enterprise Server: the API lives under /api/v3."""
    yield from _run_fake(github_spec, "/api/v3")
