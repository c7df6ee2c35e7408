"""Child process: initialise one SoftHSM token through ctypes (PINs read from stdin).

Run as ``python -m hsm._init_token`` with a JSON object on stdin holding
``module``, ``label``, ``so_pin`` and ``user_pin``. Only :mod:`hsm.softhsm` calls it.
"""

from __future__ import annotations

import ctypes
import json
import sys
from typing import Any

CKR_OK = 0
CKF_TOKEN_INITIALIZED = 0x400
CKF_RW_SESSION = 0x2
CKF_SERIAL_SESSION = 0x4
CKU_SO = 0
ULONG = ctypes.c_ulong


class _Version(ctypes.Structure):
    _fields_ = [("major", ctypes.c_ubyte), ("minor", ctypes.c_ubyte)]


class _TokenInfo(ctypes.Structure):
    _fields_ = [
        ("label", ctypes.c_char * 32),
        ("manufacturer", ctypes.c_char * 32),
        ("model", ctypes.c_char * 16),
        ("serial", ctypes.c_char * 16),
        ("flags", ULONG),
        ("counts", ULONG * 10),
        ("hardware", _Version),
        ("firmware", _Version),
        ("utc", ctypes.c_char * 16),
    ]


def _check(rv: int, what: str) -> None:
    if rv != CKR_OK:
        raise RuntimeError(f"{what} failed with CKR 0x{rv:08x}")


def _free_slot(lib: Any) -> int:
    count = ULONG(0)
    _check(lib.C_GetSlotList(ctypes.c_ubyte(1), None, ctypes.byref(count)), "C_GetSlotList")
    slots = (ULONG * count.value)()
    _check(lib.C_GetSlotList(ctypes.c_ubyte(1), slots, ctypes.byref(count)), "C_GetSlotList")
    for slot in slots[: count.value]:
        info = _TokenInfo()
        _check(lib.C_GetTokenInfo(ULONG(slot), ctypes.byref(info)), "C_GetTokenInfo")
        if not info.flags & CKF_TOKEN_INITIALIZED:
            return int(slot)
    raise RuntimeError("no free SoftHSM slot")


def initialise(module: str, label: str, so_pin: bytes, user_pin: bytes) -> None:
    """C_InitToken a free slot, then set the user PIN as the security officer."""
    lib = ctypes.CDLL(module)
    _check(lib.C_Initialize(None), "C_Initialize")
    try:
        slot = _free_slot(lib)
        padded = label.encode().ljust(32, b" ")
        _check(lib.C_InitToken(ULONG(slot), so_pin, ULONG(len(so_pin)), padded), "C_InitToken")
        # SoftHSM moves the new token to a new slot id; find it again by label.
        session = ULONG(0)
        slot = _slot_by_label(lib, padded)
        flags = ULONG(CKF_SERIAL_SESSION | CKF_RW_SESSION)
        _check(
            lib.C_OpenSession(ULONG(slot), flags, None, None, ctypes.byref(session)),
            "C_OpenSession",
        )
        _check(lib.C_Login(session, ULONG(CKU_SO), so_pin, ULONG(len(so_pin))), "C_Login")
        _check(lib.C_InitPIN(session, user_pin, ULONG(len(user_pin))), "C_InitPIN")
        lib.C_Logout(session)
        lib.C_CloseSession(session)
    finally:
        lib.C_Finalize(None)


def _slot_by_label(lib: Any, padded_label: bytes) -> int:
    count = ULONG(0)
    _check(lib.C_GetSlotList(ctypes.c_ubyte(1), None, ctypes.byref(count)), "C_GetSlotList")
    slots = (ULONG * count.value)()
    _check(lib.C_GetSlotList(ctypes.c_ubyte(1), slots, ctypes.byref(count)), "C_GetSlotList")
    for slot in slots[: count.value]:
        info = _TokenInfo()
        _check(lib.C_GetTokenInfo(ULONG(slot), ctypes.byref(info)), "C_GetTokenInfo")
        if bytes(info.label).ljust(32, b" ") == padded_label:
            return int(slot)
    raise RuntimeError("the new token did not appear")


def main() -> int:
    """Read the request from stdin and initialise the token."""
    request = json.loads(sys.stdin.read())
    try:
        initialise(
            request["module"],
            request["label"],
            request["so_pin"].encode(),
            request["user_pin"].encode(),
        )
    except (RuntimeError, OSError) as exc:
        print(str(exc), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
