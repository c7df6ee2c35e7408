"""One audit pass over the log, left to right, chunk by chunk.

Each chunk is read while the previous one is checked. A clean chunk is
checked in bulk, level by level (every leaf hash, every subtree the chunk
completes, the root at every checkpoint inside it). At the first doubt the
chunk is walked again leaf by leaf with a :class:`Frontier`, which stops at
the first problem in the order a sequencer would have written it, so the
finding names the culprit rather than one of its ancestors.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass
from itertools import takewhile

from gateway.ledger.audit.model import (
    AuditSource,
    AuditState,
    Finding,
    LeafRecord,
    LogKey,
    Progress,
    check_checkpoint,
    compare_hash,
    leaf_mismatch,
)
from gateway.ledger.store import StoredCheckpoint
from gateway.tlog.merkle import Frontier, leaf_hash, node_hash, root_coords

_CHECKPOINT_PAGE = 1000


@dataclass(frozen=True)
class _Chunk:
    """The stored leaves of a chunk and the stored hashes of the subtrees it completes."""

    records: list[LeafRecord]
    stored: dict[int, dict[int, bytes]]


class _Levels:
    """Subtree hashes known while checking a chunk: the old frontier and each computed level."""

    def __init__(self, frontier: Frontier) -> None:
        self._old = dict(zip(frontier.coords, frontier.hashes, strict=True))
        self._rows: list[tuple[int, list[bytes]]] = []

    def add(self, first: int, values: list[bytes]) -> None:
        self._rows.append((first, values))

    def get(self, level: int, index: int) -> bytes | None:
        if level < len(self._rows):
            first, values = self._rows[level]
            if 0 <= index - first < len(values):
                return values[index - first]
        return self._old.get((level, index))

    def frontier(self, size: int) -> Frontier | None:
        hashes = [self.get(level, index) for level, index in root_coords(size)]
        if any(h is None for h in hashes):
            return None
        return Frontier(size, [h for h in hashes if h is not None])


class Walk:
    """One pass from a clean state to ``target``; ``good`` is the last clean checkpoint."""

    def __init__(
        self,
        source: AuditSource,
        key: LogKey,
        state: AuditState,
        target: int,
        chunk: int,
        progress: Progress | None,
    ) -> None:
        self.source = source
        self.key = key
        self.good = state
        self.target = target
        self.chunk = chunk
        self.progress = progress
        self.frontier = Frontier(state.size, state.frontier)
        self._pending: deque[StoredCheckpoint] = deque()
        self._after = state.after
        self._exhausted = False
        self._ahead: tuple[int, int, asyncio.Task[_Chunk]] | None = None

    async def run(self) -> Finding | None:
        """Walk to the target; the first finding, or None."""
        if self.target < self.good.size:
            return Finding(
                "checkpoint_rollback",
                self.target,
                f"checkpoint at size {self.target}: the latest checkpoint is smaller than the "
                f"size {self.good.size} verified before; checkpoints were removed or rolled back",
            )
        self._report()
        try:
            await self._load_checkpoints(self.frontier.size)
            finding = self._checkpoints_at_frontier()
            while finding is None and self.frontier.size < self.target:
                start = self.frontier.size
                finding = await self._chunk(start, self._chunk_end(start))
                self._report()
            return finding
        finally:
            await self._drop_ahead()

    def _report(self) -> None:
        if self.progress is not None:
            self.progress(self.frontier.size, self.target)

    def _chunk_end(self, start: int) -> int:
        return min(self.target, (start // self.chunk + 1) * self.chunk)

    # ----- reading, one chunk ahead ----------------------------------------------

    async def _read(self, start: int, end: int) -> _Chunk:
        records = await self.source.leaf_records(start, end)
        stored: dict[int, dict[int, bytes]] = {}
        for level in range(end.bit_length()):
            first, last = start >> level, (end >> level) - 1
            if first <= last and self.source.keeps_level(level):
                stored[level] = await self.source.level_hashes(level, first, last)
        return _Chunk(records, stored)

    async def _take(self, start: int, end: int) -> _Chunk:
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead[:2] == (start, end):
            data = await ahead[2]
        else:
            if ahead is not None:
                self._ahead = ahead
                await self._drop_ahead()
            data = await self._read(start, end)
        if end < self.target:
            following = self._chunk_end(end)
            self._ahead = (end, following, asyncio.create_task(self._read(end, following)))
        return data

    async def _drop_ahead(self) -> None:
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            ahead[2].cancel()
            with contextlib.suppress(BaseException):  # its result no longer matters
                await ahead[2]

    # ----- checkpoints ---------------------------------------------------------------

    async def _load_checkpoints(self, size: int) -> list[StoredCheckpoint]:
        """Buffer every checkpoint up to ``size``; return those (not consumed)."""
        while not self._exhausted and (not self._pending or self._pending[-1].size <= size):
            page = await self.source.checkpoints(self._after, _CHECKPOINT_PAGE)
            wanted = [c for c in page if c.size <= self.target]
            self._pending.extend(wanted)
            if page:
                self._after = page[-1].size
            self._exhausted = len(page) < _CHECKPOINT_PAGE or len(wanted) < len(page)
        return list(takewhile(lambda c: c.size <= size, self._pending))

    def _checkpoints_at_frontier(self) -> Finding | None:
        """Verify buffered checkpoints at the frontier's size; each one is a clean state."""
        while self._pending and self._pending[0].size <= self.frontier.size:
            cp = self._pending.popleft()
            if cp.size < self.frontier.size:  # cannot happen with an ascending source
                return Finding(
                    "checkpoint_order", cp.size, f"checkpoint at size {cp.size}: out of order"
                )
            finding = check_checkpoint(cp, self.key, self.frontier.root())
            if finding is not None:
                return finding
            self.good = AuditState(cp.size, self.frontier.hashes, self.good.checkpoints + 1)
        return None

    # ----- one chunk --------------------------------------------------------------------

    async def _chunk(self, start: int, end: int) -> Finding | None:
        data = await self._take(start, end)
        checkpoints = await self._load_checkpoints(end)
        if self._bulk(start, end, data, checkpoints):
            return None
        return self._precise(start, end, data)

    def _bulk(
        self, start: int, end: int, data: _Chunk, checkpoints: list[StoredCheckpoint]
    ) -> bool:
        """Check a chunk level by level; False (nothing changed) at the first doubt."""
        records = data.records
        if len(records) != end - start or records[0].index != start or records[-1].index != end - 1:
            return False
        values = [leaf_hash(r.data) for r in records]
        if any(
            r.leaf_hash is not None and r.leaf_hash != h
            for r, h in zip(records, values, strict=True)
        ):
            return False
        levels = _Levels(self.frontier)
        level, first = 0, start
        while values:
            levels.add(first, values)
            stored = data.stored.get(level)
            if stored is not None and any(stored.get(first + i) != v for i, v in enumerate(values)):
                return False
            parents = self._parents(levels, level, start, end)
            if parents is None:
                return False
            level, first, values = level + 1, start >> (level + 1), parents
        return self._bulk_checkpoints(levels, end, checkpoints)

    @staticmethod
    def _parents(levels: _Levels, level: int, start: int, end: int) -> list[bytes] | None:
        """Hashes of the level-above subtrees that leaves [start, end) complete."""
        parents: list[bytes] = []
        for index in range(start >> (level + 1), end >> (level + 1)):
            left, right = levels.get(level, 2 * index), levels.get(level, 2 * index + 1)
            if left is None or right is None:
                return None
            parents.append(node_hash(left, right))
        return parents

    def _bulk_checkpoints(
        self, levels: _Levels, end: int, checkpoints: list[StoredCheckpoint]
    ) -> bool:
        states: list[AuditState] = []
        count = self.good.checkpoints
        for cp in checkpoints:
            at = levels.frontier(cp.size)
            if at is None or check_checkpoint(cp, self.key, at.root()) is not None:
                return False
            count += 1
            states.append(AuditState(cp.size, at.hashes, count))
        frontier = levels.frontier(end)
        if frontier is None:
            return False
        self.frontier = frontier
        for _ in checkpoints:
            self._pending.popleft()
        if states:
            self.good = states[-1]
        return True

    def _precise(self, start: int, end: int, data: _Chunk) -> Finding | None:
        """Walk the chunk leaf by leaf; the first problem in sequencing order."""
        expected = start
        for record in data.records:
            if record.index != expected:
                break
            finding = self._leaf(record, data.stored)
            if finding is not None:
                return finding
            expected += 1
        if expected < end:
            return Finding("leaf_missing", expected, f"leaf {expected}: missing from the store")
        return None

    def _leaf(self, record: LeafRecord, stored: dict[int, dict[int, bytes]]) -> Finding | None:
        digest = leaf_hash(record.data)
        if record.leaf_hash is not None and record.leaf_hash != digest:
            return leaf_mismatch(record.index)
        for (level, index), value in self.frontier.append(digest):
            if level in stored:
                finding = compare_hash(level, index, stored[level].get(index), value)
                if finding is not None:
                    return finding
        return self._checkpoints_at_frontier()
