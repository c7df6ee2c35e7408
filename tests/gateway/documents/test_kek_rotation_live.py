"""KEK rotation while downloads run: every download succeeds, every key ends up rewrapped."""

from __future__ import annotations

import asyncio
import os

from gateway.app_keys import LEDGER, TOKEN
from gateway.documents.kek import rotate_kek
from gateway.documents.models import DocumentVersion
from tests.gateway.documents.conftest import Gateway, MakePerson
from tests.gateway.documents.test_api import upload


async def test_rotation_under_concurrent_downloads_loses_nothing(
    gateway: Gateway, make_person: MakePerson
) -> None:
    alice = await make_person("alice", "SECRET")
    originals = {}
    for n in range(30):
        data = os.urandom(10_000 + n)
        originals[await upload(gateway, alice, "SECRET", data, f"doc {n}")] = data
    app = gateway.client.app
    stop = asyncio.Event()
    outcomes: list[tuple[int, bool]] = []

    async def downloader(offset: int) -> None:
        ids = list(originals)
        n = offset
        while not stop.is_set():
            doc = ids[n % len(ids)]
            n += 1
            response = await gateway.client.get(f"/api/v1/documents/{doc}/content", headers=alice)
            body = await response.read()
            outcomes.append((response.status, body == originals[doc]))

    readers = [asyncio.create_task(downloader(i)) for i in range(4)]
    await asyncio.sleep(0.2)
    report = await rotate_kek(app[TOKEN], gateway.settings, batch=5, ledger=app[LEDGER])
    await asyncio.sleep(0.2)
    stop.set()
    await asyncio.gather(*readers)

    assert report.rewrapped == 30 and not report.failed and report.remaining == 0
    assert outcomes, "the downloaders made no requests"
    assert all(outcome == (200, True) for outcome in outcomes), [
        o for o in outcomes if o != (200, True)
    ][:5]
    rows = await DocumentVersion.all()
    assert {row.kek_version for row in rows} == {report.new_version}
    for doc, data in originals.items():
        response = await gateway.client.get(f"/api/v1/documents/{doc}/content", headers=alice)
        assert await response.read() == data
