"""A time-stamping authority that is not Sekisho: OpenSSL's own ``openssl ts -reply``.

:func:`make_openssl_tsa` makes a CA, a TSA key and certificate (critical
extendedKeyUsage timeStamping) and an openssl configuration with a ``[tsa]``
section. Run as ``python -m tests.tsa_server DIR PORT`` it serves RFC 3161
over HTTP: each POSTed TimeStampReq is answered by ``openssl ts -reply``.
The fixture :func:`openssl_tsa` starts one per test session.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

OPENSSL = "/usr/bin/openssl" if Path("/usr/bin/openssl").exists() else shutil.which("openssl")
POLICY = "1.2.3.4.1"
_CONFIG = """\
[ tsa ]
default_tsa = tsa_config1

[ tsa_config1 ]
dir = {dir}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.pem
certs = $dir/ca.pem
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = {policy}
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = no
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


def _openssl(*args: str | Path) -> None:
    assert OPENSSL is not None, "these tests need the openssl command"
    done = subprocess.run(
        [OPENSSL, *map(str, args)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr


def make_ca(directory: Path, name: str = "ca") -> tuple[Path, Path]:
    """A self-signed EC CA: (certificate, key)."""
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", key, "-out", cert, "-days", "3650", "-subj", f"/CN=Test TSA {name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    return cert, key


def make_openssl_tsa(directory: Path) -> Path:
    """CA, TSA certificate and key, serial file and ``tsa.cnf`` in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key = make_ca(directory)
    csr, ext = directory / "tsa.csr", directory / "tsa.ext"
    ext.write_text(
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=critical,timeStamping\n"
    )
    _openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", directory / "tsa.key", "-out", csr, "-subj", "/CN=OpenSSL test TSA",
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial",
        "-out", directory / "tsa.pem", "-days", "3650", "-extfile", ext,
    )  # fmt: skip
    (directory / "serial").write_text("01\n")
    config = directory / "tsa.cnf"
    config.write_text(_CONFIG.format(dir=directory, policy=POLICY))
    return config


def reply_app(directory: Path) -> web.Application:
    """POST a TimeStampReq, get ``openssl ts -reply``'s TimeStampResp (one at a time)."""
    lock = asyncio.Lock()

    async def stamp(request: web.Request) -> web.Response:
        query = await request.read()
        async with lock:
            scratch = Path(tempfile.mkdtemp(prefix="tsa-"))
            (scratch / "q.tsq").write_bytes(query)
            process = await asyncio.create_subprocess_exec(
                str(OPENSSL), "ts", "-reply", "-config", str(directory / "tsa.cnf"),
                "-queryfile", str(scratch / "q.tsq"), "-out", str(scratch / "r.tsr"),
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            _, errors = await process.communicate()
            body = (scratch / "r.tsr").read_bytes() if process.returncode == 0 else b""
            shutil.rmtree(scratch)
        if process.returncode != 0:
            return web.Response(status=500, text=errors.decode(errors="replace"))
        return web.Response(body=body, content_type="application/timestamp-reply")

    app = web.Application()
    app.router.add_post("/", stamp)
    return app


@dataclass(frozen=True)
class OpensslTsa:
    """The running OpenSSL TSA: its URL and the CA its certificate chains to."""

    url: str
    ca: Path
    directory: Path

    def setting(self, name: str = "openssl", **extra: str) -> dict[str, str]:
        """One ``[[anchoring.tsas]]`` item for it."""
        return {"name": name, "url": self.url, "certs": str(self.ca), **extra}


@pytest.fixture(scope="session")
def openssl_tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpensslTsa]:
    """OpenSSL's TSA behind a few lines of aiohttp, for the whole test session."""
    from tests.nodes import free_port, http_get

    directory = tmp_path_factory.mktemp("openssl-tsa")
    make_openssl_tsa(directory)
    port = free_port()
    log = open(directory / "server.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.tsa_server", str(directory), str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                http_get(url, timeout=1)  # GET is 405: the server is up
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((directory / "server.log").read_text()) from None
                time.sleep(0.1)
        yield OpensslTsa(url, directory / "ca.pem", directory)
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


if __name__ == "__main__":
    web.run_app(reply_app(Path(sys.argv[1])), host="127.0.0.1", port=int(sys.argv[2]))
