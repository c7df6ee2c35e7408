"""Named keys: the keys API, certificate chains, rotation, resumable creation."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gateway.app_keys import TOKEN
from gateway.errors import BadRequest, Conflict
from gateway.signing.keymgmt import version_label
from gateway.signing.models import SigningKey, SigningKeyVersion
from hsm import KeyAlgorithm
from tests.gateway.signing.api_node import Node, fresh
from tests.gateway.signing.checks import openssl


def load_chain(pem: str) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(pem.encode())


async def key_json(node: Node, name: str, headers: dict[str, str]) -> dict[str, Any]:
    response = await node.client.get(f"/api/v1/keys/{name}", headers=headers)
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def test_keys_api_describes_versions_and_chains(node: Node) -> None:
    headers = await node.add_client()
    ca = x509.load_pem_x509_certificate(await (await node.client.get("/api/v1/ca.pem")).read())
    ca.verify_directly_issued_by(ca)
    listed = await (await node.client.get("/api/v1/keys", headers=headers)).json()
    by_name = {k["name"]: k for k in listed["keys"]}
    assert set(by_name) == {"default", "tsa"}
    default = by_name["default"]
    assert (default["algorithm"], default["purpose"], default["status"]) == (
        "ec-p256",
        "sign",
        "active",
    )
    assert default["current_version"] == 1
    [version] = default["versions"]
    leaf, issuer = load_chain(version["certificate_chain_pem"])
    assert issuer == ca
    leaf.verify_directly_issued_by(ca)
    assert leaf == x509.load_pem_x509_certificate(version["certificate_pem"].encode())
    public_pem = leaf.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    assert version["public_key_pem"].encode() == public_pem
    tsa_leaf = load_chain(by_name["tsa"]["versions"][0]["certificate_chain_pem"])[0]
    eku = tsa_leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical
    assert await key_json(node, "default", headers) == default


async def test_rotation_keeps_old_versions_verifying(node: Node, tmp_path: Path) -> None:
    manager, _ = node.managers()
    created = await node.create_key(KeyAlgorithm.EC_P256)
    name = created.name
    headers = await node.add_client(keys=[name])
    digest = hashlib.sha256(b"before rotation").digest()
    body = {"digest": base64.b64encode(digest).decode()}
    first = await (
        await node.client.post(f"/api/v1/sign/{name}", json=body, headers=headers)
    ).json()
    assert first["version"] == 1

    rotated = await manager.rotate(name)
    assert (rotated.version, rotated.label, rotated.status) == (2, version_label(name, 2), "active")
    second = await (
        await node.client.post(f"/api/v1/sign/{name}", json=body, headers=headers)
    ).json()
    assert second["version"] == 2

    described = await key_json(node, name, headers)
    assert described["current_version"] == 2
    assert [(v["version"], v["status"]) for v in described["versions"]] == [
        (1, "retired"),
        (2, "active"),
    ]
    assert described["versions"][0]["retired_at"] is not None
    ca = x509.load_pem_x509_certificate(await (await node.client.get("/api/v1/ca.pem")).read())
    publics = []
    for version in described["versions"]:
        leaf = load_chain(version["certificate_chain_pem"])[0]
        leaf.verify_directly_issued_by(ca)
        publics.append(leaf.public_key())
    assert publics[0] != publics[1]
    for signed, public in ((first, publics[0]), (second, publics[1])):
        assert isinstance(public, ec.EllipticCurvePublicKey)
        public.verify(
            base64.b64decode(signed["signature"]), b"before rotation", ec.ECDSA(hashes.SHA256())
        )

    for signed, version in ((first, 1), (second, 2)):
        check = {**body, "signature": signed["signature"]}
        response = await node.client.post(f"/api/v1/verify/{name}", json=check, headers=headers)
        assert await response.json() == {"key": name, "valid": True, "version": version}
    pinned = {**body, "signature": first["signature"], "version": 2}
    response = await node.client.post(f"/api/v1/verify/{name}", json=pinned, headers=headers)
    assert (await response.json())["valid"] is False

    data = tmp_path / "data.txt"
    data.write_bytes(b"after rotation")
    cms = await node.client.post(
        f"/api/v1/cms/{name}",
        json={"data": base64.b64encode(data.read_bytes()).decode()},
        headers=headers,
    )
    assert cms.headers["Sekisho-Key-Version"] == "2"
    (tmp_path / "sig.der").write_bytes(await cms.read())
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(Encoding.PEM))
    result = openssl(
        "cms", "-verify", "-binary", "-inform", "DER", "-in", tmp_path / "sig.der",
        "-content", data, "-CAfile", tmp_path / "ca.pem", "-out", "/dev/null",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr

    registered = [e for e in await node.entries("key.registered") if e["key"] == name]
    assert [(e["version"], e["label"], e["actor"]) for e in registered] == [
        (1, version_label(name, 1), "operator:test"),
        (2, version_label(name, 2), "operator:test"),
    ]
    [rotation] = [e for e in await node.entries("key.rotated") if e["key"] == name]
    assert (rotation["old_version"], rotation["new_version"]) == (1, 2)
    assert rotation["spki_sha256"] == registered[1]["spki_sha256"]


async def test_creation_resumes_after_a_crash_and_refuses_foreign_labels(node: Node) -> None:
    manager, _ = node.managers()
    token = node.app[TOKEN]
    name = fresh("crash")
    key = await SigningKey.create(name=name, algorithm="ed25519", purpose="timestamp")
    await SigningKeyVersion.create(
        key_id=key.id, version=1, label=version_label(name, 1), status="pending"
    )
    await token.generate_key(version_label(name, 1), KeyAlgorithm.ED25519)  # then "crashed"
    resumed = await manager.create(name, KeyAlgorithm.ED25519, "timestamp")
    assert (resumed.version, resumed.status, resumed.purpose) == (1, "active", "timestamp")
    eku = x509.load_der_x509_certificate(resumed.certificate).extensions.get_extension_for_class(
        x509.ExtendedKeyUsage
    )
    assert eku.critical
    with pytest.raises(Conflict, match="already exists"):
        await manager.create(name, KeyAlgorithm.ED25519, "timestamp")

    foreign = fresh("foreign")
    await token.generate_key(version_label(foreign, 1), KeyAlgorithm.EC_P256)
    with pytest.raises(Conflict, match="registry does not know"):
        await manager.create(foreign, KeyAlgorithm.EC_P256, "sign")
    assert not await SigningKey.exists(name=foreign)
    with pytest.raises(BadRequest, match="key name"):
        await manager.create("Bad_Name", KeyAlgorithm.EC_P256, "sign")
    with pytest.raises(BadRequest, match="no signing key"):
        await manager.rotate(fresh("absent"))
