"""Tags for typed account names that are no account's: a keyed hash and a length.

People type passwords into the username field. A name that names no account
is therefore never stored, shown or logged as typed: the sign-in tables keep
``?<length>:<HMAC-SHA-256 prefix>``, keyed by a random 256-bit node secret
(``node_state`` row ``signin.name_key``, made on first use). The tag lets an
officer see that the same unknown name was tried again and again without
showing what was typed; without the key a tag cannot be checked against a
dictionary. Real usernames never start with ``?``, so a tag is never taken for
one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from tortoise import connections

from gateway.auth.models import SignInAttempt, SignInLock
from gateway.auth.principals import NodeState, Principal
from gateway.db.sql import for_connection

KEY_NAME = "signin.name_key"
TAG_PREFIX = "?"
_HEX_CHARS = 32  # 128 bits of the HMAC: plenty to tell names apart, fits the column


def is_tag(value: str) -> bool:
    """True for a stored tag (as opposed to an account's name)."""
    return value.startswith(TAG_PREFIX)


def tag_with(key: bytes, name: str) -> str:
    """The tag of a typed name under ``key``."""
    mac = hmac.new(key, name.encode("utf-8", "replace"), hashlib.sha256).hexdigest()
    return f"{TAG_PREFIX}{len(name)}:{mac[:_HEX_CHARS]}"


def describe(stored: str) -> str:
    """How officers see a stored name: the account's name, or the tag in words."""
    if not is_tag(stored):
        return stored
    length, _, mac = stored[1:].partition(":")
    return f"unknown name ({length} characters, #{mac[:8]})"


async def name_key() -> bytes:
    """This node's key for tags (created once, the same for every process)."""
    row = await NodeState.get_or_none(key=KEY_NAME)
    if row is None:
        conn = connections.get("default")
        await conn.execute_query(
            for_connection(
                "INSERT INTO node_state (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                conn,
            ),
            [KEY_NAME, secrets.token_hex(32)],
        )
        row = await NodeState.get(key=KEY_NAME)
    return bytes.fromhex(row.value)


async def scrub_typed_names() -> int:
    """Replace typed names kept verbatim by earlier versions with their tags; how many rows.

    Attempts whose name was no account's, and account lock-outs of names that
    are no account's, written before tags existed. Certificate subjects
    (``cert:`` and a fingerprint prefix) are not typed and stay. Run at start;
    rows already tagged are left alone, so it is cheap and idempotent.
    """
    key: bytes | None = None
    changed = 0
    attempts = await SignInAttempt.filter(known=False).exclude(username__startswith=TAG_PREFIX)
    locks = await SignInLock.filter(scope="account").exclude(subject__startswith=TAG_PREFIX)
    accounts = {str(name) for name in await Principal.all().values_list("username", flat=True)}
    for attempt in attempts:
        if attempt.username.startswith("cert:"):
            continue
        key = key or await name_key()
        await SignInAttempt.filter(id=attempt.id).update(username=tag_with(key, attempt.username))
        changed += 1
    for lock in locks:
        if lock.subject.startswith("cert:") or lock.subject in accounts:
            continue
        key = key or await name_key()
        await SignInLock.filter(id=lock.id).update(subject=tag_with(key, lock.subject))
        changed += 1
    return changed
