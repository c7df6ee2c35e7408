"""Re-checking stored anchorings: does each token verify, and does its checkpoint still hold?

A token verifies when the TSA's reply is a valid time-stamp over the stored
checkpoint note under the TSA certificates configured now. The checkpoint
holds when the note names the stored size and root (signed by the log key,
when one is given) and the current tree has that root at that size.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime

from gateway.anchoring.models import AnchorRow
from gateway.anchoring.tsa import AnchorError, TrustedTsa, verify_reply
from gateway.ledger.store import LedgerStore
from gateway.tlog.checkpoint import open_signed_checkpoint, parse_checkpoint
from gateway.tlog.errors import FormatError
from gateway.tlog.merkle import EMPTY_ROOT, Coord, root_coords, root_from_hashes
from gateway.tlog.note import parse_note
from gateway.ttlcache import TtlCache

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


@dataclass(frozen=True)
class FetchedAnchor:
    """An anchoring as another node lists it, with its note and TSA reply downloaded."""

    id: int
    size: int
    root: bytes
    note: str
    tsa: str
    gen_time: datetime
    reply: bytes
    token_sha256: str


Anchored = AnchorRow | FetchedAnchor
PureFindings = tuple[str | None, str | None]  # (token problem, note problem)


class CheckMemo:
    """Findings of the pure checks (TSA token, checkpoint note signature) by content.

    Keyed by a hash of everything they read (the stored reply, note, token hash,
    the TSA's name and the log key), so a changed row is checked afresh: the memo
    saves the signature verifications of a list asked for again, never a finding.
    The public anchoring list uses one, so an anonymous caller cannot make the node
    verify up to ``LIST_LIMIT`` CMS signatures per request.
    """

    def __init__(self, ttl: float = 3600.0, size: int = 4 * LIST_LIMIT) -> None:
        self._found: TtlCache[bytes, PureFindings] = TtlCache(ttl, size)

    def get(self, key: bytes) -> PureFindings | None:
        """Findings stored for this content, if any."""
        return self._found.get(key)

    def put(self, key: bytes, found: PureFindings) -> None:
        """Keep the findings for this content."""
        self._found.put(key, found)


async def check_anchors(
    store: LedgerStore,
    tsas: list[TrustedTsa],
    log_key: LogIdentity | None = None,
    limit: int = LIST_LIMIT,
    memo: CheckMemo | None = None,
) -> list[AnchorCheck]:
    """The newest ``limit`` anchorings, newest first, each re-checked."""
    by_name = {tsa.name: tsa for tsa in tsas}
    latest = await store.latest_checkpoint()
    tree_size = latest.size if latest is not None else 0
    rows = await AnchorRow.all().order_by("-id").limit(limit)
    # one read of every subtree hash the listed roots need
    sizes = {row.size for row in rows if 0 < row.size <= tree_size}
    hashes = await store.hashes({c for size in sizes for c in root_coords(size)})
    return [_check(row, by_name, tree_size, hashes, log_key, memo) for row in rows]


def _check(
    row: AnchorRow,
    tsas: dict[str, TrustedTsa],
    tree_size: int,
    hashes: dict[Coord, bytes],
    log_key: LogIdentity | None,
    memo: CheckMemo | None,
) -> AnchorCheck:
    root = bytes(row.root)
    key = _content_key(row, log_key)
    found = memo.get(key) if memo is not None else None
    if found is None:
        found = (_token_problem(row, tsas.get(row.tsa)), _note_problem(row, root, log_key))
        if memo is not None:
            memo.put(key, found)
    token_problem, note_problem = found
    return AnchorCheck(
        id=row.id,
        size=row.size,
        root=root,
        tsa=row.tsa,
        gen_time=row.gen_time,
        token_sha256=row.token_sha256,
        token_problem=token_problem,
        tree_problem=note_problem or _tree_problem(row, root, tree_size, hashes),
    )


def check_fetched(
    anchor: FetchedAnchor, tsa: TrustedTsa | None, log_key: LogIdentity, tree_problem: str | None
) -> AnchorCheck:
    """A downloaded anchoring re-checked here: its TSA token against ``tsa`` as configured
    here, its note against ``log_key``; whether the tree holds its root the caller found."""
    return AnchorCheck(
        id=anchor.id,
        size=anchor.size,
        root=anchor.root,
        tsa=anchor.tsa,
        gen_time=anchor.gen_time,
        token_sha256=anchor.token_sha256,
        token_problem=_token_problem(anchor, tsa),
        tree_problem=_note_problem(anchor, anchor.root, log_key) or tree_problem,
    )


def _content_key(row: AnchorRow, log_key: LogIdentity | None) -> bytes:
    """A hash of everything the pure checks read (lengths prefixed: no ambiguity)."""
    parts = [
        row.tsa.encode(),
        bytes(row.reply),
        row.note.encode(),
        row.token_sha256.encode(),
        bytes(row.root),
        str(row.size).encode(),
    ]
    if log_key is not None:
        parts += [log_key.origin.encode(), log_key.name.encode(), log_key.public_key]
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.digest()


def _token_problem(row: Anchored, tsa: TrustedTsa | None) -> str | None:
    if tsa is None:
        return f"TSA {row.tsa!r} is not configured (no certificates to check it against)"
    try:
        verified = verify_reply(bytes(row.reply), row.note.encode("utf-8"), tsa)
    except AnchorError as exc:
        return exc.message
    if verified.token_sha256 != row.token_sha256:
        return "the stored reply is not the one ledgered (its SHA-256 differs)"
    return None


def _note_problem(row: Anchored, root: bytes, log_key: LogIdentity | None) -> str | None:
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
    return None


def _tree_problem(
    row: AnchorRow, root: bytes, tree_size: int, hashes: dict[Coord, bytes]
) -> str | None:
    if row.size > tree_size:
        return f"the tree has only {tree_size} entries, the anchor names {row.size}"
    if row.size == 0:
        current = EMPTY_ROOT
    else:
        try:
            current = root_from_hashes(row.size, hashes)
        except FormatError as exc:
            return f"cannot compute the tree's root at size {row.size}: {exc.message}"
    if current != root:
        return f"the tree's root at size {row.size} is not the anchored root (history changed)"
    return None
