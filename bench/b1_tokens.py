"""B1 per token: signatures and data-key unwraps per second through the hsm layer, next to a
raw python-pkcs11 loop doing the same on the same token in the same run (informational).

Tokens: SoftHSM (a fresh token in a temporary directory), opencryptoki's soft token
(``pkcsslotd``, started and stopped here; RSA only) and a TPM 2.0 (swtpm, tpm2-abrmd and
tpm2-pkcs11). The daemons are started by the same code as the test fixtures
(tests/tokens/). Per token: ECDSA P-256 and RSA-3072 PSS signatures where the profile
offers them, and unwraps with the KEK type the profile chooses (AES key wrap on SoftHSM,
RSA-OAEP elsewhere). A token or row that cannot run is a skipped row with the reason.

The hsm figure is ``CONCURRENCY`` coroutines awaiting one operation at a time (as the
gateway's handlers do); the raw loop is one session on the token's own thread (so the
module is never entered by two threads), logged in through the hsm layer's session.
Raw and hsm runs alternate over ``ROUNDS`` rounds and the totals are compared.

``python -m bench.b1_tokens [--tokens softhsm,opencryptoki,tpm] [--seconds 3]`` prints
only these rows; ``python -m bench --only B1`` includes them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from bench.common import Result, table
from hsm import (
    Function,
    KekType,
    KeyAlgorithm,
    SignRequest,
    SoftHsmLayout,
    Token,
    TokenConfig,
    find_softhsm_module,
    provision_token,
    read_pin,
)

TOKENS = ("softhsm", "opencryptoki", "tpm")
NAMES = {
    "softhsm": "SoftHSM",
    "opencryptoki": "opencryptoki soft token",
    "tpm": "TPM 2.0 (swtpm, tpm2-pkcs11)",
}
CONCURRENCY = 16
ROUNDS = 3
RAW = "raw python-pkcs11 loop"
SOFTHSM_LABEL = "sekisho-b1"


@contextlib.contextmanager
def softhsm(root: Path) -> Iterator[TokenConfig]:
    """A fresh SoftHSM token in ``root``."""
    module = find_softhsm_module()
    if module is None:
        raise RuntimeError("SoftHSM is not installed (apt-get install softhsm2)")
    layout = SoftHsmLayout(root / "softhsm")
    provision_token(layout, SOFTHSM_LABEL, module)
    yield TokenConfig(
        module_path=module,
        pin=read_pin(pin_file=layout.user_pin_file),
        token_label=SOFTHSM_LABEL,
        softhsm_conf=str(layout.conf),
    )


@contextlib.contextmanager
def opencryptoki(root: Path) -> Iterator[TokenConfig]:
    """opencryptoki's soft token behind a pkcsslotd started (and stopped) here."""
    from tests.tokens.opencryptoki import opencryptoki_token

    with opencryptoki_token(root / "opencryptoki", probe_stopped=False) as token:
        yield TokenConfig.from_uri(token.uri, read_pin(pin_file=token.pin_file))


@contextlib.contextmanager
def tpm(root: Path) -> Iterator[TokenConfig]:
    """A software TPM behind tpm2-abrmd, through tpm2-pkcs11."""
    from tests.tokens.tpm import tpm_token

    with tpm_token(root / "tpm") as token:
        yield TokenConfig.from_uri(token.uri, read_pin(pin_file=token.pin_file))


STARTERS: dict[str, Callable[[Path], AbstractContextManager[TokenConfig]]] = {
    "softhsm": softhsm,
    "opencryptoki": opencryptoki,
    "tpm": tpm,
}


@dataclass(frozen=True)
class Row:
    """One measured operation: what it is, its unit, the hsm call and the raw loop."""

    what: str
    unit: str
    layer_op: Callable[[], Awaitable[object]]
    raw_op: Callable[[Any], Callable[[], object]]
    """Given a raw session, the callable one raw iteration runs."""


def run_tokens(names: Sequence[str], seconds: float) -> list[Result]:
    """The rows of each named token (skipped rows for tokens that cannot start)."""
    results: list[Result] = []
    for name in names:
        results.extend(token_results(name, seconds))
    return results


def token_results(name: str, seconds: float) -> list[Result]:
    """Start one token, measure its rows, stop it; any start failure is one skipped row."""
    with tempfile.TemporaryDirectory(prefix=f"sekisho-b1-{name}-") as tmp:
        try:
            with STARTERS[name](Path(tmp)) as config:
                return asyncio.run(_measure(name, config, seconds))
        except Exception as exc:  # the token cannot run here: say why and carry on
            return [skipped(f"{NAMES[name]}: skipped, the token did not start", exc)]


