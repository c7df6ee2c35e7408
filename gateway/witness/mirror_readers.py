"""Who may read the entry bundles a mirror re-serves at ``/mirror/<hash>/ledger/``.

The log serves entries to officers, auditors and registered mirrors only; a
mirror must not hand them to anyone. Its checkpoint and hash tiles stay
public, like the log's. Entry bundles go only to bearers of a token whose
hex SHA-256 is listed in the file ``witness.mirror_readers_file`` (one digest
a line, ``#`` comments allowed); without that file, to nobody. The digests,
not the tokens, live on the witness, as the gateway stores its own tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from pathlib import Path

from gateway.auth.identity import Unauthenticated
from gateway.errors import Forbidden, Unavailable

_DIGEST = re.compile(r"[0-9a-f]{64}")
_MAX_FILE = 1 << 20


class MirrorEntriesNeedCredential(Unauthenticated):
    """No bearer token was sent for a mirror's entry bundle."""

    code = "entries_need_credential"


class MirrorEntriesForbidden(Forbidden):
    """The token sent is not one of the mirror's registered readers."""

    code = "entries_forbidden"


def reader_digests(path: str) -> frozenset[str]:
    """The token digests listed in ``path`` ("" for none); a bad file is a 503, not a leak."""
    if not path:
        return frozenset()
    try:
        file = Path(path)
        if file.stat().st_size > _MAX_FILE:
            raise Unavailable(f"the mirror readers file is larger than {_MAX_FILE} bytes")
        lines = file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        raise Unavailable("the mirror readers file cannot be read") from None
    digests = set()
    for line in lines:
        text = line.split("#", 1)[0].strip().lower()
        if text:
            if not _DIGEST.fullmatch(text):
                raise Unavailable("the mirror readers file holds a line that is no SHA-256")
            digests.add(text)
    return frozenset(digests)


def require_mirror_reader(authorization: str | None, digests: frozenset[str]) -> None:
    """401 without a bearer token, 403 unless its SHA-256 is one of ``digests``."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise MirrorEntriesNeedCredential(
            "this mirror serves entry bundles to registered readers only: "
            "send 'Authorization: Bearer <token>'"
        )
    digest = hashlib.sha256(token.strip().encode()).hexdigest()
    if not any(hmac.compare_digest(digest, known) for known in digests):
        raise MirrorEntriesForbidden("this token is not a registered reader of this mirror")
