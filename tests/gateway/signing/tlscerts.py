"""Throw-away TLS material: a CA, a server certificate for 127.0.0.1 and client certificates."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Issued:
    """A certificate and key on disk."""

    cert: Path
    key: Path
    der: bytes

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the DER certificate."""
        return hashlib.sha256(self.der).hexdigest()


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write(
    directory: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> Issued:
    cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Issued(cert_path, key_path, cert.public_bytes(serialization.Encoding.DER))


def _issue(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool = False,
    usage: x509.ObjectIdentifier | None = None,
    san_ip: str | None = None,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if san_ip is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(san_ip))]),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


@dataclass(frozen=True)
class TlsMaterial:
    """CA, server and client certificates."""

    ca: Issued
    server: Issued
    client: Issued
    other_client: Issued
    rogue: Issued


def make_tls_material(directory: Path) -> TlsMaterial:
    """One CA issuing the server and two clients; a rogue self-signed client besides."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _issue("Test CA", ca_key, _name("Test CA"), ca_key, ca=True)
    issued = {"ca": _write(directory, "ca", ca_cert, ca_key)}
    for stem, usage, ip in (
        ("server", ExtendedKeyUsageOID.SERVER_AUTH, "127.0.0.1"),
        ("client", ExtendedKeyUsageOID.CLIENT_AUTH, None),
        ("other_client", ExtendedKeyUsageOID.CLIENT_AUTH, None),
    ):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _issue(stem, key, ca_cert.subject, ca_key, usage=usage, san_ip=ip)
        issued[stem] = _write(directory, stem, cert, key)
    rogue_key = ec.generate_private_key(ec.SECP256R1())
    rogue = _issue(
        "client", rogue_key, _name("client"), rogue_key, usage=ExtendedKeyUsageOID.CLIENT_AUTH
    )
    issued["rogue"] = _write(directory, "rogue", rogue, rogue_key)
    return TlsMaterial(**issued)
