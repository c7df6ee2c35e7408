"""A real TPM 2.0 for tests: swtpm on loopback, tpm2-abrmd on a private D-Bus, tpm2-pkcs11.

One instance per test session (so per xdist worker): its own directory, ports,
session bus and PKCS#11 store, nothing machine-wide. The resource manager is
needed: without it the TPM's three object slots are shared by every client and
a second key fails with 0x902. ``TPM2_PKCS11_TCTI`` is always set, or the
module probes other devices and ports. The variables go into this process's
environment (the module reads them when loaded) and so to CLI subprocesses.
No pytest here: the benchmarks start the TPM with the same code.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.nodes import wait_for
from tests.tokens import TokenUnavailable

MODULE = "/usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so"
TABRMD_TCTI = "/usr/lib/x86_64-linux-gnu/libtss2-tcti-tabrmd.so.0"
BINARIES = ("swtpm", "tpm2-abrmd", "tpm2_ptool", "dbus-daemon", "tpm2_getrandom")
LABEL = "sekisho-tpm"
TCTI = "tabrmd:bus_type=session"
# Throwaway test PINs; tpm2_ptool takes them only as arguments.
SO_PIN = "so-7531"
USER_PIN = "user-8642"


class ResourceManager:
    """tpm2-abrmd on the fixture's session bus: started, stopped (a removed token), restarted."""

    def __init__(self, port: int, log: Path) -> None:
        self._command = [
            "tpm2-abrmd",
            "--allow-root",
            "--session",
            f"--tcti=swtpm:host=127.0.0.1,port={port}",
        ]
        self._log = log
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it; :meth:`wait_ready` waits until it answers."""
        with self._log.open("ab") as log:
            self._process = subprocess.Popen(self._command, stdout=subprocess.DEVNULL, stderr=log)

    def stop(self) -> None:
        """Stop it and wait until it has exited: every client's TPM connection is gone."""
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def wait_ready(self, seconds: float = 60) -> None:
        """Wait until a TPM command goes through it (it needs a moment to claim its bus name)."""
        env = {**os.environ, "TPM2TOOLS_TCTI": TCTI}
        deadline = time.monotonic() + seconds
        while True:
            probe = subprocess.run(
                ["tpm2_getrandom", "--hex", "8"], env=env, capture_output=True, timeout=60
            )
            if probe.returncode == 0:
                return
            if not self.running or time.monotonic() > deadline:
                log = self._log.read_text(errors="replace")[-300:]
                raise RuntimeError(
                    f"tpm2-abrmd does not answer: {probe.stderr.decode()[-300:]}; abrmd: {log}"
                )
            time.sleep(0.2)

    @property
    def running(self) -> bool:
        """True while the process is alive."""
        return self._process is not None and self._process.poll() is None


@dataclass(frozen=True)
class TpmToken:
    """How to reach the TPM-backed PKCS#11 token, and its resource manager (to remove it)."""

    module: str
    label: str
    pin_file: Path
    store: Path
    resource_manager: ResourceManager = field(compare=False, repr=False)

    @property
    def uri(self) -> str:
        """The RFC 7512 URI naming the token and module."""
        return f"pkcs11:token={self.label}?module-path={self.module}"

    def add_key_elsewhere(self, key_label: str) -> None:
        """Make a P-256 key pair with ``tpm2_ptool`` (another process, not Sekisho's code)."""
        subprocess.run(
            [
                "tpm2_ptool",
                "addkey",
                f"--label={self.label}",
                f"--key-label={key_label}",
                "--algorithm=ecc256",
                f"--userpin={USER_PIN}",
                "--path",
                str(self.store),
            ],
            env={**os.environ, "TPM2TOOLS_TCTI": TCTI},
            capture_output=True,
            check=True,
            timeout=120,
        )


def _missing_reason() -> str | None:
    for name in BINARIES:
        if shutil.which(name) is None and not Path("/usr/sbin", name).exists():
            return f"{name} is missing: apt-get install the TPM packages (./dev test does)"
    for path in (MODULE, TABRMD_TCTI):
        if not Path(path).exists():
            return f"{path} is missing: apt-get install libtpm2-pkcs11-1 libtss2-tcti-tabrmd0"
    return None


def _free_port_pair() -> int:
    """A loopback port P with P + 1 free too: the swtpm TCTI controls the TPM on P + 1."""
    for _ in range(100):
        with socket.socket() as first, socket.socket() as second:
            first.bind(("127.0.0.1", 0))
            port = int(first.getsockname()[1])
            try:
                second.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return port
    raise RuntimeError("no two adjacent free loopback ports")


def _stop(pid: int | None) -> None:
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)


def _listening(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


@contextlib.contextmanager
def tpm_token(root: Path) -> Iterator[TpmToken]:
    """Start swtpm, a session bus and tpm2-abrmd; make the tpm2-pkcs11 store and token."""
    reason = _missing_reason()
    if reason is not None:
        raise TokenUnavailable(reason)
    root.mkdir(parents=True, exist_ok=True)
    (root / "state").mkdir()
    store = root / "store"
    store.mkdir()
    bus = f"unix:path={root / 'bus'}"
    port = _free_port_pair()
    pids: list[int] = []
    abrmd = ResourceManager(port, root / "abrmd.log")
    names = ("DBUS_SESSION_BUS_ADDRESS", "TPM2_PKCS11_TCTI", "TPM2_PKCS11_STORE")
    saved = {name: os.environ.get(name) for name in names}
    try:
        dbus = subprocess.run(
            ["dbus-daemon", "--session", "--fork", f"--address={bus}", "--print-pid"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        pids.append(int(dbus.stdout.split()[0]))
        subprocess.run(
            [
                "swtpm",
                "socket",
                "--tpm2",
                "--tpmstate",
                f"dir={root / 'state'}",
                "--server",
                f"type=tcp,port={port},bindaddr=127.0.0.1",
                "--ctrl",
                f"type=tcp,port={port + 1},bindaddr=127.0.0.1",
                "--flags",
                "not-need-init,startup-clear",
                "--daemon",
                "--pid",
                f"file={root / 'swtpm.pid'}",
            ],
            check=True,
            timeout=30,
        )
        wait_for((root / "swtpm.pid").exists, what="swtpm's pid file")
        pids.append(int((root / "swtpm.pid").read_text().split()[0]))
        wait_for(lambda: _listening(port), what=f"swtpm to listen on port {port}")
        os.environ["DBUS_SESSION_BUS_ADDRESS"] = bus
        os.environ["TPM2_PKCS11_TCTI"] = TCTI
        abrmd.start()
        abrmd.wait_ready()
        env = {**os.environ, "TPM2TOOLS_TCTI": TCTI}
        subprocess.run(
            ["tpm2_ptool", "init", "--path", str(store)],
            env=env,
            capture_output=True,
            check=True,
            timeout=120,
        )
        subprocess.run(
            [
                "tpm2_ptool",
                "addtoken",
                "--pid=1",
                f"--label={LABEL}",
                f"--sopin={SO_PIN}",
                f"--userpin={USER_PIN}",
                "--path",
                str(store),
            ],
            env=env,
            capture_output=True,
            check=True,
            timeout=120,
        )
        os.environ["TPM2_PKCS11_STORE"] = str(store)
        pin_file = root / "user.pin"
        pin_file.write_text(USER_PIN)
        pin_file.chmod(0o600)
        yield TpmToken(MODULE, LABEL, pin_file, store, abrmd)
    finally:
        abrmd.stop()
        for pid in reversed(pids):
            _stop(pid)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
