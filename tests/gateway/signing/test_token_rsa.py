"""The RSA profile (RSA-only tokens such as opencryptoki), forced on SoftHSM: an RSA-3072 CA,
TSA and signing key on the token, checked by stock OpenSSL.

The CA signs certificates and the TSA time-stamps with PKCS#1 v1.5 (sha256WithRSAEncryption,
what ``openssl ts -verify`` accepts); signing keys sign CMS with RSA-PSS.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from asn1crypto import cms, tsp
from asn1crypto import x509 as asn1_x509

from gateway.signing.cms import build_detached_signed_data
from gateway.signing.named_keys import KeyVersion, pem
from gateway.signing.token_signer import TokenMessageSigner
from gateway.signing.tsp import build_timestamp_response, parse_timestamp_request
from hsm import CertificateRequest, KeyAlgorithm, Token, TokenConfig, issue_certificate
from tests.gateway.signing.checks import openssl

SHA256_RSA_NULL = bytes.fromhex("300d06092a864886f70d01010b0500")
"""AlgorithmIdentifier sha256WithRSAEncryption with NULL parameters, as DER."""
POLICY = "1.3.6.1.4.1.99999.1.1"
DATA = b"RSA-only token document\n"


@dataclass(frozen=True)
class RsaPki:
    """Labels and certificates of the RSA CA, TSA and signing keys on the test token."""

    ca: str
    ca_certificate: bytes
    tsa: KeyVersion
    signer: KeyVersion
    ca_file: Path


def _version(name: str, label: str, purpose: str, certificate: bytes) -> KeyVersion:
    return KeyVersion(
        name, 1, label, KeyAlgorithm.RSA_3072, purpose, "active", certificate,
        datetime.now(UTC), None,
    )  # fmt: skip


async def _make(config: TokenConfig, directory: Path) -> RsaPki:
    token = await Token.open(config)
    suffix = f"{os.getpid()}-{os.urandom(3).hex()}"
    ca, tsa, signer = (f"rsa-{role}-{suffix}" for role in ("ca", "tsa", "sign"))
    try:
        for label in (ca, tsa, signer):
            await token.generate_key(label, KeyAlgorithm.RSA_3072)
        ca_cert = await issue_certificate(
            token, CertificateRequest(ca, "RSA test CA", is_ca=True), ca_label=ca,
            ca_certificate=None,
        )  # fmt: skip
        tsa_cert = await issue_certificate(
            token,
            CertificateRequest(tsa, "RSA test TSA", extended_key_usage=("time_stamping",)),
            ca_label=ca,
            ca_certificate=ca_cert,
        )
        sign_cert = await issue_certificate(
            token, CertificateRequest(signer, "RSA test signer"), ca_label=ca,
            ca_certificate=ca_cert,
        )  # fmt: skip
    finally:
        await token.close()
    ca_file = directory / "rsa-ca.pem"
    ca_file.write_text(pem(ca_cert))
    return RsaPki(
        ca,
        ca_cert,
        _version("tsa", tsa, "timestamp", tsa_cert),
        _version("default", signer, "sign", sign_cert),
        ca_file,
    )


@pytest.fixture(scope="module")
def rsa_pki(
    token_config: TokenConfig, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RsaPki]:
    """Three RSA-3072 keys and their certificates, made once for the module."""
    made = asyncio.run(_make(token_config, tmp_path_factory.mktemp("rsa-pki")))
    yield made

    async def _remove() -> None:
        token = await Token.open(token_config)
        for label in (made.ca, made.tsa.label, made.signer.label):
            await token.destroy_key(label)
        await token.close()

    asyncio.run(_remove())


def test_certificates_are_sha256_with_rsa_and_openssl_verifies_them(
    rsa_pki: RsaPki, tmp_path: Path
) -> None:
    for der in (rsa_pki.ca_certificate, rsa_pki.tsa.certificate, rsa_pki.signer.certificate):
        parsed = asn1_x509.Certificate.load(der)
        assert parsed["signature_algorithm"].dump() == SHA256_RSA_NULL
        assert parsed["tbs_certificate"]["signature"].dump() == SHA256_RSA_NULL
    leaf = tmp_path / "tsa.pem"
    leaf.write_text(pem(rsa_pki.tsa.certificate))
    result = openssl("verify", "-CAfile", rsa_pki.ca_file, "-purpose", "timestampsign", leaf)
    assert result.returncode == 0, result.stdout + result.stderr


async def test_an_rsa_tsa_on_the_token_passes_openssl_ts_verify(
    rsa_pki: RsaPki, token: Token, tmp_path: Path
) -> None:
    data, query = tmp_path / "data.bin", tmp_path / "q.tsq"
    data.write_bytes(DATA)
    made = openssl("ts", "-query", "-data", data, "-sha256", "-cert", "-out", query)
    assert made.returncode == 0, made.stderr
    signer = TokenMessageSigner(token, rsa_pki.tsa, chain=(rsa_pki.ca_certificate,))
    assert signer.algorithm == "rsa-pkcs1"
    reply = await build_timestamp_response(
        parse_timestamp_request(query.read_bytes()), signer, policy_oid=POLICY, serial=11
    )
    response = tmp_path / "resp.tsr"
    response.write_bytes(reply)
    result = openssl(
        "ts", "-verify", "-in", response, "-queryfile", query, "-CAfile", rsa_pki.ca_file
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Verification: OK" in result.stdout
    signed = tsp.TimeStampResp.load(reply)["time_stamp_token"]["content"]
    signer_info = signed["signer_infos"][0]
    assert signer_info["signature_algorithm"].dump() == SHA256_RSA_NULL
    assert signer_info["digest_algorithm"]["algorithm"].native == "sha256"
    data.write_bytes(DATA + b"changed")
    result = openssl("ts", "-verify", "-in", response, "-data", data, "-CAfile", rsa_pki.ca_file)
    assert result.returncode != 0


async def test_cms_from_an_rsa_signing_key_is_pss_and_openssl_verifies_it(
    rsa_pki: RsaPki, token: Token, tmp_path: Path
) -> None:
    signer = TokenMessageSigner(token, rsa_pki.signer, chain=(rsa_pki.ca_certificate,))
    der = await build_detached_signed_data(signer, data=DATA)
    signature, content = tmp_path / "sig.der", tmp_path / "data.bin"
    signature.write_bytes(der)
    content.write_bytes(DATA)
    result = openssl(
        "cms", "-verify", "-binary", "-inform", "DER", "-in", signature, "-content", content,
        "-CAfile", rsa_pki.ca_file, "-purpose", "any", "-out", "/dev/null",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    signer_info = cms.ContentInfo.load(der)["content"]["signer_infos"][0]
    algorithm = signer_info["signature_algorithm"]
    assert algorithm["algorithm"].native == "rsassa_pss"
    assert algorithm["parameters"]["salt_length"].native == 32
