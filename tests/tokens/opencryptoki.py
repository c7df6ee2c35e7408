"""A real opencryptoki software token for tests: ``pkcsslotd`` started once per test run.

opencryptoki keeps one machine-wide daemon and token store (/var/lib/opencryptoki),
so with xdist the workers share it: a file lock lets the first worker start the
daemon and initialise the token with ``pkcsconf``, a reference count lets the last
one stop it. Before starting the daemon the first worker records what loading the
module says while ``pkcsslotd`` is down (the error an operator sees). No pytest here:
the benchmarks start the token with the same code (``TokenUnavailable`` says why not).

A test that stops the daemon mid-run (tests/tokens/test_opencryptoki_node.py) holds
:func:`daemon_stopped`, an exclusive lock; every other test of the soft token holds
:func:`in_use`, a shared one, for its duration: the daemon is never stopped under
another test, whichever xdist worker runs it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.nodes import run_cli
from tests.tokens import TokenUnavailable

MODULE = "/usr/lib/x86_64-linux-gnu/pkcs11/libopencryptoki.so"
PKCSSLOTD = "/usr/sbin/pkcsslotd"
PKCSCONF = "/usr/sbin/pkcsconf"
STORE = Path("/var/lib/opencryptoki/swtok")
LABEL = "sekisho-ock"
# Throwaway test PINs; pkcsconf takes PINs only as arguments or from a terminal.
DEFAULT_SO_PIN = "87654321"
SO_PIN = "76543210"
USER_PIN = "24681357"


@dataclass(frozen=True)
class OpencryptokiToken:
    """How to reach the initialised soft token, and what loading failed with before."""

    module: str
    label: str
    pin_file: Path
    stopped_error: str
    shared: Path
    """The directory the xdist workers share (locks, state)."""

    @property
    def uri(self) -> str:
        """The RFC 7512 URI naming the token and module."""
        return f"pkcs11:token={self.label}?module-path={self.module}"


def _missing_reason() -> str | None:
    for path in (MODULE, PKCSSLOTD, PKCSCONF):
        if not Path(path).exists():
            return f"{path} is missing: apt-get install opencryptoki (./dev test does)"
    if os.geteuid() != 0:
        return "opencryptoki's pkcsslotd needs root here (machine-wide daemon and store)"
    return None


def _daemon_pid() -> int | None:
    """The running pkcsslotd (zombies left by a daemon's own fork do not count)."""
    found = subprocess.run(
        ["pgrep", "-x", "pkcsslotd"], capture_output=True, text=True, check=False
    ).stdout.split()
    for pid in found:
        with contextlib.suppress(OSError):
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            if state != "Z":
                return int(pid)
    return None


def _stop_daemon() -> None:
    """SIGTERM, then SIGKILL: pkcsslotd ignores SIGTERM while a process (this one) has
    the module loaded, and python-pkcs11 never unloads it."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pid = _daemon_pid()
        if pid is None:
            return
        os.kill(pid, sig)
        for _ in range(20):
            if _daemon_pid() is None:
                return
            time.sleep(0.1)


def start_daemon() -> None:
    """Start pkcsslotd and wait until it runs."""
    Path("/run/opencryptoki/swtok").mkdir(parents=True, exist_ok=True)
    shutil.chown("/run/opencryptoki", group="pkcs11")
    subprocess.run([PKCSSLOTD], check=True, timeout=30)
    deadline = time.monotonic() + 30
    while _daemon_pid() is None:
        if time.monotonic() > deadline:
            raise RuntimeError("pkcsslotd did not start")
        time.sleep(0.1)


def _pkcsconf(*args: str, stdin: str = "") -> str:
    result = subprocess.run(
        [PKCSCONF, *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )
    return result.stdout + result.stderr


def _soft_slot() -> str:
    """The slot number of opencryptoki's software token (model "IBM SoftTok")."""
    output = _pkcsconf("-t")
    for block in re.split(r"(?=Token #\d+ Info:)", output):
        match = re.match(r"Token #(\d+) Info:", block)
        if match and "SoftTok" in block:
            return match.group(1)
    raise RuntimeError(f"no opencryptoki software token among: {output[:300]!r}")


def _wipe_store() -> None:
    """Empty the soft token's store (the daemon is down): the next init starts from scratch.

    Re-initialising an opencryptoki 3.8 soft token over an old one leaves its SO
    master key unusable (CKR_FUNCTION_FAILED at SO login), so the tests start clean.
    """
    for child in STORE.iterdir() if STORE.is_dir() else ():
        if child.is_dir():
            for item in child.iterdir():
                item.unlink()
        else:
            child.unlink()


def _initialise_token(slot: str) -> None:
    """Initialise the empty soft token, then set the SO and user PINs."""
    steps = (
        (("-c", slot, "-I", "-S", DEFAULT_SO_PIN), LABEL + "\n"),
        (("-c", slot, "-P", "-S", DEFAULT_SO_PIN, "-n", SO_PIN), ""),
        (("-c", slot, "-u", "-S", SO_PIN, "-n", "1111"), ""),
        (("-c", slot, "-p", "-U", "1111", "-n", USER_PIN), ""),
    )
    for args, stdin in steps:
        _pkcsconf(*args, stdin=stdin)
    info = _pkcsconf("-t", "-c", slot)
    if LABEL not in info or "USER_PIN_INITIALIZED" not in info or "TO_BE_CHANGED" in info:
        raise RuntimeError(f"pkcsconf did not initialise the soft token: {info[:400]!r}")


def _stopped_error(pin_file: Path, workdir: Path) -> str:
    """What ``sekisho hsm status`` says while pkcsslotd is down."""
    extra = {
        "SEKISHO_HSM_URI": f"pkcs11:token={LABEL}?module-path={MODULE}",
        "SEKISHO_HSM_PIN_FILE": str(pin_file),
    }
    return run_cli(["hsm", "status"], workdir / "stopped-node", extra, timeout=60).stderr


@contextlib.contextmanager
def _locked(path: Path, mode: int = fcntl.LOCK_EX) -> Iterator[None]:
    with path.open("a+") as handle:
        fcntl.flock(handle, mode)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def opencryptoki_token(shared: Path, *, probe_stopped: bool = True) -> Iterator[OpencryptokiToken]:
    """Start (or join) the run's pkcsslotd and soft token; stop it with the last user.

    ``probe_stopped`` records what ``sekisho hsm status`` says before the daemon starts
    (a CLI run; the benchmarks skip it and get an empty ``stopped_error``).
    """
    reason = _missing_reason()
    if reason is not None:
        raise TokenUnavailable(reason)
    shared.mkdir(parents=True, exist_ok=True)
    state_file = shared / "opencryptoki.json"
    pin_file = shared / "opencryptoki.pin"
    # Shared on the daemon lock: a daemon stopped by daemon_stopped() is not "not started".
    with (
        _locked(shared / "opencryptoki.daemon.lock", fcntl.LOCK_SH),
        _locked(shared / "opencryptoki.lock"),
    ):
        state = json.loads(state_file.read_text()) if state_file.exists() else None
        if state is None or _daemon_pid() is None:
            if _daemon_pid() is not None:
                raise TokenUnavailable(
                    "pkcsslotd runs outside this run; stop it to let the run own the soft token"
                )
            pin_file.write_text(USER_PIN)
            pin_file.chmod(0o600)
            stopped = _stopped_error(pin_file, shared) if probe_stopped else ""
            _wipe_store()
            start_daemon()
            _initialise_token(_soft_slot())
            users = state["users"] if state else 0
            state = {"users": users, "started": True, "stopped_error": stopped}
        state["users"] += 1
        state_file.write_text(json.dumps(state))
    try:
        yield OpencryptokiToken(MODULE, LABEL, pin_file, state["stopped_error"], shared)
    finally:
        with _locked(shared / "opencryptoki.lock"):
            state = json.loads(state_file.read_text())
            state["users"] -= 1
            state_file.write_text(json.dumps(state))
            if state["users"] == 0 and state["started"]:
                _stop_daemon()


@contextlib.contextmanager
def in_use(token: OpencryptokiToken) -> Iterator[OpencryptokiToken]:
    """Hold the daemon for one test (shared): :func:`daemon_stopped` waits for it."""
    with _locked(token.shared / "opencryptoki.daemon.lock", fcntl.LOCK_SH):
        yield token


@contextlib.contextmanager
def daemon_stopped(token: OpencryptokiToken) -> Iterator[None]:
    """Stop pkcsslotd while no other test uses it (exclusive); start it again after."""
    with _locked(token.shared / "opencryptoki.daemon.lock"):
        _stop_daemon()
        try:
            yield
        finally:
            start_daemon()
