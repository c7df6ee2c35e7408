"""Ledger read routes: C2SP tlog-tiles resources under ``/ledger/`` and JSON under the API.

Handlers only parse parameters and shape responses; the answers come from
:mod:`gateway.ledger.reads` and the ledger service. Entries and entry bundles
are for entry readers only (:mod:`gateway.ledger.access`); the rest is public.
"""

from __future__ import annotations

import base64
import json
import re

from aiohttp import web

from gateway.app_keys import LEDGER, SETTINGS
from gateway.errors import InvalidParameter, NotFound
from gateway.http.auth import identity, optional_identity
from gateway.http.models import answer as dump
from gateway.http.params import optional_query_int, path_int, single
from gateway.ledger import reads
from gateway.ledger.access import hidden_fields, may_open, require_entry_access
from gateway.ledger.answers import (
    CheckpointView,
    ConsistencyProofView,
    EntryOpening,
    EntryView,
    InclusionProofView,
    LogKeyView,
)
from gateway.ledger.commitments import decode_opening, expand, partial
from gateway.ledger.entries import EntryError, open_entry
from gateway.ledger.service import LedgerService
from gateway.oversight.record import record_view
from gateway.tlog.merkle import leaf_hash
from gateway.tlog.note import shorten
from gateway.tlog.tiles import parse_tile_path

routes = web.RouteTableDef()
API = "/api/v1/ledger"

IMMUTABLE = "public, max-age=31536000, immutable"
"""Full tiles and bundles never change."""
SHORT_LIVED = "public, max-age=60"
"""Partial tiles never change either, but the spec lets logs drop them."""
PRIVATE_IMMUTABLE = "private, max-age=31536000, immutable"
"""Full entry bundles for an authenticated reader: no shared cache may keep them."""
PRIVATE_SHORT_LIVED = "private, max-age=60"
"""Partial entry bundles for an authenticated reader."""
_HEX_HASH = re.compile(r"[0-9a-fA-F]{64}")


def _ledger(request: web.Request) -> LedgerService:
    return request.app[LEDGER]


def _entries_public(request: web.Request) -> bool:
    return request.app[SETTINGS].ledger.public_entries


def _check_entry_access(request: web.Request) -> None:
    """401/403 unless the caller may read entries (before anything about the index is said)."""
    require_entry_access(optional_identity(request), public=_entries_public(request))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# --- parameters ----------------------------------------------------------------


def _optional_int(request: web.Request, name: str) -> int | None:
    return optional_query_int(request.query, name, canonical=True)


def _required_int(request: web.Request, name: str) -> int:
    value = _optional_int(request, name)
    if value is None:
        raise InvalidParameter(name, f"parameter {name!r} is required")
    return value


def _path_int(request: web.Request, name: str) -> int:
    return path_int(request.match_info, name, canonical=True)


def _leaf_hash(request: web.Request) -> bytes | None:
    text = single(request.query, "leaf_hash")
    if text is None:
        return None
    if not _HEX_HASH.fullmatch(text):
        raise InvalidParameter(
            "leaf_hash",
            "parameter 'leaf_hash' must be 64 hexadecimal digits (a SHA-256 leaf hash), "
            f"not {shorten(text, 30)}",
        )
    return bytes.fromhex(text)


# --- tlog-tiles ------------------------------------------------------------------


@routes.get("/ledger/checkpoint")
async def checkpoint_note(request: web.Request) -> web.Response:
    """The latest signed checkpoint note (c2sp.org/tlog-checkpoint)."""
    latest = await _ledger(request).latest()
    return web.Response(
        text=latest.note,
        content_type="text/plain",
        charset="utf-8",
        headers={"Cache-Control": "no-cache"},
    )


@routes.get("/ledger/tile/{path:.+}")
async def tile(request: web.Request) -> web.Response:
    """A hash tile ``tile/<L>/<N>[.p/<W>]`` (public) or entry bundle ``tile/entries/<N>[.p/<W>]``.

    Entry bundles go to entry readers only (:mod:`gateway.ledger.access`), and
    then with private cache headers unless the operator made entries public.
    """
    ref = parse_tile_path("tile/" + request.match_info["path"])
    private = ref.is_entries and not _entries_public(request)
    if ref.is_entries:
        _check_entry_access(request)
    ledger = _ledger(request)
    latest = await ledger.latest()
    body = await reads.tile_bytes(ledger.store, ref, latest.size)
    if private:
        cache = PRIVATE_SHORT_LIVED if ref.is_partial else PRIVATE_IMMUTABLE
    else:
        cache = SHORT_LIVED if ref.is_partial else IMMUTABLE
    headers = {"Cache-Control": cache}
    if private:
        headers["Vary"] = "Authorization"
    return web.Response(body=body, content_type="application/octet-stream", headers=headers)


# --- JSON API --------------------------------------------------------------------


