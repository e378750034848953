"""The code under test never sees the job's secrets: the services perfgate starts get a scrubbed environment."""

from __future__ import annotations

import time
from pathlib import Path
from types import MappingProxyType

import pytest

from perfgate.config import ServiceConfig, load_config
from perfgate.load.ghz import Ghz
from perfgate.service import ManagedService

SECRETS = {
    "GITHUB_TOKEN": "ghs_job_token",
    "ACTIONS_RUNTIME_TOKEN": "runtime_token",
    "ACTIONS_ID_TOKEN_REQUEST_URL": "https://token.example/oidc",
    "INPUT_GITHUB-TOKEN": "ghs_input_token",
    "DEPLOY_KEY": "deploy_key_value",
    "db_password": "hunter2",
    "NPM_AUTH_Token": "npm_token_value",
    "AWS_SECRET_ACCESS_KEY": "aws_secret_value",
}


def service_env(tmp_path: Path, *, pass_env: tuple[str, ...] = (), env: dict[str, str] | None = None) -> str:
    """What a service that prints its environment (`sh -c 'env; exec sleep 30'`) writes to service.log."""
    config = ServiceConfig(command=("sh", "-c", "env; echo END-OF-ENV; exec sleep 30"),
                           env=MappingProxyType(env or {}), cwd=None, ready="none", start_timeout_s=5.0,
                           pass_env=pass_env)
    log = tmp_path / "service.log"
    with ManagedService(config, "127.0.0.1:1", log, generator=Ghz("ghz")):
        deadline = time.monotonic() + 10
        while "END-OF-ENV" not in (log.read_text() if log.exists() else "") and time.monotonic() < deadline:
            time.sleep(0.02)
    return log.read_text()


@pytest.fixture
def secret_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HARMLESS_SETTING", "kept")


@pytest.mark.usefixtures("secret_environ")
def test_the_service_sees_no_token_and_no_secret(tmp_path: Path) -> None:
    logged = service_env(tmp_path)
    assert "HARMLESS_SETTING=kept" in logged and "PATH=" in logged
    leaked = [name for name, value in SECRETS.items() if value in logged]
    assert leaked == []


@pytest.mark.usefixtures("secret_environ")
def test_pass_env_and_env_hand_over_what_the_config_names(tmp_path: Path) -> None:
    logged = service_env(tmp_path, pass_env=("DEPLOY_KEY",), env={"SERVICE_API_KEY": "set-by-config"})
    assert "DEPLOY_KEY=deploy_key_value" in logged and "SERVICE_API_KEY=set-by-config" in logged
    assert "ghs_job_token" not in logged and "hunter2" not in logged


def test_pass_env_is_a_config_key_of_both_services(tmp_path: Path) -> None:
    config = load_config(None, environ={}, set_args=[
        "target.address=127.0.0.1:1", "target.call=a.B/C", "service.command=./server",
        "service.pass_env=[DEPLOY_KEY]", "compare.mode=interleaved", "compare.baseline_service.command=./base",
        "compare.baseline_service.pass_env=[DEPLOY_KEY, OTHER]"])
    assert config.service is not None and config.service.pass_env == ("DEPLOY_KEY",)
    assert config.compare.baseline_service is not None
    assert config.compare.baseline_service.pass_env == ("DEPLOY_KEY", "OTHER")
