"""Signing tests: a test PKI (root, issuing CA, document-signing and TSA leaves) shared by
the CMS and time-stamp tests, and the in-process API node (tests/gateway/signing/api_node.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.signing.message_signer import KeyAlgorithm
from tests.gateway.signing.api_node import node
from tests.gateway.signing.checks import openssl_verifies_ed25519_cms
from tests.gateway.signing.softkeys import (
    ALGORITHMS,
    Authority,
    SoftwareSigner,
    intermediate_ca,
    leaf_signer,
    root_ca,
)

__all__ = ["Pki", "node", "openssl_ed25519_cms", "pki"]


@dataclass(frozen=True)
class Pki:
    """The CAs, one document signer and one TSA per key type, and their PEM files."""

    root: Authority
    issuing: Authority
    signers: dict[KeyAlgorithm, SoftwareSigner]
    tsas: dict[KeyAlgorithm, SoftwareSigner]
    ca_file: Path
    issuing_file: Path


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """Build the PKI once per session."""
    directory = tmp_path_factory.mktemp("pki")
    root = root_ca()
    issuing = intermediate_ca(root)
    (directory / "ca.pem").write_bytes(root.pem)
    (directory / "issuing.pem").write_bytes(issuing.pem)
    return Pki(
        root=root,
        issuing=issuing,
        signers={a: leaf_signer(a, issuing) for a in ALGORITHMS},
        tsas={a: leaf_signer(a, issuing, timestamping=True) for a in ALGORITHMS},
        ca_file=directory / "ca.pem",
        issuing_file=directory / "issuing.pem",
    )


@pytest.fixture(scope="session")
def openssl_ed25519_cms(tmp_path_factory: pytest.TempPathFactory) -> bool:
    """Whether the local openssl verifies Ed25519 CMS at all (3.0 does not)."""
    return openssl_verifies_ed25519_cms(tmp_path_factory.mktemp("ed-probe"))
