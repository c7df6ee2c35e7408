"""Re-checking stored anchorings: does each token verify, and does its checkpoint still hold?

A token verifies when the TSA's reply is a valid time-stamp over the stored
checkpoint note under the TSA certificates configured now. The checkpoint
holds when the note names the stored size and root (signed by the log key,
when one is given) and the current tree has that root at that size.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime

from gateway.anchoring.models import AnchorRow
from gateway.anchoring.tsa import AnchorError, TrustedTsa, verify_reply
from gateway.ledger.store import LedgerStore
from gateway.tlog.checkpoint import open_signed_checkpoint, parse_checkpoint
from gateway.tlog.errors import FormatError
from gateway.tlog.merkle import EMPTY_ROOT, root_coords, root_from_hashes
from gateway.tlog.note import parse_note

LIST_LIMIT = 200


@dataclass(frozen=True)
class LogIdentity:
    """The log key the stored notes must be signed with."""

    origin: str
    name: str
    public_key: bytes


@dataclass(frozen=True)
class AnchorCheck:
    """One stored anchoring and what re-checking it found."""

    id: int
    size: int
    root: bytes
    tsa: str
    gen_time: datetime
    token_sha256: str
    token_problem: str | None
    tree_problem: str | None

    @property
    def root_b64(self) -> str:
        """The anchored root hash as checkpoints spell it (base64)."""
        return base64.b64encode(self.root).decode()

    @property
    def token_ok(self) -> bool:
        """The token verifies against the configured certificates."""
        return self.token_problem is None

    @property
    def tree_ok(self) -> bool:
        """The current tree has the anchored root at the anchored size."""
        return self.tree_problem is None

    @property
    def ok(self) -> bool:
        """Both hold."""
        return self.token_ok and self.tree_ok


async def check_anchors(
    store: LedgerStore,
    tsas: list[TrustedTsa],
    log_key: LogIdentity | None = None,
    limit: int = LIST_LIMIT,
) -> list[AnchorCheck]:
    """The newest ``limit`` anchorings, newest first, each re-checked."""
    by_name = {tsa.name: tsa for tsa in tsas}
    latest = await store.latest_checkpoint()
    tree_size = latest.size if latest is not None else 0
    rows = await AnchorRow.all().order_by("-id").limit(limit)
    return [await _check(row, by_name, tree_size, store, log_key) for row in rows]


async def _check(
    row: AnchorRow,
    tsas: dict[str, TrustedTsa],
    tree_size: int,
    store: LedgerStore,
    log_key: LogIdentity | None,
) -> AnchorCheck:
    root = bytes(row.root)
    return AnchorCheck(
        id=row.id,
        size=row.size,
        root=root,
        tsa=row.tsa,
        gen_time=row.gen_time,
        token_sha256=row.token_sha256,
        token_problem=_token_problem(row, tsas.get(row.tsa)),
        tree_problem=await _tree_problem(row, root, tree_size, store, log_key),
    )


def _token_problem(row: AnchorRow, tsa: TrustedTsa | None) -> str | None:
    if tsa is None:
        return f"TSA {row.tsa!r} is not configured (no certificates to check it against)"
    try:
        verified = verify_reply(bytes(row.reply), row.note.encode("utf-8"), tsa)
    except AnchorError as exc:
        return exc.message
    if verified.token_sha256 != row.token_sha256:
        return "the stored reply is not the one ledgered (its SHA-256 differs)"
    return None


async def _tree_problem(
    row: AnchorRow, root: bytes, tree_size: int, store: LedgerStore, log_key: LogIdentity | None
) -> str | None:
    try:
        if log_key is not None:
            checkpoint, _ = open_signed_checkpoint(
                row.note, log_key.origin, log_key.name, log_key.public_key
            )
        else:
            checkpoint = parse_checkpoint(parse_note(row.note).text)
    except FormatError as exc:
        return f"the anchored checkpoint note is not valid: {exc.message}"
    if checkpoint.size != row.size or checkpoint.root_hash != root:
        return "the anchored note does not name the stored size and root"
    if row.size > tree_size:
        return f"the tree has only {tree_size} entries, the anchor names {row.size}"
    if row.size == 0:
        current = EMPTY_ROOT
    else:
        hashes = await store.hashes(root_coords(row.size))
        try:
            current = root_from_hashes(row.size, hashes)
        except FormatError as exc:
            return f"cannot compute the tree's root at size {row.size}: {exc.message}"
    if current != root:
        return f"the tree's root at size {row.size} is not the anchored root (history changed)"
    return None
