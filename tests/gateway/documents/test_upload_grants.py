"""An upload's grant is recorded while its bytes are sealed, and is durable before the
version exists: a grant that cannot be recorded leaves no document and no blob (a refusal
of the bytes still leaves the grant on record: test_api's oversize upload)."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest

from gateway.documents.access import AccessRecorder
from gateway.documents.models import Document
from gateway.errors import Unavailable
from tests.gateway.documents.conftest import Gateway, MakePerson


async def test_a_grant_that_cannot_be_recorded_leaves_no_document_and_no_blob(
    gateway: Gateway, make_person: MakePerson, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = await make_person("alice", "SECRET")
    record = AccessRecorder.record

    async def fail_after_the_bytes_are_sealed(self: AccessRecorder, *a: Any, **k: Any) -> None:
        if k.get("action") != "upload":
            return await record(self, *a, **k)
        await asyncio.sleep(0.3)  # the seal finishes first
        raise Unavailable("the ledger is shutting down")

    monkeypatch.setattr(AccessRecorder, "record", fail_after_the_bytes_are_sealed)
    response = await gateway.client.post(
        "/api/v1/documents?title=Plan&label=SECRET", data=b"mission plan", headers=alice
    )
    assert response.status == 503
    assert (await response.json())["error"] == "unavailable"
    assert await Document.all().count() == 0
    assert [p for p in gateway.settings.blob_dir.rglob("*") if p.is_file()] == []


async def test_a_cancelled_upload_whose_grant_then_fails_to_record_is_logged_once(
    gateway: Gateway,
    make_person: MakePerson,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The client goes away while the bytes are sealed; the grant's record goes on by
    itself and then fails: one readable log line, never asyncio's "exception was never
    retrieved" (nobody is left to await the record)."""
    alice = await make_person("alice", "SECRET")
    record = AccessRecorder.record
    failed = asyncio.Event()

    async def fail_later(self: AccessRecorder, *a: Any, **k: Any) -> None:
        if k.get("action") != "upload":
            return await record(self, *a, **k)
        await asyncio.sleep(0.3)  # the upload is cancelled first
        failed.set()
        raise Unavailable("the ledger is shutting down")

    monkeypatch.setattr(AccessRecorder, "record", fail_later)
    loop = asyncio.get_running_loop()
    unretrieved: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: unretrieved.append(context))

    async def endless_body() -> Any:
        yield b"mission plan"
        await asyncio.sleep(30)  # the client stalls, then gives up
        yield b"never sent"

    try:
        upload = asyncio.ensure_future(
            gateway.client.post(
                "/api/v1/documents?title=Plan&label=SECRET", data=endless_body(), headers=alice
            )
        )
        await asyncio.sleep(0.1)
        upload.cancel()
        with pytest.raises(asyncio.CancelledError):
            await upload
        await asyncio.wait_for(failed.wait(), 10)
        for _ in range(20):  # let the server see the disconnect and the record task end
            await asyncio.sleep(0.05)
        gc.collect()  # an unretrieved exception is reported when its task is collected
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(previous)
    assert [c.get("message") for c in unretrieved] == []
    lines = [r.getMessage() for r in caplog.records if "not recorded" in r.getMessage()]
    assert len(lines) == 1 and "shutting down" in lines[0]
    assert await Document.all().count() == 0