def skipped(what: str, reason: object) -> Result:
    """A row with no figure and the reason."""
    text = f"{type(reason).__name__}: {reason}" if isinstance(reason, Exception) else reason
    return Result("B1", f"{what} ({text})", float("nan"), "", target="(informational)")


async def _measure(name: str, config: TokenConfig, seconds: float) -> list[Result]:
    token = await Token.open(config)
    try:
        rows = await _rows(token)
        results: list[Result] = []
        for row in rows:
            if isinstance(row, tuple):
                what = f"{NAMES[name]}: {row[0]} skipped, not possible on this token"
                results.append(skipped(what, row[1]))
                continue
            try:
                layer, raw = await _rates(token, config, row, seconds)
            except Exception as exc:  # one operation failing does not lose the others
                what = f"{NAMES[name]}: {row.what} skipped, the measurement failed"
                results.append(skipped(what, exc))
                continue
            results.append(
                Result(
                    "B1",
                    f"{NAMES[name]}: {row.what} through hsm, {CONCURRENCY} concurrent awaits",
                    layer,
                    row.unit,
                    {RAW: raw},
                    RAW,
                    "(informational)",
                )
            )
        return results
    finally:
        await token.close()


async def _rows(token: Token) -> list[Row | tuple[str, str]]:
    """The operations this token offers (made ready), or (what, why not)."""
    profile = await token.profile()
    rows: list[Row | tuple[str, str]] = []
    digest = hashlib.sha256(b"sekisho b1").digest()
    for function, algorithm, what in (
        (Function.NAMED_ECDSA, KeyAlgorithm.EC_P256, "ECDSA P-256 signatures"),
        (Function.NAMED_RSA, KeyAlgorithm.RSA_3072, "RSA-3072 PSS signatures"),
    ):
        choice = profile.choice(function)
        if not choice.possible:
            rows.append((what, f"it needs {choice.blockers}"))
            continue
        label = f"b1-{algorithm.value}"
        await token.generate_key(label, algorithm)
        request = SignRequest(label, digest, prehashed=True, encoding="raw")
        rows.append(Row(what, "sig/s", partial(token.sign, request), _raw_signer(label, algorithm)))
    kek = profile.choice(Function.KEK)
    if kek.chosen is None:
        rows.append(("data-key unwraps", f"it needs {kek.blockers}"))
        return rows
    kek_type = KekType.for_algorithm(kek.chosen.algorithm)
    await token.generate_kek("b1-kek", kek_type)
    data_key = os.urandom(32)
    wrapped = await token.wrap_data_key("b1-kek", data_key)

    async def unwrap() -> bytes:
        value = await token.unwrap_data_key("b1-kek", wrapped)
        if value != data_key:
            raise RuntimeError("the hsm layer unwrapped a different key")
        return value

    what = f"data-key unwraps ({kek_type.value})"
    rows.append(Row(what, "unwraps/s", unwrap, _raw_unwrapper(kek_type, wrapped, data_key)))
    return rows


def _raw_signer(label: str, algorithm: KeyAlgorithm) -> Callable[[Any], Callable[[], object]]:
    """The raw sign call the hsm layer makes for this key type (ECDSA, or PSS SHA-256)."""
    from pkcs11 import MGF, Mechanism, ObjectClass

    digest = hashlib.sha256(b"sekisho b1").digest()

    def bind(session: Any) -> Callable[[], object]:
        key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)
        if algorithm is KeyAlgorithm.EC_P256:
            return lambda: key.sign(digest, mechanism=Mechanism.ECDSA)
        params = (Mechanism.SHA256, MGF.SHA256, 32)
        return lambda: key.sign(digest, mechanism=Mechanism.RSA_PKCS_PSS, mechanism_param=params)

    return bind


