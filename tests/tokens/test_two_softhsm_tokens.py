"""Keys on three SoftHSM tokens of one token directory: the node's own (CA, signing keys),
``log-b`` (the log key, through ``[hsm.keys] ledger``) and ``kek-c`` (the KEK, with its own
PIN file). ``init``, upload and download, a checkpoint verified by ``ledger verify``; the
KEK's token removed under a running node fails only downloads and uploads; bad URIs and
missing tokens stop start-up in one line."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from hsm import SoftHsmLayout, find_softhsm_module, provision_token
from hsm.softhsm import init_token
from tests.gateway.faults.client import call, call_json, client_token, person_token, upload_url
from tests.gateway.faults.test_token_removal import sign_body
from tests.nodes import run_cli, running_node

pytestmark = pytest.mark.slow  # several CLI runs and a served node

KEK_PIN = "kek-c-user-pin-0042"


def _token_dir(layout: SoftHsmLayout, label: str) -> Path:
    for directory in layout.tokens.iterdir():
        if label.encode() in (directory / "token.object").read_bytes():
            return directory
    raise AssertionError(f"no SoftHSM token directory for {label}")


@pytest.fixture
def three_tokens(data_dir: Path) -> tuple[SoftHsmLayout, dict[str, str]]:
    """The embedded token plus two more in its directory; the settings that place keys."""
    module = find_softhsm_module()
    assert module is not None
    layout = SoftHsmLayout(data_dir / "hsm")
    provision_token(layout, "sekisho")
    node_pin = layout.user_pin_file.read_text().strip()
    init_token(module, layout.conf, "log-b", so_pin="so-b-0001", user_pin=node_pin)
    init_token(module, layout.conf, "kek-c", so_pin="so-c-0001", user_pin=KEK_PIN)
    pin_file = data_dir.parent / "kek.pin"
    pin_file.write_text(KEK_PIN + "\n")
    pin_file.chmod(0o600)
    env = {
        "SEKISHO_DOCUMENTS_KEY_CACHE_SECONDS": "0",  # every download unwraps on the KEK token
        # No pin-source: the node's PIN. The module under its real path (the default is
        # found through a symlink) is the same module, loaded once.
        "SEKISHO_HSM_KEYS_LEDGER": f"pkcs11:token=log-b?module-path={os.path.realpath(module)}",
        "SEKISHO_HSM_KEYS_KEK": f"pkcs11:token=kek-c;object=sekisho-kek?pin-source=file:{pin_file}",
    }
    return layout, env


def test_log_key_and_kek_on_their_own_tokens(
    three_tokens: tuple[SoftHsmLayout, dict[str, str]], data_dir: Path
) -> None:
    layout, env = three_tokens
    status = run_cli(["hsm", "status", "--json"], data_dir, env)
    assert status.returncode == 0, status.stderr
    shown = {s["token_label"]: s["keys"] for s in json.loads(status.stdout)}
    assert shown == {
        "sekisho": ["default token"],
        "log-b": ["hsm.keys.ledger"],
        "kek-c": ["hsm.keys.kek"],
    }

    init = run_cli(["init", "--demo"], data_dir, env, timeout=300)
    assert init.returncode == 0, init.stderr
    keys = run_cli(["hsm", "keys", "--json"], data_dir, env)
    assert keys.returncode == 0, keys.stderr
    where = {(k["label"], k["class"]): k["token_label"] for k in json.loads(keys.stdout)}
    assert where[("sekisho-ledger", "private")] == "log-b"
    assert where[("sekisho-kek", "secret")] == "kek-c"
    assert where[("sekisho-ca", "private")] == "sekisho"
    assert where[("sekisho-sign", "private")] == "sekisho"
    assert not {label for label, _ in where if label.startswith("sekisho-")} - {
        "sekisho-ledger",
        "sekisho-kek",
        "sekisho-ca",
        "sekisho-sign",
        "sekisho-tsa",
    }

    alice = person_token(data_dir, "alice", env)
    drone = client_token(data_dir, "drone", extra=env)
    admin = person_token(data_dir, "admin", env)  # may watch the node: /readyz details
    secret = b"fuel plan, two tokens\n" * 50
    kek_dir = _token_dir(layout, "kek-c")
    away = data_dir.parent / "kek-c-away"
    with running_node(data_dir, env) as base:
        status_code, raw = call("POST", upload_url(base, "before"), alice, secret)
        assert status_code == 201, raw
        doc = json.loads(raw)["id"]
        content = f"{base}/api/v1/documents/{doc}/content"
        assert call("GET", content, alice) == (200, secret)
        ready, body = call_json("GET", base + "/readyz", admin)
        assert ready == 200, body
        assert [t["ok"] for t in body["checks"]["tokens"]["tokens"]] == [True, True, True]

        kek_dir.rename(away)  # the KEK's token is unplugged; the others stay
        try:
            for _ in range(3):
                status_code, error = call_json("GET", content, alice)
                assert status_code == 503, error
                assert error["error"] == "hsm_token_removed"
                assert "'kek-c'" in error["message"]
                status_code, error = call_json("POST", upload_url(base, "during"), alice, {"x": 1})
                assert status_code in {400, 415, 503}, error  # never a 500
                status_code, signed = call_json(
                    "POST", f"{base}/api/v1/sign/default", drone, sign_body()
                )
                assert status_code == 200, signed  # the signing key's token is still there
                ready, anonymous = call_json("GET", base + "/readyz")
                assert ready == 503, anonymous
                assert anonymous["checks"]["tokens"] == {"ok": False}, anonymous
                assert "kek-c" not in json.dumps(anonymous)
                ready, body = call_json("GET", base + "/readyz", admin)
                assert ready == 503, body
                checks = body["checks"]
                assert checks["token"]["ok"] is True  # the log key signs
                states = {t["keys"][0]: t for t in checks["tokens"]["tokens"]}
                assert states["default token"]["ok"] and states["hsm.keys.ledger"]["ok"]
                assert states["hsm.keys.kek"]["ok"] is False
                assert "'kek-c'" in states["hsm.keys.kek"]["error"]
        finally:
            away.rename(kek_dir)  # plugged back in
        deadline = time.monotonic() + 30
        while call("GET", content, alice) != (200, secret):
            assert time.monotonic() < deadline, "the KEK token was not found again"
            time.sleep(0.3)
        status_code, raw = call("POST", upload_url(base, "after"), alice, b"after")
        assert status_code == 201, raw

    verify = run_cli(["ledger", "verify"], data_dir, env)
    assert verify.returncode == 0 and "ledger OK" in verify.stdout, verify.stdout + verify.stderr


def test_bad_key_tokens_stop_start_up_in_one_line(
    three_tokens: tuple[SoftHsmLayout, dict[str, str]], data_dir: Path
) -> None:
    _layout, env = three_tokens
    wrong_pin = data_dir.parent / "wrong.pin"
    wrong_pin.write_text("not-the-pin\n")
    cases = [
        ({"SEKISHO_HSM_KEYS_KEK": "pkcs11:token=kek-c;flavour=x"}, "'flavour' is not supported"),
        ({"SEKISHO_HSM_KEYS_KEK": "pkcs11:token=kek-z"}, "no token with label 'kek-z'"),
        (
            {"SEKISHO_HSM_KEYS_KEK": "pkcs11:token=kek-c?pin-source=file:/nonexistent.pin"},
            "hsm.keys.kek: cannot read the PIN file /nonexistent.pin",
        ),
        (
            {"SEKISHO_HSM_KEYS_KEK": f"pkcs11:token=kek-c?pin-source=file:{wrong_pin}"},
            "refused the PIN (token for hsm.keys.kek)",
        ),
    ]
    for extra, expected in cases:
        for command in (["hsm", "status"], ["serve", "--port", "1"]):
            result = run_cli(command, data_dir, {**env, **extra})
            lines = [line for line in result.stderr.splitlines() if line.strip()]
            assert result.returncode != 0, (command, extra)
            assert len(lines) == 1 and lines[0].startswith("sekisho: error: "), result.stderr
            assert expected in lines[0], lines[0]
    missing = run_cli(
        ["hsm", "status"], data_dir, {**env, "SEKISHO_HSM_KEYS_KEK": "pkcs11:token=kek-z"}
    )
    assert "tokens present: ['kek-c', 'log-b', 'sekisho']" in missing.stderr
