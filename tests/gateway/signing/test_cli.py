"""The operator's side, as real processes: ``sekisho keys``, ``sekisho clients``, TLS serve."""

from __future__ import annotations

import base64
import hashlib
import json
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from hsm import TokenConfig
from tests.gateway.signing.api_node import fresh
from tests.gateway.signing.tlscerts import make_tls_material
from tests.gateway.test_cli import assert_one_line_error
from tests.nodes import SEKISHO, free_port, node_env, run_cli, running_node

pytestmark = pytest.mark.slow  # subprocesses or many cases: `./dev test -m "not slow"` skips it

BODY = json.dumps({"digest": base64.b64encode(hashlib.sha256(b"cli").digest()).decode()}).encode()


def token_env(token_config: TokenConfig) -> dict[str, str]:
    """Point a node process at the session's shared test token."""
    return {
        "SEKISHO_HSM_MODULE": token_config.module_path,
        "SEKISHO_HSM_TOKEN_LABEL": token_config.token_label or "",
        "SEKISHO_HSM_PIN": token_config.pin.reveal(),
        "SEKISHO_LEDGER_AUDIT_SECONDS": "0",
    }


def post(url: str, token: str, context: ssl.SSLContext | None = None) -> int:
    request = urllib.request.Request(  # noqa: S310 - a loopback test URL
        url,
        data=BODY,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_keys_and_clients_commands(data_dir: Path, token_config: TokenConfig) -> None:
    env = token_env(token_config)
    first = run_cli(["init"], data_dir, env)
    assert first.returncode == 0, first.stderr
    assert "created: signing key 'default'" in first.stdout
    assert "created: signing key 'tsa'" in first.stdout

    name = fresh("footage")
    created = run_cli(["keys", "create", name, "--algorithm", "ed25519"], data_dir, env)
    assert created.returncode == 0, created.stderr
    assert f"created signing key {name} v1 (ed25519, sign)" in created.stdout
    rotated = run_cli(["keys", "rotate", name], data_dir, env)
    assert rotated.returncode == 0, rotated.stderr
    assert f"rotated to {name} v2" in rotated.stdout
    listed = json.loads(run_cli(["keys", "list", "--json"], data_dir, env).stdout)
    by_name = {k["name"]: k for k in listed}
    assert {"default", "tsa", name} <= set(by_name)
    assert [(v["version"], v["status"]) for v in by_name[name]["versions"]] == [
        (1, "retired"),
        (2, "active"),
    ]
    assert by_name["tsa"]["purpose"] == "timestamp"
    again = run_cli(["keys", "create", name, "--algorithm", "ed25519"], data_dir, env)
    assert again.returncode == 1
    assert_one_line_error(again.stderr, "already exists")

    added = run_cli(
        ["clients", "add", "drone", "--scopes", "sign,verify", "--keys", "default", name,
         "--rate", "120"],
        data_dir,
        env,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "created API client 'drone'" in added.stdout
    token = added.stdout.split("(shown once; store it now): ")[1].split()[0]
    assert token.startswith("sks_")

    listing = run_cli(["clients", "list"], data_dir, env)
    assert listing.returncode == 0 and "drone" in listing.stdout
    assert token not in listing.stdout and token[:12] in listing.stdout  # prefix only
    [client] = json.loads(run_cli(["clients", "list", "--json"], data_dir, env).stdout)
    assert client["scopes"] == ["sign", "verify"] and client["keys"] == ["default", name]
    assert client["rate_per_minute"] == 120 and client["revoked"] is False

    unit = run_cli(["clients", "add", "unit", "--scopes", "anchor"], data_dir, env)
    assert unit.returncode == 0, unit.stderr
    writers = run_cli(["clients", "set", "drone", "--chain-writers", "unit"], data_dir, env)
    assert writers.returncode == 0, writers.stderr
    assert "changed chain_writers" in writers.stdout and "chain writers: unit" in writers.stdout
    described = json.loads(run_cli(["clients", "list", "--json"], data_dir, env).stdout)
    assert {c["name"]: c["chain_writers"] for c in described} == {"drone": ["unit"], "unit": []}

    for args, fragment in (
        (["clients", "set", "drone", "--chain-writers", "ghost"], "no live API client"),
        (["clients", "set", "drone", "--chain-writers", "drone"], "its own chains"),
        (["clients", "add", "drone", "--scopes", "sign", "--keys", "default"], "already exists"),
        (
            ["clients", "add", "x", "--scopes", "sign", "--keys", "nope"],
            "no signing key named 'nope'",
        ),
        (["clients", "add", "x", "--scopes", "fly"], "unknown: fly"),
        (["clients", "add", "x", "--scopes", "sign", "--keys", "tsa"], "time-stamping key"),
        (["clients", "revoke", "ghost"], "no API client named 'ghost'"),
    ):
        failed = run_cli(args, data_dir, env)
        assert failed.returncode == 1, args
        assert_one_line_error(failed.stderr, fragment)

    with running_node(data_dir, env) as base:
        assert post(f"{base}/api/v1/sign/default", token) == 200
        assert post(f"{base}/api/v1/sign/{name}", token) == 200
        revoked = run_cli(["clients", "revoke", "drone"], data_dir, env)
        assert revoked.returncode == 0 and "revoked API client 'drone'" in revoked.stdout
        deadline = time.monotonic() + 15  # servers cache identities for a few seconds
        while post(f"{base}/api/v1/sign/default", token) != 401:
            assert time.monotonic() < deadline, "the revoked token still works"
            time.sleep(0.25)
    client = json.loads(run_cli(["clients", "list", "--json"], data_dir, env).stdout)[0]
    assert client["revoked"] is True and client["tokens"] == []


def test_serve_with_tls(data_dir: Path, token_config: TokenConfig, tmp_path: Path) -> None:
    tls = make_tls_material(tmp_path)
    env = {
        **token_env(token_config),
        "SEKISHO_HTTP_TLS_CERT": str(tls.server.cert),
        "SEKISHO_HTTP_TLS_KEY": str(tls.server.key),
        "SEKISHO_HTTP_TLS_CLIENT_CA": str(tls.ca.cert),
    }
    assert run_cli(["init"], data_dir, env).returncode == 0
    added = run_cli(
        ["clients", "add", "tls-client", "--scopes", "sign", "--keys", "default",
         "--cert", str(tls.client.cert)],
        data_dir,
        env,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert tls.client.sha256 in added.stdout
    port = free_port()
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [*SEKISHO, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=node_env(data_dir, env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        context = ssl.create_default_context(cafile=str(tls.ca.cert))
        context.load_cert_chain(str(tls.client.cert), str(tls.client.key))
        url = f"https://127.0.0.1:{port}/api/v1/sign/default"
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log_path.read_text()
            try:
                request = urllib.request.Request(
                    url, data=BODY, headers={"Content-Type": "application/json"}
                )
                with urllib.request.urlopen(request, timeout=5, context=context) as response:  # noqa: S310
                    assert response.status == 200
                    break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.2)
        assert f"serving on https://127.0.0.1:{port}/" in log_path.read_text()
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_bad_tls_setting_stops_serve_with_one_line(
    data_dir: Path, token_config: TokenConfig
) -> None:
    env = {**token_env(token_config), "SEKISHO_HTTP_TLS_CERT": "/nonexistent.pem"}
    result = run_cli(["serve"], data_dir, env)
    assert result.returncode == 2
    assert_one_line_error(result.stderr, "must be set together")
