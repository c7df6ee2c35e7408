"""PINs, bearer tokens and passwords never appear in a node's logs (the test reads them)."""

from __future__ import annotations

import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.gateway.faults.client import call, call_json, client_token, person_token, upload_url
from tests.nodes import run_cli, running_node_process

pytestmark = pytest.mark.slow  # subprocesses or many cases: `./dev test -m "not slow"` skips it


def portal_sign_in(base: str, username: str, password: str) -> int:
    """A browser's sign-in: the form's cookie and CSRF token, then the POST; its status."""
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    with browser.open(f"{base}/login") as page:
        found = re.search(r'name="csrf" value="([^"]+)"', page.read().decode())
    assert found is not None
    form = {"csrf": found.group(1), "username": username, "password": password, "next": "/"}
    try:
        with browser.open(f"{base}/login", urllib.parse.urlencode(form).encode()) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as refused:
        return refused.code


def test_no_secret_reaches_the_log(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    init = run_cli(["init", "--demo"], data_dir)
    assert init.returncode == 0, init.stderr
    passwords = [
        line.split(": ")[1].split()[0]
        for line in init.stdout.splitlines()
        if line.startswith("one-time password for")
    ]
    assert len(passwords) == 4
    pin = (data_dir / "hsm" / "user.pin").read_text().strip()
    person = person_token(data_dir, "alice")
    system = client_token(data_dir, "logcheck")
    typed_as_name = "password-typed-as-the-username"  # looks like a username: it is looked up
    secrets = [pin, person, system, *passwords, "wrong-password-for-the-log-test", typed_as_name]

    # Debug logging includes every SQL statement with its parameters.
    node_env = {"SEKISHO_HSM_PIN": pin, "SEKISHO_NODE_LOG_LEVEL": "debug"}
    with running_node_process(data_dir, node_env) as (base, _):
        status, _ = call("POST", upload_url(base, "convoy"), person, b"manifest")
        assert status == 201
        assert call("GET", f"{base}/api/v1/documents", "sks_" + "x" * 43)[0] == 401
        assert call("GET", f"{base}/api/v1/documents/../../etc/passwd", person)[0] == 404
        digest = "A" * 43 + "="
        assert (
            call_json("POST", f"{base}/api/v1/sign/default", system, {"digest": digest})[0] == 200
        )
        for username, password in (("alice", secrets[-2]), (typed_as_name, "x")):
            assert portal_sign_in(base, username, password) == 401
        call("GET", f"{base}/no-such-page?token={person[:10]}")

    logs = "\n".join(p.read_text(errors="replace") for p in tmp_path.glob("serve-*.log"))
    assert "api_token" in logs, "debug logging did not show the token look-up"
    for secret in secrets:
        assert secret not in logs, f"a secret ({secret[:4]}…) appears in the node's log"