@routes.get(API + "/checkpoint")
async def checkpoint_json(request: web.Request) -> web.Response:
    """Size, root and note of the latest checkpoint."""
    latest = await _ledger(request).latest()
    view = CheckpointView(size=latest.size, root=_b64(latest.root), note=latest.note)
    return web.json_response(dump(view))


@routes.get(API + "/key")
async def log_key(request: web.Request) -> web.Response:
    """The log's checkpoint verification key."""
    signer = _ledger(request).signer
    view = LogKeyView(
        origin=signer.origin,
        name=signer.origin,
        algorithm=signer.algorithm,  # type: ignore[arg-type]  # checked by the model
        note_signature_type=signer.sig_type,  # type: ignore[arg-type]
        key_id=signer.key_id.hex(),
        public_key=_b64(signer.public_key),
        vkey=signer.verifier_key,
    )
    return web.json_response(dump(view))


@routes.get(API + "/entries/{index}")
async def entry(request: web.Request) -> web.Response:
    """One entry: its index, the parsed JSON and its leaf hash (entry readers only)."""
    _check_entry_access(request)
    index = _path_int(request, "index")
    data = await reads.entry_at(_ledger(request), index)
    digest = leaf_hash(data).hex()
    try:
        view = EntryView(index=index, leaf_hash=digest, entry=json.loads(data.decode("utf-8")))
    except ValueError:  # not JSON (a foreign or damaged entry): show the bytes instead
        view = EntryView(index=index, leaf_hash=digest, entry=None, data=_b64(data))
    return web.json_response(dump(view))  # API answers are never cached (no-store)


@routes.get(API + "/entries/{index}/opening")
async def entry_opening(request: web.Request) -> web.Response:
    """An entry with its opening, for officers, auditors and admins, and for a person whose
    own action it records; to anyone else exactly what an index without an entry gets."""
    caller = identity(request)
    index = _path_int(request, "index")
    ledger = _ledger(request)
    not_found = NotFound(f"no ledger entry at index {index}")
    try:
        data, opening = await ledger.opening(index)
        fields = open_entry(data, opening)
    except (NotFound, EntryError):
        raise not_found from None
    if opening is None or not may_open(caller, fields):
        raise not_found
    if caller is not None and fields.get("actor") != caller.actor:
        # an officer, auditor or admin reading what someone else did: an oversight action
        await record_view(ledger, caller, "ledger.opening", {"index": index})
    shown = expand(str(fields["type"]), decode_opening(opening))  # verify --opening
    hidden = hidden_fields(caller, fields) if caller is not None else frozenset()
    if hidden:
        shown = partial(shown, [name for name in shown["fields"] if name not in hidden])
        fields = {name: value for name, value in fields.items() if name not in hidden}
    view = EntryOpening(
        index=index,
        leaf_hash=leaf_hash(data).hex(),
        entry=data.decode("utf-8"),  # the exact bytes: `sekisho verify --entry`
        opening=shown,
        fields=fields,
    )
    return web.json_response(dump(view))


@routes.get(API + "/proof/inclusion")
async def inclusion_proof(request: web.Request) -> web.Response:
    """Inclusion proof by ``index`` or ``leaf_hash``, in the tree of ``size`` (latest)."""
    index = _optional_int(request, "index")
    leaf = _leaf_hash(request)
    if (index is None) == (leaf is None):
        raise InvalidParameter(
            "index", "give exactly one of the parameters 'index' and 'leaf_hash'"
        )
    answer = await reads.inclusion(
        _ledger(request), size=_optional_int(request, "size"), index=index, leaf=leaf
    )
    view = InclusionProofView(
        index=answer.index,
        size=answer.size,
        leaf_hash=answer.leaf_hash.hex(),
        root=_b64(answer.root),
        proof=[_b64(h) for h in answer.proof],
        **_checkpoint(answer.checkpoint),
    )
    return web.json_response(dump(view))


@routes.get(API + "/proof/consistency")
async def consistency_proof(request: web.Request) -> web.Response:
    """Consistency proof from size ``old`` to ``new`` (latest)."""
    old = _required_int(request, "old")
    answer = await reads.consistency(_ledger(request), old, _optional_int(request, "new"))
    view = ConsistencyProofView(
        old=answer.old_size,
        new=answer.new_size,
        old_root=_b64(answer.old_root),
        new_root=_b64(answer.new_root),
        proof=[_b64(h) for h in answer.proof],
        **_checkpoint(answer.checkpoint),
    )
    return web.json_response(dump(view))


def _checkpoint(checkpoint: str | None) -> dict[str, str]:
    """The ``checkpoint`` field only when there is one (the answers omit it otherwise)."""
    return {} if checkpoint is None else {"checkpoint": checkpoint}


@routes.get(API + "/receipts/{index}")
async def receipt(request: web.Request) -> web.Response:
    """A c2sp.org/tlog-proof receipt for an entry, against the latest checkpoint."""
    text = await _ledger(request).receipt(_path_int(request, "index"))
    return web.Response(text=text, content_type="text/plain", charset="utf-8")
