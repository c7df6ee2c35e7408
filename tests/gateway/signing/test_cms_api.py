"""CMS over HTTP, verified by stock ``openssl cms -verify`` against the node's CA."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from cryptography import x509

from hsm import KeyAlgorithm
from tests.gateway.signing.api_node import Headers, Node
from tests.gateway.signing.checks import openssl, openssl_verifies_ed25519_cms, verify_in_python

DATA = b"drone footage 2026-11-23T04:10Z 35.6895N 139.6917E\n" * 50


async def ca_file(node: Node, tmp_path: Path) -> Path:
    response = await node.client.get("/api/v1/ca.pem")
    assert response.status == 200
    assert response.content_type == "application/x-pem-file"
    path = tmp_path / "ca.pem"
    path.write_text(await response.text())
    return path


async def cms(node: Node, headers: Headers, key: str, body: dict[str, str]) -> bytes:
    response = await node.client.post(f"/api/v1/cms/{key}", json=body, headers=headers)
    assert response.status == 200, await response.text()
    assert response.content_type == "application/pkcs7-signature"
    assert response.headers["Sekisho-Key"] == key
    return await response.read()


def openssl_verify(signature: bytes, content: bytes, ca: Path, tmp_path: Path) -> tuple[int, str]:
    sig, data = tmp_path / "sig.p7s", tmp_path / "content.bin"
    sig.write_bytes(signature)
    data.write_bytes(content)
    result = openssl(
        "cms", "-verify", "-binary", "-inform", "DER", "-in", sig, "-content", data,
        "-CAfile", ca, "-out", "/dev/null",
    )  # fmt: skip
    return result.returncode, result.stdout + result.stderr


async def test_cms_over_data_and_digest_verifies_with_openssl(node: Node, tmp_path: Path) -> None:
    headers = await node.add_client()
    ca = await ca_file(node, tmp_path)
    by_data = await cms(node, headers, "default", {"data": base64.b64encode(DATA).decode()})
    code, output = openssl_verify(by_data, DATA, ca, tmp_path)
    assert code == 0 and "Verification successful" in output, output

    digest = hashlib.sha384(DATA).digest()
    body = {"digest": base64.b64encode(digest).decode(), "hash": "sha384"}
    by_digest = await cms(node, headers, "default", body)
    code, output = openssl_verify(by_digest, DATA, ca, tmp_path)
    assert code == 0, output

    changed = DATA[:-2] + b"!\n"
    code, output = openssl_verify(by_data, changed, ca, tmp_path)
    assert code != 0 and "Verification failure" in output
    code, _ = openssl_verify(by_digest, changed, ca, tmp_path)
    assert code != 0

    root = x509.load_pem_x509_certificate(ca.read_bytes())
    verified = verify_in_python(by_data, root, content=DATA)
    assert {"content_type", "message_digest", "signing_time", "signing_certificate_v2"} <= set(
        verified.attributes
    )
    entries = await node.entries("signature.issued")
    assert [(e["kind"], e["key"], e["key_version"], e["hash"], e["digest"]) for e in entries] == [
        ("cms", "default", 1, "sha256", hashlib.sha256(DATA).hexdigest()),
        ("cms", "default", 1, "sha384", digest.hex()),
    ]


async def test_cms_as_json_when_only_json_is_accepted(node: Node, tmp_path: Path) -> None:
    headers = await node.add_client()
    response = await node.client.post(
        "/api/v1/cms/default",
        json={"data": base64.b64encode(DATA).decode()},
        headers={**headers, "Accept": "application/json"},
    )
    assert response.status == 200
    body = await response.json()
    assert (body["key"], body["version"], body["hash"]) == ("default", 1, "sha256")
    assert base64.b64decode(body["digest"]) == hashlib.sha256(DATA).digest()
    code, output = openssl_verify(
        base64.b64decode(body["cms"]), DATA, await ca_file(node, tmp_path), tmp_path
    )
    assert code == 0, output


async def test_ed25519_cms(node: Node, tmp_path: Path) -> None:
    key = await node.create_key(KeyAlgorithm.ED25519)
    headers = await node.add_client(keys=[key.name])
    signature = await cms(node, headers, key.name, {"data": base64.b64encode(DATA).decode()})
    ca = await ca_file(node, tmp_path)
    verified = verify_in_python(
        signature, x509.load_pem_x509_certificate(ca.read_bytes()), content=DATA
    )
    assert verified.signer_info["digest_algorithm"]["algorithm"].native == "sha512"
    if openssl_verifies_ed25519_cms(tmp_path):  # OpenSSL 3.0 cannot (openssl/openssl#11915)
        code, output = openssl_verify(signature, DATA, ca, tmp_path)
        assert code == 0, output
    wrong = await node.client.post(
        f"/api/v1/cms/{key.name}",
        json={"data": base64.b64encode(DATA).decode(), "hash": "sha256"},
        headers=headers,
    )
    assert wrong.status == 400
