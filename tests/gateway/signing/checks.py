"""Independent checks of our CMS output: stock OpenSSL, and asn1crypto + cryptography."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asn1crypto import cms, tsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding

OPENSSL = "/usr/bin/openssl" if Path("/usr/bin/openssl").exists() else shutil.which("openssl")
_HASHES: dict[str, hashes.HashAlgorithm] = {
    "sha256": hashes.SHA256(),
    "sha384": hashes.SHA384(),
    "sha512": hashes.SHA512(),
}
assert tsp  # imported for its registration of the ESS attributes with asn1crypto


def openssl(*args: str | Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    """Run the stock openssl binary; the caller inspects returncode and output."""
    assert OPENSSL is not None, "these tests need the openssl command"
    return subprocess.run(
        [OPENSSL, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@dataclass(frozen=True)
class Verified:
    """What a successful Python-side verification found."""

    signed_data: Any
    signer_info: Any
    attributes: dict[str, Any]
    signer_certificate: x509.Certificate


def verify_in_python(
    der: bytes, root: x509.Certificate, *, content: bytes | None = None
) -> Verified:
    """Check a ContentInfo(SignedData) end to end; raise AssertionError (or
    cryptography's InvalidSignature) when anything is off.

    ``content`` is the detached content; without it the encapsulated content is used.
    """
    signed_data = cms.ContentInfo.load(der, strict=True)["content"]
    signer_info = signed_data["signer_infos"][0]
    certificate = _signer_certificate(signed_data, signer_info)
    _check_chain(certificate, _other_certificates(signed_data, certificate), root)
    attributes = {a["type"].native: a["values"][0] for a in signer_info["signed_attrs"]}
    hash_name = signer_info["digest_algorithm"]["algorithm"].native
    if content is None:
        content = signed_data["encap_content_info"]["content"].contents
    assert content is not None
    assert attributes["message_digest"].native == hashlib.new(hash_name, content).digest()
    assert attributes["content_type"] == signed_data["encap_content_info"]["content_type"]
    _check_ess(attributes["signing_certificate_v2"], certificate)
    set_der = b"\x31" + signer_info["signed_attrs"].dump()[1:]
    _verify_signature(certificate, signer_info["signature_algorithm"], signer_info, set_der)
    return Verified(signed_data, signer_info, attributes, certificate)


def _signer_certificate(signed_data: Any, signer_info: Any) -> x509.Certificate:
    """The certificate the SignerInfo's issuerAndSerialNumber names."""
    sid = signer_info["sid"].chosen
    for choice in signed_data["certificates"]:
        cert = choice.chosen
        if cert.issuer == sid["issuer"] and cert.serial_number == sid["serial_number"].native:
            return x509.load_der_x509_certificate(cert.dump())
    raise AssertionError("no certificate matches the SignerInfo sid")


def _other_certificates(signed_data: Any, leaf: x509.Certificate) -> list[x509.Certificate]:
    """The certificates in the SignedData besides the signer's."""
    certificates = [
        x509.load_der_x509_certificate(c.chosen.dump()) for c in signed_data["certificates"]
    ]
    return [c for c in certificates if c != leaf]


def _check_chain(
    leaf: x509.Certificate, others: list[x509.Certificate], root: x509.Certificate
) -> None:
    """Walk issuer links from ``leaf`` through ``others`` to ``root``."""
    current = leaf
    for _ in range(len(others) + 1):
        issuer = root if current.issuer == root.subject else None
        issuer = issuer or next(c for c in others if c.subject == current.issuer)
        current.verify_directly_issued_by(issuer)
        if issuer == root:
            return
        current = issuer
    raise AssertionError("no path to the root")


def _check_ess(signing_certificate: Any, certificate: x509.Certificate) -> None:
    """ESSCertIDv2: SHA-256 (the default) of the certificate, and its issuer and serial."""
    cert_id = signing_certificate["certs"][0]
    assert cert_id["hash_algorithm"]["algorithm"].native == "sha256"
    der = certificate.public_bytes(Encoding.DER)
    assert cert_id["cert_hash"].native == hashlib.sha256(der).digest()
    issuer_serial = cert_id["issuer_serial"]
    assert issuer_serial["serial_number"].native == certificate.serial_number
    [general_name] = issuer_serial["issuer"]
    assert general_name.name == "directory_name"
    assert general_name.chosen.untag().dump() == certificate.issuer.public_bytes()


def _verify_signature(
    certificate: x509.Certificate, algorithm: Any, signer_info: Any, message: bytes
) -> None:
    """Verify the SignerInfo signature with the algorithm it declares."""
    key = certificate.public_key()
    signature = signer_info["signature"].native
    name = algorithm["algorithm"].native
    if name == "ed25519":
        assert isinstance(key, ed25519.Ed25519PublicKey)
        key.verify(signature, message)
    elif name.endswith("_ecdsa"):
        assert isinstance(key, ec.EllipticCurvePublicKey)
        key.verify(signature, message, ec.ECDSA(_HASHES[name.removesuffix("_ecdsa")]))
    else:
        assert name == "rsassa_pss"
        assert isinstance(key, rsa.RSAPublicKey)
        params = algorithm["parameters"]
        digest = _HASHES[params["hash_algorithm"]["algorithm"].native]
        mgf_hash = _HASHES[params["mask_gen_algorithm"]["parameters"]["algorithm"].native]
        pss = padding.PSS(mgf=padding.MGF1(mgf_hash), salt_length=params["salt_length"].native)
        key.verify(signature, message, pss, digest)


def openssl_verifies_ed25519_cms(workdir: Path) -> bool:
    """Whether this openssl can sign and verify its own Ed25519 CMS with signed attributes.

    OpenSSL 3.0 cannot (openssl/openssl#11915: the EdDSA provider refuses the digest
    CMS passes it).
    """
    key, cert, data, sig = (workdir / n for n in ("ed.key", "ed.pem", "ed.txt", "ed.der"))
    data.write_bytes(b"probe")
    steps = [
        ("genpkey", "-algorithm", "ed25519", "-out", key),
        ("req", "-new", "-x509", "-key", key, "-subj", "/CN=probe", "-days", "1", "-out", cert),
        (
            "cms",
            "-sign",
            "-binary",
            "-md",
            "sha512",
            "-in",
            data,
            "-signer",
            cert,
            "-inkey",
            key,
            "-outform",
            "DER",
            "-out",
            sig,
        ),
        ("cms", "-verify", "-binary", "-inform", "DER", "-in", sig, "-content", data, "-noverify"),
    ]
    return all(openssl(*step).returncode == 0 for step in steps)
