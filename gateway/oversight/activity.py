"""Access decisions over time: granted and denied counts in equal time buckets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from gateway.documents.models import AccessEvent

MAX_BUCKETS = 96


@dataclass(frozen=True)
class Bucket:
    """Counts for ``[start, start + step)``."""

    start: datetime
    granted: int
    denied: int

    @property
    def total(self) -> int:
        """Both outcomes together."""
        return self.granted + self.denied


@dataclass(frozen=True)
class Span:
    """A named time span and its bucket width."""

    name: str
    length: timedelta
    step: timedelta


SPANS = {
    "24h": Span("last 24 hours", timedelta(hours=24), timedelta(hours=1)),
    "7d": Span("last 7 days", timedelta(days=7), timedelta(hours=6)),
    "30d": Span("last 30 days", timedelta(days=30), timedelta(days=1)),
}


def bucket_starts(end: datetime, span: Span) -> list[datetime]:
    """Bucket starts, oldest first; the last bucket ends at ``end`` rounded up to a step."""
    step_seconds = int(span.step.total_seconds())
    epoch = int(end.timestamp())
    top = datetime.fromtimestamp(-(-epoch // step_seconds) * step_seconds, UTC)
    count = min(MAX_BUCKETS, int(span.length / span.step))
    return [top - span.step * (count - i) for i in range(count)]


async def activity(span: Span, now: datetime | None = None) -> list[Bucket]:
    """Granted and denied decisions per bucket (two indexed count queries per bucket)."""
    starts = bucket_starts(now or datetime.now(UTC), span)
    buckets: list[Bucket] = []
    for start in starts:
        window = AccessEvent.filter(at__gte=start, at__lt=start + span.step)
        granted = await window.filter(outcome="granted").count()
        denied = await window.filter(outcome="denied").count()
        buckets.append(Bucket(start, granted, denied))
    return buckets


async def decisions_since(since: datetime) -> Bucket:
    """Granted and denied decisions from ``since`` until now, as one bucket."""
    window = AccessEvent.filter(at__gte=since)
    granted = await window.filter(outcome="granted").count()
    denied = await window.filter(outcome="denied").count()
    return Bucket(since, granted, denied)
