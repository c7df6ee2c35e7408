"""Sign and verify over HTTP: ECDSA P-256, Ed25519 and RSA-PSS, single and batch, checked
with ``cryptography``; every signature is exactly one ledger entry."""

from __future__ import annotations

import base64
import hashlib
import os
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from hsm import KeyAlgorithm
from tests.gateway.signing.api_node import Headers, Node

HASHES: dict[str, hashes.HashAlgorithm] = {
    "sha256": hashes.SHA256(),
    "sha384": hashes.SHA384(),
    "sha512": hashes.SHA512(),
}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text)


async def certificate(node: Node, headers: Headers, key: str, version: int) -> x509.Certificate:
    response = await node.client.get(f"/api/v1/keys/{key}", headers=headers)
    assert response.status == 200, await response.text()
    body = await response.json()
    [entry] = [v for v in body["versions"] if v["version"] == version]
    return x509.load_pem_x509_certificate(entry["certificate_pem"].encode())


async def sign(node: Node, headers: Headers, key: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await node.client.post(f"/api/v1/sign/{key}", json=body, headers=headers)
    assert response.status == 200, await response.text()
    result: dict[str, Any] = await response.json()
    return result


@pytest.mark.parametrize("hash_name", ["sha256", "sha384", "sha512"])
async def test_ecdsa_p256_digest_der_and_raw_verify_with_cryptography(
    node: Node, hash_name: str
) -> None:
    headers = await node.add_client()
    message = os.urandom(300)
    digest = hashlib.new(hash_name, message).digest()
    public = (await certificate(node, headers, "default", 1)).public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)

    der = await sign(node, headers, "default", {"digest": b64(digest), "hash": hash_name})
    assert der["key"] == "default" and der["version"] == 1 and der["algorithm"] == "ec-p256"
    assert der["format"] == "der" and unb64(der["digest"]) == digest
    public.verify(unb64(der["signature"]), message, ec.ECDSA(HASHES[hash_name]))

    raw = await sign(
        node, headers, "default", {"digest": b64(digest), "hash": hash_name, "format": "raw"}
    )
    signature = unb64(raw["signature"])
    assert len(signature) == 64
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    public.verify(encode_dss_signature(r, s), message, ec.ECDSA(HASHES[hash_name]))

    data = await sign(node, headers, "default", {"data": b64(message), "hash": hash_name})
    assert unb64(data["digest"]) == digest
    public.verify(unb64(data["signature"]), message, ec.ECDSA(HASHES[hash_name]))


async def test_ed25519_digest_and_data(node: Node) -> None:
    key = await node.create_key(KeyAlgorithm.ED25519)
    headers = await node.add_client(keys=[key.name])
    public = (await certificate(node, headers, key.name, 1)).public_key()
    assert isinstance(public, ed25519.Ed25519PublicKey)
    message = os.urandom(1000)
    digest = hashlib.sha256(message).digest()
    for encoding in ("der", "raw"):
        signed = await sign(node, headers, key.name, {"digest": b64(digest), "format": encoding})
        assert signed["algorithm"] == "ed25519"
        public.verify(unb64(signed["signature"]), digest)  # Ed25519 over the digest bytes
    by_data = await sign(node, headers, key.name, {"data": b64(message), "hash": "sha512"})
    public.verify(unb64(by_data["signature"]), message)  # pure Ed25519 over the data
    assert unb64(by_data["digest"]) == hashlib.sha512(message).digest()


async def test_rsa_pss_where_the_token_offers_it(node: Node) -> None:
    key = await node.create_key(KeyAlgorithm.RSA_3072)
    headers = await node.add_client(keys=[key.name])
    public = (await certificate(node, headers, key.name, 1)).public_key()
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 3072
    message = b"spare part 4711 handed over"
    signed = await sign(node, headers, key.name, {"data": b64(message), "hash": "sha384"})
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)
    public.verify(unb64(signed["signature"]), message, pss, hashes.SHA384())


