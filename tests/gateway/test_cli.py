"""The CLI as an operator uses it: init, serve, hsm, clear one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway import __version__
from tests.nodes import http_get, run_cli, running_node

pytestmark = pytest.mark.slow  # subprocesses or many cases: `./dev test -m "not slow"` skips it

EXPECTED_KEYS = {"sekisho-ca", "sekisho-ledger", "sekisho-kek", "sekisho-sign", "sekisho-tsa"}


def assert_one_line_error(stderr: str, fragment: str) -> None:
    """A failure is exactly one readable line, never a traceback."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("sekisho: error:"), stderr
    assert fragment in lines[0], stderr
    assert "Traceback" not in stderr


def test_version(data_dir: Path) -> None:
    result = run_cli(["--version"], data_dir)
    assert result.returncode == 0
    assert result.stdout.strip() == f"sekisho {__version__}"


def test_init_twice_is_idempotent_and_creates_protected_keys(data_dir: Path) -> None:
    first = run_cli(["init"], data_dir)
    assert first.returncode == 0, first.stderr
    assert "created: key sekisho-ledger" in first.stdout
    assert "one-time password for 'admin'" in first.stdout
    password = first.stdout.split("one-time password for 'admin': ")[1].split()[0]

    second = run_cli(["init"], data_dir)
    assert second.returncode == 0, second.stderr
    assert "already initialised; nothing changed" in second.stdout
    assert password not in second.stdout

    keys = json.loads(run_cli(["hsm", "keys", "--json"], data_dir).stdout)
    private = {k["label"]: k for k in keys if k["class"] in {"private", "secret"}}
    assert set(private) == EXPECTED_KEYS
    assert all(k["sensitive"] is True and k["extractable"] is False for k in private.values())
    assert {private[k]["algorithm"] for k in private} == {"ec-p256", "ed25519", "aes-256"}

    status = run_cli(["hsm", "status"], data_dir)
    assert status.returncode == 0
    assert "EDDSA" in status.stdout
    assert "AES_KEY_WRAP_PAD" in status.stdout
    rows = {line.split("  ")[0]: line for line in status.stdout.splitlines()}
    assert "CKM_EDDSA (Ed25519, signed-note type 0x01)" in rows["checkpoint signing"]
    assert "CKM_AES_KEY_WRAP_PAD (AES-256 key wrap with padding" in rows["KEK wrap/unwrap"]
    assert "CKM_EDDSA" in rows["witness cosigning"]
    assert "not possible" not in status.stdout


def test_serve_answers_health_and_readiness(data_dir: Path) -> None:
    with running_node(data_dir) as base:
        assert http_get(base + "/healthz")[0] == 200
        status, body = http_get(base + "/readyz")
        assert status == 200, body
        ready = json.loads(body)
        assert ready["ready"] is True
        assert ready["checks"]["database"] == {"ok": True}
        assert ready["checks"]["token"] == {"ok": True}
        assert ready["checks"]["ledger"] == {"ok": True}  # the auditor's details: for watchers
        admin = run_cli(["users", "token", "admin"], data_dir)
        assert admin.returncode == 0, admin.stderr
        watcher = {"Authorization": f"Bearer {admin.stdout.splitlines()[-1]}"}
        status, body = http_get(base + "/readyz", headers=watcher)
        assert status == 200, body
        ledger = json.loads(body)["checks"]["ledger"]
        assert ledger["ok"] is True
        assert ledger["audit"] in {"pending", "intact"}
        status, body = http_get(base + "/api/v1/no-such-thing")
        assert status == 404
        assert json.loads(body)["error"] == "not_found"


def test_serve_with_wrong_pin_exits_with_one_line(data_dir: Path) -> None:
    assert run_cli(["init"], data_dir).returncode == 0
    result = run_cli(["serve"], data_dir, {"SEKISHO_HSM_PIN": "wrong-pin"})
    assert result.returncode == 1
    assert_one_line_error(result.stderr, "refused the PIN")


def test_serve_with_missing_module_exits_with_one_line(data_dir: Path) -> None:
    result = run_cli(
        ["serve"], data_dir, {"SEKISHO_HSM_MODULE": "/nonexistent/p11.so", "SEKISHO_HSM_PIN": "1"}
    )
    assert result.returncode == 1
    assert_one_line_error(result.stderr, "/nonexistent/p11.so not found")


def test_serve_with_missing_token_exits_with_one_line(data_dir: Path) -> None:
    assert run_cli(["init"], data_dir).returncode == 0
    result = run_cli(["hsm", "keys"], data_dir, {"SEKISHO_HSM_TOKEN_LABEL": "absent"})
    assert result.returncode == 1
    assert_one_line_error(result.stderr, "no token with label 'absent'")


def test_bad_setting_names_the_setting(data_dir: Path) -> None:
    result = run_cli(["serve"], data_dir, {"SEKISHO_HTTP_PORT": "eighty"})
    assert result.returncode == 2
    assert_one_line_error(result.stderr, "setting http.port (SEKISHO_HTTP_PORT)")


def test_bad_config_file_names_the_problem(data_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "sekisho.toml"
    config.write_text("[http]\nprot = 80\n")
    result = run_cli(["--config", str(config), "init"], data_dir)
    assert result.returncode == 2
    assert_one_line_error(result.stderr, "unknown setting http.prot")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["users", "add"], "users add: the following arguments are required"),
        (["users", "add", "x", "--level"], "argument --level: expected one argument"),
        (["no-such-command"], "invalid choice: 'no-such-command'"),
    ],
)
def test_usage_mistakes_are_the_one_line_error_the_readme_promises(
    data_dir: Path, args: list[str], fragment: str
) -> None:
    result = run_cli(args, data_dir)
    assert result.returncode == 2
    assert_one_line_error(result.stderr, fragment)
    assert "usage:" not in result.stderr


def test_counts_agree_with_their_number() -> None:
    from gateway.cli.wording import count_of

    assert count_of(1, "checkpoint") == "1 checkpoint"
    assert count_of(2, "checkpoint") == "2 checkpoints"
    assert count_of(1, "entry", "entries") == "1 entry"
    assert count_of(0, "entry", "entries") == "0 entries"


def test_witness_commands_before_init_say_where_they_looked(data_dir: Path) -> None:
    result = run_cli(["witness", "status"], data_dir)
    assert result.returncode == 1
    assert_one_line_error(result.stderr, f"no initialised witness in data dir {data_dir.resolve()}")
    assert "SEKISHO_DATA" in result.stderr
