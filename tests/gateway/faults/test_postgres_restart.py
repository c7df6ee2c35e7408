"""PostgreSQL restarted under load: clean 503s while it is down, recovery without a restart."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import in_ci
from tests.gateway.faults.client import call, client_token, person_token, upload_url
from tests.gateway.faults.private_postgres import postgres_bin_dir, private_postgres
from tests.nodes import WAIT_SECONDS, http_get, run_cli, running_node_process, wait_for

pytestmark = pytest.mark.slow  # subprocesses or many cases: `./dev test -m "not slow"` skips it

WORKERS = 4
KINDS_IN_TURN = ("upload", "download", "list", "sign")
KINDS = set(KINDS_IN_TURN)


class Load:
    """Worker threads issuing uploads, downloads, listings and signatures until stopped."""

    def __init__(self, base: str, person: str, client: str) -> None:
        self.base, self.person, self.client = base, person, client
        self.statuses: Counter[tuple[str, int]] = Counter()
        self.bodies_5xx: list[bytes] = []
        self.uploaded: dict[str, str] = {}
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(n,)) for n in range(WORKERS)]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)

    def snapshot(self) -> Counter[tuple[str, int]]:
        """The statuses so far, and a fresh count from now on."""
        with self.lock:
            seen, self.statuses = self.statuses, Counter()
        return seen

    def successes(self) -> int:
        """2xx answers since the last snapshot."""
        with self.lock:
            return sum(n for (_, status), n in self.statuses.items() if 200 <= status < 300)

    def kinds_succeeded_since_snapshot(self) -> set[str]:
        """Which kinds of request got a 2xx since the last snapshot."""
        with self.lock:
            return {kind for (kind, status) in self.statuses if 200 <= status < 300}

    def _record(self, kind: str, status: int, body: bytes) -> None:
        with self.lock:
            self.statuses[(kind, status)] += 1
            if status >= 500:
                self.bodies_5xx.append(body)

    def _run(self, worker: int) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            kind = KINDS_IN_TURN[(worker + n) % len(KINDS_IN_TURN)]
            try:
                self._one(kind)
            except OSError:
                self._record(kind, 0, b"")
                time.sleep(0.05)

    def _one(self, kind: str) -> None:
        if kind == "upload":
            data = os.urandom(2048)
            status, raw = call("POST", upload_url(self.base, "pg"), self.person, data, timeout=15)
            if status == 201:
                with self.lock:
                    self.uploaded[json.loads(raw)["id"]] = hashlib.sha256(data).hexdigest()
        elif kind == "download":
            with self.lock:
                ids = list(self.uploaded)[-5:]
            if not ids:
                return
            url = f"{self.base}/api/v1/documents/{ids[-1]}/content"
            status, raw = call("GET", url, self.person, timeout=15)
        elif kind == "list":
            status, raw = call("GET", f"{self.base}/api/v1/documents", self.person, timeout=15)
        else:
            digest = base64.b64encode(os.urandom(32)).decode()
            body = json.dumps({"digest": digest}).encode()
            status, raw = call(
                "POST", f"{self.base}/api/v1/sign/default", self.client, body,
                content_type="application/json", timeout=15,
            )  # fmt: skip
        self._record(kind, status, raw)


def wait_until(predicate: Callable[[], object], seconds: float = WAIT_SECONDS) -> bool:
    """Poll a condition (a readiness wait, not a timing assertion); False at the deadline."""
    try:
        wait_for(predicate, seconds, interval=0.2)
    except AssertionError:
        return False
    return True


@pytest.mark.postgres
def test_postgres_restart_under_load_gives_503s_and_recovers(tmp_path: Path) -> None:
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        if in_ci():
            pytest.fail("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    with private_postgres(bin_dir) as database:
        data_dir = tmp_path / "var"
        env = {"SEKISHO_DATABASE_URL": database.url}
        assert run_cli(["init", "--demo"], data_dir, env).returncode == 0
        person = person_token(data_dir, "alice", env)
        client = client_token(data_dir, "drone", extra=env)
        node = running_node_process(data_dir, env)
        with node as (base, process), Load(base, person, client) as load:
            assert wait_until(lambda: len(load.uploaded) >= 5, 60)
            before = load.snapshot()
            database.stop()
            assert wait_until(lambda: http_get(base + "/readyz")[0] == 503)
            time.sleep(2)  # load keeps running against the stopped database
            during = load.snapshot()
            database.start()
            assert wait_until(lambda: http_get(base + "/readyz")[0] == 200, 60)
            load.snapshot()  # the changeover
            # Every kind of request succeeds again, without a gateway restart (the ledger
            # sequencer once stayed on a dead connection here and every write timed out).
            recovered = wait_until(lambda: load.kinds_succeeded_since_snapshot() >= KINDS, 60)
            assert recovered, load.snapshot()
            load.snapshot()
            assert wait_until(lambda: load.successes() >= 40, 60), load.snapshot()
            after = load.snapshot()
            assert process.poll() is None, "the gateway must not have died"
        uploaded = dict(load.uploaded)
        print(f"postgres restart: before {dict(before)}; down {dict(during)}; after {dict(after)}")
        assert not load.bodies_5xx or all(
            json.loads(body)["error"] != "internal_error" for body in load.bodies_5xx
        ), load.bodies_5xx[:3]
        assert all(status < 500 for (_, status) in before), before
        assert not any(status == 500 for (_, status) in during), during
        assert any(status == 503 for (_, status) in during), during
        assert sum(n for (_, status), n in after.items() if 200 <= status < 300) > 0, after
        assert all(status < 500 for (_, status) in after), after
        # Every acknowledged upload is there, whole, after the restart.
        with running_node_process(data_dir, env) as (base, _):
            for doc, digest in uploaded.items():
                status, data = call("GET", f"{base}/api/v1/documents/{doc}/content", person)
                assert status == 200 and hashlib.sha256(data).hexdigest() == digest
        verify = run_cli(["ledger", "verify"], data_dir, env)
        assert verify.returncode == 0, verify.stdout + verify.stderr