async def test_batch_returns_per_item_results_and_errors(node: Node) -> None:
    headers = await node.add_client()
    public = (await certificate(node, headers, "default", 1)).public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    good = [hashlib.sha256(bytes([i])).digest() for i in range(3)]
    body = {
        "format": "der",
        "batch": [
            {"digest": b64(good[0])},
            {"digest": b64(b"short")},
            {"digest": b64(good[1]), "format": "raw"},
            {"data": "***"},
            {"digest": b64(good[2]), "data": b64(b"both")},
            {"digest": b64(hashlib.sha512(b"x").digest()), "hash": "md5"},
            "not an object",
            {"digest": b64(good[2]), "colour": "blue"},
            {"data": b64(b"sha384 data"), "hash": "sha384"},
        ],
    }
    result = await sign(node, headers, "default", body)
    items = result["results"]
    assert [item["index"] for item in items] == list(range(9))
    errors = {item["index"]: item["error"] for item in items if "error" in item}
    assert errors == {
        1: "bad_digest_length",
        3: "bad_base64",
        4: "missing_input",
        5: "unsupported_hash",
        6: "bad_json",
        7: "unknown_field",
    }
    assert all("message" in item for item in items if "error" in item)
    public.verify(unb64(items[0]["signature"]), b"\x00", ec.ECDSA(hashes.SHA256()))
    raw = unb64(items[2]["signature"])
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    public.verify(der, b"\x01", ec.ECDSA(hashes.SHA256()))
    public.verify(unb64(items[8]["signature"]), b"sha384 data", ec.ECDSA(hashes.SHA384()))

    entries = await node.entries("signature.issued")
    assert len(entries) == 3
    assert sorted(e["digest"] for e in entries) == sorted(
        [good[0].hex(), good[1].hex(), hashlib.sha384(b"sha384 data").hexdigest()]
    )


async def test_verify_endpoint(node: Node) -> None:
    headers = await node.add_client()
    digest = hashlib.sha256(b"footage").digest()
    signed = await sign(node, headers, "default", {"digest": b64(digest), "format": "raw"})

    async def verify(body: dict[str, Any]) -> dict[str, Any]:
        response = await node.client.post("/api/v1/verify/default", json=body, headers=headers)
        assert response.status == 200, await response.text()
        result: dict[str, Any] = await response.json()
        return result

    ok = {"digest": b64(digest), "format": "raw", "signature": signed["signature"]}
    assert await verify(ok) == {"key": "default", "valid": True, "version": 1}
    assert (await verify({**ok, "version": 1}))["valid"] is True
    assert (await verify({**ok, "format": "der"}))["valid"] is False
    other = b64(hashlib.sha256(b"tampered").digest())
    assert await verify({**ok, "digest": other}) == {
        "key": "default",
        "valid": False,
        "version": None,
    }
    assert (await verify({**ok, "data": b64(b"footage"), "digest": None}))["valid"] is True
    missing = await node.client.post(
        "/api/v1/verify/default", json={**ok, "version": 9}, headers=headers
    )
    assert missing.status == 404
    assert (await missing.json())["error"] == "no_such_version"
    assert await node.entries("signature.issued") != []  # verification itself ledgers nothing
    assert len(await node.entries("signature.issued")) == 1


async def test_every_signature_is_one_ledger_entry_naming_client_key_version_digest(
    node: Node,
) -> None:
    key = await node.create_key(KeyAlgorithm.ED25519)
    name = "drone-authenticator"
    headers = await node.add_client(keys=["default", key.name], name=name)
    digests = [hashlib.sha256(os.urandom(8)).digest() for _ in range(4)]
    for digest in digests[:2]:
        await sign(node, headers, "default", {"digest": b64(digest)})
    await sign(node, headers, key.name, {"batch": [{"digest": b64(d)} for d in digests[2:]]})
    entries = await node.entries("signature.issued")
    assert len(entries) == 4
    assert [e["digest"] for e in entries][:2] == [d.hex() for d in digests[:2]]
    assert sorted(e["digest"] for e in entries[2:]) == sorted(d.hex() for d in digests[2:])
    for entry, key_name in zip(entries, ["default", "default", key.name, key.name], strict=True):
        assert entry["client"] == name
        assert entry["key"] == key_name
        assert entry["key_version"] == 1
        assert entry["hash"] == "sha256"
        assert entry["kind"] == "digest"
