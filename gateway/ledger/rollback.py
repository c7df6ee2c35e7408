"""Rollback and fork detection: the newest signed checkpoint, kept on the token too.

The sequencer writes the signed note of each new checkpoint into a private
PKCS#11 data object on the token (one write per batch). A database ledger that
is shorter than that checkpoint, or whose tree at that size has another root,
was rolled back or rewritten: the node stops writing until an operator recovers
(``sekisho ledger accept-rollback``; docs/deployment.md).

The kept checkpoint is found by the ledger's instance id. Since ``ledger.started``
(the first entry ``init`` writes into an empty ledger) the id is that entry's leaf
hash, so it lives in the log itself: a database whose ``node_state`` row was
deleted with the newest entries still names its kept checkpoint. A log whose
first entry is older keeps the random id in ``node_state`` (docs/security.md).
"""

from __future__ import annotations

import json
import secrets

from gateway.auth.principals import NodeState
from gateway.ledger.store import LedgerStore, StoredCheckpoint, TortoiseLedgerStore
from gateway.tlog.checkpoint import parse_checkpoint
from gateway.tlog.merkle import Frontier, leaf_hash, root_coords
from gateway.tlog.note import parse_note
from hsm import Token

LABEL_PREFIX = "sekisho-checkpoint:"
INSTANCE_KEY = "ledger_instance"
STARTED = "ledger.started"


def bound_instance(first_entry: bytes) -> str | None:
    """The instance id a log's first entry names (its leaf hash), or None for a first
    entry of an earlier release (not ``ledger.started``)."""
    try:
        started = json.loads(first_entry).get("type") == STARTED
    except (ValueError, AttributeError):
        return None
    return leaf_hash(first_entry).hex()[:32] if started else None


class TokenCheckpoint:
    """The newest checkpoint this log signed, as a CKO_DATA object on the token.

    The object's label names the origin and this database's ledger instance (a
    random id in ``node_state``), so several nodes may share one token.
    """

    def __init__(self, token: Token, origin: str, store: LedgerStore | None = None) -> None:
        self._token = token
        self._origin = origin
        self._store = store if store is not None else TortoiseLedgerStore()
        self.label: str | None = None
        self.altered: str | None = None  # node_state names another instance than the log

    async def bind(self, *, create: bool = True) -> bool:
        """Find the instance id; True if the ledger has none yet (a first start).

        A log that begins with ``ledger.started`` is bound by that entry, whatever
        ``node_state`` says (a row naming another id is reported in ``altered``). An
        empty log stays unbound until its first entry is integrated. Otherwise the id
        is the row in ``node_state``, created here (unless ``create=False``) if absent.
        """
        self.altered = None
        row = await NodeState.get_or_none(key=INSTANCE_KEY)
        first = await self._store.leaves(0, 1)
        bound = bound_instance(first[0]) if first else None
        if bound is not None:
            if row is not None and row.value != bound:
                self.altered = (
                    f"node_state names ledger instance {row.value} but the ledger's first "
                    f"entry names {bound} (the instance id was altered)"
                )
            self.label = f"{LABEL_PREFIX}{self._origin}:{bound}"
            return False
        created = row is None
        if row is None:
            if not create or not first:
                return True
            row = await NodeState.create(key=INSTANCE_KEY, value=secrets.token_hex(16))
        self.label = f"{LABEL_PREFIX}{self._origin}:{row.value}"
        return created

    async def read(self) -> StoredCheckpoint | None:
        """The kept checkpoint, or None if this token never kept one for this ledger."""
        kept: StoredCheckpoint | None = None
        for value in await self._token.read_data(await self._label()):
            note = value.decode("utf-8")
            checkpoint = parse_checkpoint(parse_note(note).text)
            if kept is None or checkpoint.size > kept.size:  # two after an interrupted write
                kept = StoredCheckpoint(checkpoint.size, checkpoint.root_hash, note)
        return kept

    async def write(self, checkpoint: StoredCheckpoint) -> None:
        """Keep ``checkpoint`` (its signed note) on the token."""
        await self._token.write_data(await self._label(), checkpoint.note.encode("utf-8"))

    async def _label(self) -> str:
        if self.label is None:
            await self.bind()
        if self.label is None:
            raise RuntimeError("no ledger entry is integrated yet: nothing to keep")
        return self.label


async def rollback_finding(store: LedgerStore, kept: StoredCheckpoint | None) -> str | None:
    """Why the database ledger contradicts the kept checkpoint, or None if it does not."""
    if kept is None:
        return None
    latest = await store.latest_checkpoint()
    size = latest.size if latest is not None else 0
    if size < kept.size:
        return (
            f"the database holds {size} entries but the token's checkpoint says {kept.size} "
            "(rolled back)"
        )
    if latest is not None and size == kept.size:
        root = latest.root
    else:
        coords = root_coords(kept.size)
        hashes = await store.hashes(coords)
        if len(hashes) != len(set(coords)):
            return f"the database lacks the tree hashes of size {kept.size} (rolled back)"
        root = Frontier.from_hashes(kept.size, hashes).root()
    if root != kept.root:
        return (
            f"the database's tree of size {kept.size} has another root than the token's "
            "checkpoint (forked or rewritten)"
        )
    return None


async def history_finding(
    store: LedgerStore, kept: TokenCheckpoint, *, create: bool = True
) -> tuple[str | None, StoredCheckpoint | None]:
    """Check the database against the token: (why it is rolled back or None, kept checkpoint).

    A database whose ledger has entries but whose checkpoint the token does not
    keep is a finding too, unless its instance id is new (a node's first start
    with this check, or ``create=False`` on a database that never had one), and
    so is a ``node_state`` row that contradicts the log's first entry.
    """
    created = await kept.bind(create=create)
    if kept.label is None:
        return None, None
    checkpoint = await kept.read()
    finding = await rollback_finding(store, checkpoint)
    if finding is None and checkpoint is None and not created:
        latest = await store.latest_checkpoint()
        if latest is not None and latest.size > 0:
            finding = (
                f"the database holds {latest.size} entries but the token keeps no checkpoint "
                "of this ledger (token replaced, or the ledger's instance id was altered)"
            )
    if kept.altered is not None:
        finding = kept.altered if finding is None else f"{finding}; {kept.altered}"
    return finding, checkpoint
