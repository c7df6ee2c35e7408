"""RFC 3161 over HTTP: ``openssl ts -query`` in, ``openssl ts -verify`` says OK."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from asn1crypto import cms, parser, tsp
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from gateway.app import build_app
from gateway.bootstrap import initialise
from gateway.config import DEFAULT_TSA_POLICY
from gateway.errors import ConfigError
from hsm import TokenConfig
from tests.gateway.signing.api_node import Client, Headers, Node, node_settings
from tests.gateway.signing.checks import openssl

DATA = b"part 4711-A handed from depot 3 to unit 12\n"
QUERY = "application/timestamp-query"


def make_query(tmp_path: Path, *args: str) -> bytes:
    data, query = tmp_path / "data.bin", tmp_path / "query.tsq"
    data.write_bytes(DATA)
    result = openssl("ts", "-query", "-data", data, "-sha256", "-out", query, *args)
    assert result.returncode == 0, result.stderr
    return query.read_bytes()


async def stamp(node: Node, headers: Headers, query: bytes) -> bytes:
    response = await node.client.post(
        "/api/v1/timestamp", data=query, headers={**headers, "Content-Type": QUERY}
    )
    assert response.status == 200, await response.text()
    assert response.content_type == "application/timestamp-reply"
    return await response.read()


async def ca_file(node: Node, tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    path.write_text(await (await node.client.get("/api/v1/ca.pem")).text())
    return path


def tst_info(reply: bytes) -> tsp.TSTInfo:
    parsed = tsp.TimeStampResp.load(reply)
    assert parsed["status"]["status"].native == "granted"
    signed = parsed["time_stamp_token"]["content"]
    return signed["encap_content_info"]["content"].parsed


def rejection(reply: bytes) -> tuple[str, set[str]]:
    """Status and failInfo of a reply without a token."""
    status = tsp.PKIStatusInfo.load(parser.parse(reply)[4], strict=True)
    return status["status"].native, set(status["fail_info"].native)


def reply_text(reply: bytes, tmp_path: Path) -> str:
    path = tmp_path / "reply.tsr"
    path.write_bytes(reply)
    result = openssl("ts", "-reply", "-in", path, "-text")
    assert result.returncode == 0, result.stderr
    return result.stdout


async def test_openssl_query_reply_verifies(node: Node, tmp_path: Path) -> None:
    headers = await node.add_client(scopes=["timestamp"], name="footage-tsa-client")
    query = make_query(tmp_path, "-cert")
    reply = await stamp(node, headers, query)
    reply_path, data_path = tmp_path / "reply.tsr", tmp_path / "data.bin"
    reply_path.write_bytes(reply)
    ca = await ca_file(node, tmp_path)
    result = openssl("ts", "-verify", "-in", reply_path, "-data", data_path, "-CAfile", ca)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Verification: OK" in result.stdout
    query_path = tmp_path / "query.tsq"
    by_query = openssl("ts", "-verify", "-in", reply_path, "-queryfile", query_path, "-CAfile", ca)
    assert "Verification: OK" in by_query.stdout, by_query.stdout + by_query.stderr
    data_path.write_bytes(DATA + b"changed")
    changed = openssl("ts", "-verify", "-in", reply_path, "-data", data_path, "-CAfile", ca)
    assert changed.returncode != 0

    info = tst_info(reply)
    nonce = tsp.TimeStampReq.load(query)["nonce"].native
    assert nonce is not None and info["nonce"].native == nonce
    assert info["policy"].dotted == DEFAULT_TSA_POLICY
    assert info["message_imprint"]["hashed_message"].native == hashlib.sha256(DATA).digest()
    token = tsp.TimeStampResp.load(reply)["time_stamp_token"]["content"]
    [signer_info] = token["signer_infos"]
    attributes = {a["type"].native for a in signer_info["signed_attrs"]}
    assert "signing_certificate_v2" in attributes
    certificates = [x509.load_der_x509_certificate(c.chosen.dump()) for c in token["certificates"]]
    [tsa] = [c for c in certificates if c.subject != c.issuer]  # the other one is the CA
    eku = tsa.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical and list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]

    [entry] = await node.entries("signature.issued")
    assert entry["kind"] == "timestamp" and entry["client"] == "footage-tsa-client"
    assert (entry["key"], entry["key_version"]) == ("tsa", 1)
    assert entry["digest"] == hashlib.sha256(DATA).hexdigest()
    assert int(entry["serial"], 16) == info["serial_number"].native


async def test_serials_are_unique_and_the_policy_is_configurable(
    node: Node, tmp_path: Path
) -> None:
    headers = await node.add_client(scopes=["timestamp"])
    query = make_query(tmp_path, "-cert", "-no_nonce")
    serials = {
        tst_info(await stamp(node, headers, query))["serial_number"].native for _ in range(20)
    }
    assert len(serials) == 20
    assert all(0 < s < 1 << 160 for s in serials)

    asked = make_query(tmp_path, "-tspolicy", DEFAULT_TSA_POLICY)
    assert tst_info(await stamp(node, headers, asked))["policy"].dotted == DEFAULT_TSA_POLICY
    other = make_query(tmp_path, "-tspolicy", "1.2.3.4.5")
    rejected = rejection(await stamp(node, headers, other))
    assert rejected == ("rejection", {"unaccepted_policy"})
    assert len(await node.entries("signature.issued")) == 21  # rejections are not signatures


async def test_bad_queries_get_rejection_replies(node: Node, tmp_path: Path) -> None:
    headers = await node.add_client(scopes=["timestamp"])
    good = make_query(tmp_path)
    md5 = tsp.TimeStampReq.load(good).copy()
    md5["message_imprint"] = {
        "hash_algorithm": {"algorithm": "md5"},
        "hashed_message": hashlib.md5(DATA).digest(),  # noqa: S324 - a refused algorithm
    }
    short = tsp.TimeStampReq.load(good).copy()
    short["message_imprint"] = {"hash_algorithm": {"algorithm": "sha256"}, "hashed_message": b"x"}
    cases = {
        "garbage": (b"not DER at all", "bad_data_format"),
        "truncated": (good[:-3], "bad_data_format"),
        "md5": (md5.dump(force=True), "bad_alg"),
        "short imprint": (short.dump(force=True), "bad_data_format"),
    }
    for name, (query, failure) in cases.items():
        reply = await stamp(node, headers, query)
        assert rejection(reply) == ("rejection", {failure}), name
        text = reply_text(reply, tmp_path)
        assert re.search(r"Status: [Rr]ejected", text), text
    assert await node.entries("signature.issued") == []

    wrong_type = await node.client.post(
        "/api/v1/timestamp",
        data=good,
        headers={**headers, "Content-Type": "application/octet-stream"},
    )
    assert (wrong_type.status, (await wrong_type.json())["error"]) == (
        415,
        "unsupported_media_type",
    )
    huge = await node.client.post(
        "/api/v1/timestamp", data=b"0" * 70_000, headers={**headers, "Content-Type": QUERY}
    )
    assert huge.status == 413


async def test_without_cert_req_the_token_carries_no_certificates(
    node: Node, tmp_path: Path
) -> None:
    headers = await node.add_client(scopes=["timestamp"])
    reply = await stamp(node, headers, make_query(tmp_path))
    token = tsp.TimeStampResp.load(reply)["time_stamp_token"]
    assert isinstance(token, cms.ContentInfo)
    assert token["content"]["certificates"].native is None
    keys = await (await node.client.get("/api/v1/keys/tsa", headers=headers)).json()
    tsa_pem = tmp_path / "tsa.pem"
    tsa_pem.write_text(keys["versions"][0]["certificate_pem"])
    reply_path = tmp_path / "r.tsr"
    reply_path.write_bytes(reply)
    result = openssl(
        "ts", "-verify", "-in", reply_path, "-queryfile", tmp_path / "query.tsq",
        "-CAfile", await ca_file(node, tmp_path), "-untrusted", tsa_pem,
    )  # fmt: skip
    assert "Verification: OK" in result.stdout, result.stdout + result.stderr


async def test_the_policy_oid_is_a_setting(
    tmp_path: Path,
    token_config: TokenConfig,
    monkeypatch: pytest.MonkeyPatch,
    aiohttp_client: Callable[..., Awaitable[Client]],
) -> None:
    with pytest.raises(ConfigError, match=r"signing\.tsa_policy"):
        node_settings(tmp_path / "x", token_config, SEKISHO_SIGNING_TSA_POLICY="not-an-oid")
    monkeypatch.setenv("SEKISHO_HSM_PIN", token_config.pin.reveal())
    policy = "1.3.6.1.4.1.55555.3161.7"
    settings = node_settings(tmp_path / "var", token_config, SEKISHO_SIGNING_TSA_POLICY=policy)
    await initialise(settings)
    app = build_app(settings)
    node = Node(await aiohttp_client(app), settings, app)
    headers = await node.add_client(scopes=["timestamp"])
    assert tst_info(await stamp(node, headers, make_query(tmp_path)))["policy"].dotted == policy
    asked = make_query(tmp_path, "-tspolicy", policy)
    assert tst_info(await stamp(node, headers, asked))["policy"].dotted == policy
    default = make_query(tmp_path, "-tspolicy", DEFAULT_TSA_POLICY)
    assert rejection(await stamp(node, headers, default)) == ("rejection", {"unaccepted_policy"})
