"""``sekisho init``: data directory, token, keys, certificates, schema, first accounts.

Idempotent: each step checks before it creates, and the report says what was
created, so running it twice changes nothing and says so.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from gateway.auth.passwords import hash_password, one_time_password
from gateway.auth.principals import NodeState, Principal
from gateway.config import Settings
from gateway.db.setup import close_database, open_database
from gateway.db.upgrade import ONE_PENDING, add_missing_columns, add_missing_indexes, has_index
from gateway.documents.approvals import close_duplicates
from gateway.documents.blob_backends import open_blob_store
from gateway.documents.kek import ensure_initial_version
from gateway.documents.s3_client import S3BlobStore
from gateway.ledger.entries import make_entry
from gateway.ledger.rollback import STARTED
from gateway.ledger.store import TortoiseLedgerStore
from gateway.node_token import open_node_token, require_on_token, softhsm_layout, token_config
from gateway.signing.keymgmt import initial_keys, register_initial
from hsm import (
    CertificateRequest,
    Function,
    KekType,
    MechanismNotSupported,
    Token,
    TokenNotFound,
    issue_certificate,
    provision_token,
)

ADMIN_USERNAME = "admin"
DEMO_ACCOUNTS: tuple[tuple[str, str, str, list[str], str, list[str]], ...] = (
    # username, display name, level, compartments, nationality, roles
    ("alice", "Alice Moreau", "SECRET", ["LOGISTICS"], "FRA", ["reader", "uploader"]),
    ("bob", "Bob Tanaka", "CONFIDENTIAL", [], "JPN", ["reader", "uploader"]),
    ("olivia", "Olivia Grant", "TOP SECRET", ["LOGISTICS"], "GBR", ["reader", "officer"]),
)


@dataclass
class InitReport:
    """What ``init`` did; empty ``created`` means everything already existed."""

    created: list[str] = field(default_factory=list)
    passwords: dict[str, str] = field(default_factory=dict)
    entries: list[bytes] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """True when anything was created."""
        return bool(self.created)


def key_plan(settings: Settings) -> list[tuple[str, Function, str]]:
    """The token keys a node needs: label, the function it serves, purpose."""
    keys = settings.keys
    return [
        (keys.ca, Function.CA, "certificate authority for the signing keys"),
        (keys.ledger, Function.CHECKPOINT, "signs ledger checkpoints (C2SP signed note)"),
        (keys.kek, Function.KEK, "wraps document data keys"),
        (keys.signing, Function.SIGNING, "signing API key"),
        (keys.tsa, Function.TIMESTAMP, "RFC 3161 time-stamping key"),
    ]


async def initialise(settings: Settings, *, demo: bool = False) -> InitReport:
    """Bring the node to a ready state, creating only what is missing."""
    report = InitReport()
    data_dir = settings.data_dir
    if not data_dir.exists():
        data_dir.mkdir(parents=True, mode=0o700)
        report.created.append(f"data directory {data_dir}")
    token = await _open_or_provision_token(settings, report)
    try:
        await _ensure_keys(token, settings, report)
        await _ensure_certificates(token, settings, report)
        signing_keys = await initial_keys(token, settings)
    finally:
        await token.close()
    await _ensure_blob_store(settings, report)
    await open_database(settings.database_url, create_schema=True)
    try:
        collector = _EntryCollector(settings.node.name, report.entries)
        if await _ledger_is_empty():  # the log's first entry (before key.created) binds its id
            started = make_entry(STARTED, settings.node.name, origin=settings.ledger_origin)
            report.entries.insert(0, started)
        await _upgrade_schema(report, collector)
        await _ensure_accounts(report, settings.node.name, demo=demo)
        report.created.extend(await register_initial(signing_keys, collector))
        if await ensure_initial_version(settings):
            report.created.append(f"KEK version 1 ({settings.keys.kek})")
        if report.entries:
            await TortoiseLedgerStore().enqueue(report.entries)
        if await NodeState.get_or_none(key="initialised") is None:
            await NodeState.create(key="initialised", value=settings.node.name)
            report.created.append("database schema")
    finally:
        await close_database()
    return report


async def _ledger_is_empty() -> bool:
    store = TortoiseLedgerStore()
    return not await store.leaves(0, 1) and not await store.pending_count()


async def _upgrade_schema(report: InitReport, collector: _EntryCollector) -> None:
    """The columns and indexes added since earlier releases (gateway/db/upgrade.py)."""
    for column in await add_missing_columns():
        report.created.append(f"column {column} (a database of an earlier release)")
    # the index cannot be built over the duplicates an earlier release let through
    if not await has_index(ONE_PENDING.name) and (closed := await close_duplicates(collector)):
        report.created.append(f"closed {closed} duplicate pending approval request(s)")
    for index in await add_missing_indexes():
        report.created.append(f"index {index}")


async def _ensure_blob_store(settings: Settings, report: InitReport) -> None:
    """An S3 store must be reachable with our credentials; its bucket is made if allowed."""
    if settings.blobs.backend != "s3":
        return
    async with open_blob_store(settings) as store:
        if isinstance(store, S3BlobStore) and await store.check(
            create=settings.blobs.s3_create_bucket
        ):
            report.created.append(f"S3 bucket {settings.blobs.s3_bucket}")


async def _open_or_provision_token(settings: Settings, report: InitReport) -> Token:
    if settings.uses_embedded_softhsm:
        layout = softhsm_layout(settings)
        missing = not layout.conf.exists()
        if not missing:
            # Only the embedded token itself may be provisioned: a token that [hsm.keys]
            # names and that is missing is the operator's to create (one line, below).
            try:
                await (await Token.open(token_config(settings))).close()
            except TokenNotFound:
                missing = True
        if missing:
            provision_token(layout, settings.hsm.token_label)
            report.created.append(f"SoftHSM token {settings.hsm.token_label!r} in {layout.root}")
    return await open_node_token(settings)


async def _ensure_keys(token: Token, settings: Settings, report: InitReport) -> None:
    plan = key_plan(settings)
    absent = [item for item in plan if not await token.has_key(item[0])]
    if not absent:
        return
    # Each key is checked against the profile of the token it lives on, all before any
    # key is made: one line naming every key, its token and the mechanism it lacks.
    missing: list[str] = []
    for label, function, _purpose in absent:
        try:
            await require_on_token(token, function, label)
        except MechanismNotSupported as exc:
            missing.append(exc.message)
    if missing:
        raise MechanismNotSupported("; ".join(missing) + " (see 'sekisho hsm status')")
    for label, function, purpose in absent:
        option = await require_on_token(token, function, label)
        algorithm = option.algorithm
        if function is Function.KEK:
            info = await token.generate_kek(label, KekType.for_algorithm(algorithm))
            await token.check_kek(label)
        else:
            info = await token.generate_key(label, algorithm)
        report.created.append(f"key {label} ({algorithm.value}, {option.mechanism}): {purpose}")
        spki = (
            hashlib.sha256(await token.public_key_der(label)).hexdigest()
            if algorithm.is_asymmetric
            else None
        )
        report.entries.append(
            make_entry(
                "key.created",
                settings.node.name,
                key=label,
                algorithm=algorithm.value,
                key_id=info.key_id,
                actor="init",
                spki_sha256=spki,
            )
        )


async def _ensure_certificates(token: Token, settings: Settings, report: InitReport) -> None:
    keys = settings.keys
    ca_cert = await token.certificate(keys.ca)
    if ca_cert is None:
        ca_cert = await issue_certificate(
            token,
            CertificateRequest(
                keys.ca,
                f"Sekisho CA {settings.node.name}",
                is_ca=True,
                validity=timedelta(days=7300),
            ),
            ca_label=keys.ca,
            ca_certificate=None,
        )
        report.created.append(f"CA certificate for {keys.ca}")
    if await token.certificate(keys.signing) is None:
        await issue_certificate(
            token,
            CertificateRequest(keys.signing, f"Sekisho signing {settings.node.name}"),
            ca_label=keys.ca,
            ca_certificate=ca_cert,
        )
        report.created.append(f"certificate for {keys.signing}")
    if await token.certificate(keys.tsa) is None:
        await issue_certificate(
            token,
            CertificateRequest(
                keys.tsa,
                f"Sekisho TSA {settings.node.name}",
                extended_key_usage=("time_stamping",),
            ),
            ca_label=keys.ca,
            ca_certificate=ca_cert,
        )
        report.created.append(f"time-stamping certificate for {keys.tsa}")


class _EntryCollector:
    """Builds ledger entries into the init report (queued together at the end)."""

    def __init__(self, node: str, entries: list[bytes]) -> None:
        self._node = node
        self._entries = entries

    @property
    def node(self) -> str:
        """The node name written into entries."""
        return self._node

    async def record(self, entry_type: str, /, **fields: Any) -> int:
        self._entries.append(make_entry(entry_type, self._node, **fields))
        return len(self._entries)


def _principal_entry(node: str, principal: Principal) -> bytes:
    return make_entry(
        "principal.changed",
        node,
        principal=principal.username,
        actor="init",
        change="created",
        level=principal.level,
        roles=sorted(principal.roles),
    )


async def _ensure_accounts(report: InitReport, node: str, *, demo: bool) -> None:
    if await Principal.get_or_none(username=ADMIN_USERNAME) is None:
        password = one_time_password()
        admin = await Principal.create(
            username=ADMIN_USERNAME,
            display_name="Administrator",
            password_hash=hash_password(password),
            must_change_password=True,
            level="TOP SECRET",
            compartments=[],
            nationality="",
            roles=["admin", "officer", "reader", "uploader"],
        )
        report.passwords[ADMIN_USERNAME] = password
        report.entries.append(_principal_entry(node, admin))
        report.created.append("administrator account 'admin'")
    if not demo:
        return
    for username, display, level, compartments, nationality, roles in DEMO_ACCOUNTS:
        if await Principal.get_or_none(username=username) is not None:
            continue
        password = one_time_password()
        person = await Principal.create(
            username=username,
            display_name=display,
            password_hash=hash_password(password),
            must_change_password=True,  # printed as one-time: replaced at first sign-in
            level=level,
            compartments=compartments,
            nationality=nationality,
            roles=roles,
        )
        report.passwords[username] = password
        report.created.append(f"demo account {username!r}")
        report.entries.append(_principal_entry(node, person))
