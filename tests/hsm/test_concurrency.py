"""Concurrency through the one owning thread: many awaits plus plain threads, no crash."""

from __future__ import annotations

import asyncio
import hashlib
import threading

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from hsm import KeyAlgorithm, SignRequest, Token


async def test_2000_awaits_and_4_threads_sign_concurrently(token: Token) -> None:
    label = "concurrency-ec"
    if not await token.has_key(label):
        await token.generate_key(label, KeyAlgorithm.EC_P256)
    public = await token.public_key(label)
    assert isinstance(public, ec.EllipticCurvePublicKey)

    thread_results: list[tuple[bytes, bytes]] = []
    thread_errors: list[BaseException] = []
    lock = threading.Lock()

    def thread_worker(worker: int) -> None:
        try:
            for i in range(100):
                digest = hashlib.sha256(f"thread-{worker}-{i}".encode()).digest()
                signature = token.sign_sync(SignRequest(label, digest, prehashed=True))
                with lock:
                    thread_results.append((digest, signature))
        except BaseException as exc:  # collected and asserted below
            thread_errors.append(exc)

    threads = [threading.Thread(target=thread_worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    digests = [hashlib.sha256(f"await-{i}".encode()).digest() for i in range(2000)]
    signatures = await asyncio.gather(*(token.sign_digest(label, d) for d in digests))
    for thread in threads:
        await asyncio.to_thread(thread.join)

    assert not thread_errors
    assert len(signatures) == 2000
    assert len(thread_results) == 400
    for digest, signature in [*zip(digests, signatures, strict=True), *thread_results]:
        public.verify(signature, digest, ec.ECDSA(Prehashed(hashes.SHA256())))
