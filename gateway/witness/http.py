"""The witness's HTTP interface: tlog-witness ``add-checkpoint``, status, metrics, mirrors.

Errors are plain text with the spec's status codes; a 409 carries the held
size as ``text/x.tlog.size``. Nothing a client sends produces a 500.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.errors import NotFound, SekishoError
from gateway.health.prometheus import METRICS, metrics_response
from gateway.http.errors import format_status
from gateway.ledger.store import StoredCheckpoint
from gateway.tlog.errors import FormatError
from gateway.tlog.tiles import parse_tile_path
from gateway.tlog.witness_protocol import (
    ADD_CHECKPOINT_PATH,
    SIZE_CONTENT_TYPE,
    format_size_conflict,
    origin_hash,
)
from gateway.witness.app_keys import MIRRORS, REQUESTS, SERVICE, SETTINGS
from gateway.witness.core import SizeConflict
from gateway.witness.mirror_readers import reader_digests, require_mirror_reader
from gateway.witness.mirror_store import MirrorStore
from gateway.witness.models import WitnessedLog
from gateway.witness.status import metric_samples, witness_status
from hsm import HsmError

log = logging.getLogger("sekisho.witness.http")
routes = web.RouteTableDef()
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
TEXT = "text/plain; charset=utf-8"
IMMUTABLE = "public, max-age=31536000, immutable"


def _text(status: int, message: str) -> web.Response:
    return web.Response(
        status=status, body=(message + "\n").encode(), headers={"Content-Type": TEXT}
    )


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Map errors to the spec's answers; count add-checkpoint answers by status."""
    try:
        response = await handler(request)
    except SizeConflict as exc:
        response = web.Response(
            status=409,
            body=format_size_conflict(exc.size).encode(),
            headers={"Content-Type": SIZE_CONTENT_TYPE},
        )
    except SekishoError as exc:
        response = _text(exc.status, exc.message)
    except FormatError as exc:
        response = _text(format_status(exc), exc.message)
    except HsmError as exc:
        log.warning("witness token unavailable: %s", exc.message)
        response = _text(503, f"the witness token is unavailable: {exc.message}")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = _text(exc.status, exc.reason)
    except Exception:
        log.exception("unhandled error: %s %s", request.method, request.path)
        response = _text(500, "internal error; it has been logged")
    if request.path == "/" + ADD_CHECKPOINT_PATH:
        request.app[REQUESTS].add(response.status)
    return response


@routes.post("/" + ADD_CHECKPOINT_PATH)
async def add_checkpoint(request: web.Request) -> web.Response:
    """c2sp.org/tlog-witness add-checkpoint: cosignature lines, or the spec's error."""
    service = request.app[SERVICE]
    lines = await service.add_checkpoint(await request.read())
    request.app[MIRRORS].nudge()
    return web.Response(body=lines.encode(), headers={"Content-Type": TEXT})


@routes.get("/status")
async def status(request: web.Request) -> web.Response:
    """Logs, cosigned sizes, mirrors, evidence and the alarm, as JSON."""
    service = request.app[SERVICE]
    cosigner = service.cosigner
    return web.json_response(await witness_status(service.store, cosigner.name, cosigner.vkey))


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    """Prometheus: alarm, evidence, cosigned sizes, mirrors, answers; requests; process."""
    service = request.app[SERVICE]
    cosigner = service.cosigner
    view = await witness_status(service.store, cosigner.name, cosigner.vkey)
    return metrics_response(
        request.app[METRICS], metric_samples(view, request.app[REQUESTS].by_status)
    )


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """200 while the process runs."""
    del request
    return _text(200, "ok")


async def _mirror(request: web.Request) -> tuple[MirrorStore, StoredCheckpoint]:
    wanted = request.match_info["log"]
    for row in await WitnessedLog.filter(mirror=True):
        if origin_hash(row.origin) == wanted:
            store = MirrorStore(row.id)
            latest = await store.latest_checkpoint()
            if latest is not None:
                return store, latest
    raise NotFound("no mirrored log has that origin hash (or it holds no checkpoint yet)")


@routes.get("/mirror/{log}/ledger/checkpoint")
async def mirror_checkpoint(request: web.Request) -> web.Response:
    """The latest checkpoint the mirror verified against its own copy of the entries."""
    _, latest = await _mirror(request)
    return web.Response(
        body=latest.note.encode(), headers={"Content-Type": TEXT, "Cache-Control": "no-cache"}
    )


@routes.get("/mirror/{log}/ledger/tile/{path:.+}")
async def mirror_tile(request: web.Request) -> web.Response:
    """A tile or entry bundle of the mirrored tree, byte for byte as the log serves it.

    Entry bundles go to registered readers only (:mod:`gateway.witness.mirror_readers`).
    """
    ref = parse_tile_path("tile/" + request.match_info["path"])
    if ref.is_entries:
        path = request.app[SETTINGS].witness.mirror_readers_file
        digests = await asyncio.to_thread(reader_digests, path)
        require_mirror_reader(request.headers.get("Authorization"), digests)
    store, latest = await _mirror(request)
    body = await store.tile(ref, latest.size)
    if ref.is_entries:
        cache = "private, max-age=60" if ref.is_partial else "private, max-age=31536000, immutable"
    else:
        cache = "public, max-age=60" if ref.is_partial else IMMUTABLE
    headers = {"Content-Type": "application/octet-stream", "Cache-Control": cache}
    if ref.is_entries:
        headers["Vary"] = "Authorization"
    return web.Response(body=body, headers=headers)