def _raw_unwrapper(
    kek_type: KekType, wrapped: bytes, data_key: bytes
) -> Callable[[Any], Callable[[], object]]:
    """The raw calls one hsm unwrap makes: AES key wrap into a session key and read it,
    or an RSA-OAEP SHA-256 decryption (ECDH KEKs are not measured raw)."""
    import pkcs11
    from pkcs11 import MGF, Attribute, Mechanism, ObjectClass

    def bind(session: Any) -> Callable[[], object]:
        if kek_type is KekType.RSA_OAEP_SHA256:
            private = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label="b1-kek")
            params = (Mechanism.SHA256, MGF.SHA256, None)
            return lambda: private.decrypt(
                wrapped, mechanism=Mechanism.RSA_PKCS_OAEP, mechanism_param=params
            )
        if kek_type is not KekType.AES_KEY_WRAP_PAD:
            raise NotImplementedError(f"no raw loop for {kek_type.value} KEKs")
        kek = session.get_key(object_class=ObjectClass.SECRET_KEY, label="b1-kek")

        def unwrap() -> bytes:
            key = kek.unwrap_key(
                ObjectClass.SECRET_KEY,
                pkcs11.KeyType.AES,
                wrapped,
                mechanism=Mechanism.AES_KEY_WRAP_PAD,
                store=False,
                template={Attribute.SENSITIVE: False, Attribute.EXTRACTABLE: True},
            )
            try:
                return bytes(key[Attribute.VALUE])
            finally:
                key.destroy()

        return unwrap

    def checked(session: Any) -> Callable[[], object]:
        op = bind(session)
        if bytes(op()) != data_key:  # type: ignore[call-overload]
            raise RuntimeError("the raw loop unwrapped a different key")
        return op

    return checked


async def _rates(
    token: Token, config: TokenConfig, row: Row, seconds: float
) -> tuple[float, float]:
    """(hsm rate, raw rate), alternating the two over ROUNDS rounds of seconds/ROUNDS."""
    share = seconds / ROUNDS
    layer_done = raw_done = 0
    layer_time = raw_time = 0.0
    for _ in range(ROUNDS):
        count, elapsed = await asyncio.to_thread(
            token.call_sync, lambda _t: _raw_loop(config, row, share)
        )
        raw_done, raw_time = raw_done + count, raw_time + elapsed
        count, elapsed = await _layer_loop(row, share)
        layer_done, layer_time = layer_done + count, layer_time + elapsed
    return layer_done / layer_time, raw_done / raw_time


def _raw_loop(config: TokenConfig, row: Row, seconds: float) -> tuple[int, float]:
    """Operations done and seconds taken by one plain loop on a new session.

    Runs on the token's thread. The session does not log in: the hsm layer's session
    already did, and login state is shared by every session of the process (closing a
    session that had logged in would log the hsm layer out too).
    """
    import pkcs11

    lib = pkcs11.lib(config.module_path)  # the module the hsm layer loaded (cached by path)
    found = lib.get_token(token_label=config.token_label, token_serial=config.token_serial)
    session = found.open()
    try:
        op = row.raw_op(session)
        done = 0
        start = time.perf_counter()
        deadline = start + seconds
        while True:
            op()
            done += 1
            now = time.perf_counter()
            if now >= deadline:
                return done, now - start
    finally:
        session.close()


async def _layer_loop(row: Row, seconds: float) -> tuple[int, float]:
    """Operations done and seconds taken by CONCURRENCY coroutines awaiting the hsm call."""
    done = 0
    start = time.perf_counter()
    deadline = start + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await row.layer_op()
            done += 1

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return done, time.perf_counter() - start


@dataclass(frozen=True)
class B1Tokens:
    """Which tokens B1 measures, and for how long per row."""

    names: tuple[str, ...]
    seconds: float

    @classmethod
    def from_args(cls, tokens: str | None, seconds: float | None, quick: bool) -> B1Tokens:
        """From the command line: SoftHSM only and 0.3 s when quick, all three and 3 s else."""
        names = parse_tokens(tokens) if tokens is not None else (["softhsm"] if quick else TOKENS)
        if seconds is not None and not seconds > 0:
            raise ValueError("--token-seconds must be above 0")
        return cls(tuple(names), seconds or (0.3 if quick else 3.0))


def parse_tokens(text: str) -> list[str]:
    """``softhsm,tpm`` -> the token names; ``none`` -> none; ValueError for unknown ones."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if names == ["none"]:
        return []
    unknown = [n for n in names if n not in STARTERS]
    if unknown:
        raise ValueError(f"unknown token(s) {unknown}; choose from {list(STARTERS)} or none")
    return names


def main(argv: list[str] | None = None) -> int:
    """Print the per-token B1 rows."""
    parser = argparse.ArgumentParser(prog="python -m bench.b1_tokens")
    parser.add_argument("--tokens", default=",".join(TOKENS), help="comma-separated, or none")
    parser.add_argument("--seconds", type=float, default=3.0, help="per row, raw and hsm each")
    args = parser.parse_args(argv)
    try:
        chosen = B1Tokens.from_args(args.tokens, args.seconds, quick=False)
    except ValueError as exc:
        print(f"bench.b1_tokens: {exc}", file=sys.stderr)
        return 2
    print(table(run_tokens(chosen.names, chosen.seconds)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
