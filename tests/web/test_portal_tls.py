"""Under TLS: Secure ``__Host-`` cookies, HSTS, and signing in with a client certificate."""

from __future__ import annotations

import re
import ssl
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import ClientSession, TCPConnector
from aiohttp.test_utils import TestClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.app import build_app
from gateway.app_keys import LEDGER
from gateway.auth.certificates import CertificateActor, PersonCertificates
from gateway.bootstrap import initialise
from hsm import TokenConfig
from tests.gateway.app_fixtures import node_settings
from tests.web.conftest import csrf_of, ledger_entries, person

Key = ec.EllipticCurvePrivateKey


def _certificate(
    name: str, key: Key, issuer: tuple[str, Key] | None = None, *, ca: bool = False
) -> x509.Certificate:
    issuer_name, issuer_key = issuer or (name, key)
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if name == "localhost":
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, cert: x509.Certificate, key: Key) -> tuple[Path, Path]:
    cert_path, key_path = path.with_suffix(".crt"), path.with_suffix(".key")
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class Pki:
    """A test CA, a server certificate for localhost and a person's client certificate."""

    def __init__(self, directory: Path) -> None:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = _certificate("Test CA", ca_key, ca=True)
        self.ca_path, _ = _write(directory / "ca", ca, ca_key)
        server_key = ec.generate_private_key(ec.SECP256R1())
        server = _certificate("localhost", server_key, ("Test CA", ca_key))
        self.server = _write(directory / "server", server, server_key)
        client_key = ec.generate_private_key(ec.SECP256R1())
        self.client_cert = _certificate("alice", client_key, ("Test CA", ca_key))
        self.client = _write(directory / "client", self.client_cert, client_key)

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*self.server)
        context.load_verify_locations(self.ca_path)
        context.verify_mode = ssl.CERT_OPTIONAL
        return context

    def client_context(self, *, with_certificate: bool) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca_path))
        if with_certificate:
            context.load_cert_chain(*self.client)
        return context


@pytest.fixture
async def tls_node(
    tmp_path: Path,
    token_config: TokenConfig,
    monkeypatch: pytest.MonkeyPatch,
    aiohttp_server: Callable[..., Awaitable[object]],
) -> tuple[str, Pki, object]:
    monkeypatch.setenv("SEKISHO_HSM_PIN", token_config.pin.reveal())
    settings = node_settings(tmp_path / "var", token_config)
    await initialise(settings)
    pki = Pki(tmp_path)
    server = await aiohttp_server(build_app(settings), ssl=pki.server_context())
    port = getattr(server, "port")  # noqa: B009
    return f"https://localhost:{port}", pki, server


def _session(pki: Pki, *, with_certificate: bool) -> ClientSession:
    connector = TCPConnector(ssl=pki.client_context(with_certificate=with_certificate))
    return ClientSession(connector=connector)


async def test_tls_cookies_are_secure_host_prefixed_and_hsts_is_sent(
    tls_node: tuple[str, Pki, object],
) -> None:
    base, pki, _ = tls_node
    await person("alice")
    async with _session(pki, with_certificate=False) as session:
        page = await session.get(base + "/login")
        assert page.status == 200
        assert page.headers["Strict-Transport-Security"].startswith("max-age=")
        cookie = page.headers["Set-Cookie"]
        assert cookie.startswith("__Host-sekisho-signin=")
        assert all(flag in cookie for flag in ("Secure", "HttpOnly", "SameSite=Strict", "Path=/"))
        assert "Domain" not in cookie
        html = await page.text()
        assert "Sign in with your certificate" not in html
        signed_in = await session.post(
            base + "/login",
            data={
                "csrf": csrf_of(html),
                "username": "alice",
                "password": "a long enough test password",
            },
            allow_redirects=False,
        )
        assert signed_in.status == 303
        cookies = signed_in.headers.getall("Set-Cookie")
        session_cookie = [c for c in cookies if c.startswith("__Host-sekisho-session=")]
        assert session_cookie and "Secure" in session_cookie[0]


async def test_a_person_signs_in_with_a_registered_client_certificate(
    tls_node: tuple[str, Pki, TestClient],  # type: ignore[type-arg]
) -> None:
    base, pki, server = tls_node
    alice = await person("alice")
    app = getattr(server, "app")  # noqa: B009
    pem = pki.client_cert.public_bytes(serialization.Encoding.PEM).decode()
    await PersonCertificates(app[LEDGER]).add(
        alice, pem, "test card", CertificateActor("person:admin", "test")
    )
    async with _session(pki, with_certificate=True) as session:
        page = await session.get(base + "/login")
        html = await page.text()
        assert "Sign in with your certificate (alice)" in html
        token = re.findall(r'name="csrf" value="([^"]+)"', html)[-1]
        signed_in = await session.post(
            base + "/login/certificate", data={"csrf": token, "next": "/"}, allow_redirects=False
        )
        assert signed_in.status == 303
        home = await session.get(base + "/")
        assert "Welcome, Alice" in await home.text()
    entries = await ledger_entries(app, "auth.sign_in")
    assert [(e["method"], e["outcome"]) for e in entries] == [("certificate", "granted")]
    [added] = [
        e
        for e in await ledger_entries(app, "principal.changed")
        if e["change"] == "certificate_added"
    ]
    assert len(added["certificate"]) == 64


async def test_an_unregistered_certificate_does_not_sign_in(
    tls_node: tuple[str, Pki, object],
) -> None:
    base, pki, _ = tls_node
    await person("alice")
    async with _session(pki, with_certificate=True) as session:
        page = await session.get(base + "/login")
        assert page.status == 200  # a personal certificate does not break the portal
        html = await page.text()
        refused = await session.post(
            base + "/login/certificate", data={"csrf": csrf_of(html)}, allow_redirects=False
        )
        assert refused.status == 401
        assert "does not belong to an enabled account" in await refused.text()
