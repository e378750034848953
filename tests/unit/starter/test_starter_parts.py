"""perfgate init's parts that need no service: secret flags redacted, the Go build guessed, addresses checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from perfgate.errors import ConfigError
from perfgate.starter import parse_address
from perfgate.starter.gobuild import guess_go_build
from perfgate.starter.probe import REDACTED, candidate_ports, redact

GRPC_MAIN = 'package main\n\nimport (\n\t"google.golang.org/grpc"\n)\n\nfunc main() { _ = grpc.NewServer }\n'
PLAIN_MAIN = "package main\n\nfunc main() {}\n"


def test_secret_looking_flags_lose_their_values():
    cmdline = redact(["./server", "-grpc-addr", ":50051", "--api-token=abc", "-db-password", "hunter2",
                      "-key", "k", "-verbose", "true"])
    assert cmdline.argv == ("./server", "-grpc-addr", ":50051", f"--api-token={REDACTED}", "-db-password",
                            REDACTED, "-key", REDACTED, "-verbose", "true")
    assert cmdline.redacted == ("--api-token", "-db-password", "-key")


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def test_the_grpc_main_package_is_built_over_other_mains(tmp_path):
    root = write(tmp_path, {"go.mod": "module example.com/shop\n", "cmd/migrate/main.go": PLAIN_MAIN,
                            "cmd/server/main.go": GRPC_MAIN, "cmd/server/main_test.go": GRPC_MAIN,
                            "internal/x/x.go": "package x\n", "vendor/a/main.go": GRPC_MAIN,
                            "tools/admin/main.go": GRPC_MAIN})
    build = guess_go_build(root)
    assert build.package == "./cmd/server" and build.binary == "bin/server"
    assert build.others == ("./tools/admin",)
    assert build.shell == "CGO_ENABLED=0 go build -trimpath -o bin/server ./cmd/server"


def test_a_root_main_is_named_after_the_module_and_no_go_mod_means_no_guess(tmp_path):
    assert guess_go_build(write(tmp_path / "a", {"main.go": GRPC_MAIN})) is None
    build = guess_go_build(write(tmp_path / "b", {"go.mod": "module github.com/acme/payments\n", "main.go": GRPC_MAIN}))
    assert build.package == "." and build.binary == "bin/payments"


def test_a_folder_name_unsafe_in_a_shell_script_is_not_guessed(tmp_path):
    root = write(tmp_path, {"go.mod": "module m\n", "cmd/$(reboot)/main.go": GRPC_MAIN})
    assert guess_go_build(root) is None


@pytest.mark.parametrize("address", ["localhost", "127.0.0.1:0", "127.0.0.1:70000", "a b:1", "x:1;rm", ""])
def test_bad_addresses_are_usage_errors(address):
    with pytest.raises(ConfigError, match="expected host:port"):
        parse_address(address)


def test_addresses_and_probe_ports():
    assert parse_address("[::1]:50051") == ("::1", 50051)
    assert candidate_ports(50051)[:2] == (6060, 6061) and 50052 in candidate_ports(50051)
    assert 6060 not in candidate_ports(6060)
