"""A client process for the kill -9 test: uploads, downloads and signatures in a loop.

Usage: ``python -m tests.gateway.faults.mixed_client BASE PERSON_TOKEN CLIENT_TOKEN ACKS STOP``.
Each acknowledged operation (a 2xx answer) is appended to ACKS as one line, flushed
at once: ``upload <id> <sha256>``, ``download <id>``, ``sign <digest hex>``. Refused
connections, answers cut off by the kill and 5xx while the gateway is down are
expected and not acknowledged.
The loop ends when the file STOP exists.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import random
import sys
import time
from pathlib import Path

from tests.gateway.faults.client import call, upload_url


def main() -> None:
    base, person, client, acks_path, stop = sys.argv[1:6]
    uploaded: list[tuple[str, str]] = []
    rng = random.Random(int.from_bytes(os.urandom(4), "big"))
    with open(acks_path, "a", encoding="utf-8") as acks:
        while not Path(stop).exists():
            kind = rng.choice(["upload", "upload", "download", "sign"])
            try:
                if kind == "upload":
                    data = os.urandom(rng.randint(1, 200_000))
                    status, raw = call("POST", upload_url(base, "mixed"), person, data, timeout=10)
                    if status == 201:
                        doc = json.loads(raw)["id"]
                        digest = hashlib.sha256(data).hexdigest()
                        uploaded.append((doc, digest))
                        acks.write(f"upload {doc} {digest}\n")
                elif kind == "download" and uploaded:
                    doc, digest = rng.choice(uploaded)
                    status, raw = call("GET", f"{base}/api/v1/documents/{doc}/content", person)
                    if status == 200:
                        assert hashlib.sha256(raw).hexdigest() == digest, f"{doc} changed"
                        acks.write(f"download {doc}\n")
                elif kind == "sign":
                    digest_bytes = os.urandom(32)
                    body = json.dumps({"digest": base64.b64encode(digest_bytes).decode()})
                    status, _ = call(
                        "POST", f"{base}/api/v1/sign/default", client, body.encode(),
                        content_type="application/json", timeout=10,
                    )  # fmt: skip
                    if status == 200:
                        acks.write(f"sign {digest_bytes.hex()}\n")
                acks.flush()
            except (OSError, http.client.HTTPException):
                # the gateway is down or was killed mid-answer: not acknowledged; try again
                time.sleep(0.05)


if __name__ == "__main__":
    main()
