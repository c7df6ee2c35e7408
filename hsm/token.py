"""The token facade: one logged-in session per process, owned by one thread, async API.

Every method that touches PKCS#11 runs on the module's :class:`TokenThread`.
Async callers ``await`` it; plain threads use the ``*_sync`` variants. Key
handles are cached; if the token goes away the cache and session are dropped,
the caller gets :class:`TokenRemoved`, and the next call reconnects.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import pkcs11
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap
from pkcs11 import Attribute, CertificateType, Mechanism, ObjectClass

from hsm import key_templates as keyops
from hsm.capabilities import OPTIONS, MechanismSupport, TokenProfile, choose_profile
from hsm.config import TokenConfig
from hsm.errors import (
    HsmError,
    KeyNotFound,
    MechanismNotSupported,
    ModuleMissing,
    OperationFailed,
    PinLocked,
    TokenNotFound,
    TokenRemoved,
    WrongPin,
)
from hsm.key_templates import KeyAlgorithm, KeyInfo
from hsm.pubkeys import public_key_of, spki_der
from hsm.refresh import RefreshLimiter
from hsm.signing import SignRequest, sign_with, signing_mechanism
from hsm.worker import TokenThread
from hsm.wrapping import (
    OAEP_PARAMS,
    KekType,
    ecdh_parts,
    ecdh_unwrap,
    ecdh_wrap,
    oaep_encrypt,
)

T = TypeVar("T")
RESCAN_SECONDS = 5.0
"""How often a token that went away is looked for again by reinitialising its module."""
REINIT_RETRY_SECONDS = 1.0
"""How often a module that failed to initialise is tried again (tpm2-pkcs11 and the TSS
write several ERROR lines to stderr per failed C_Initialize while the TPM is away)."""
OPEN_RETRY_DELAYS = (0.1, 0.2, 0.4, 0.8)
"""Waits between the attempts to open a token that is not listed or does not answer yet.
SoftHSM lists a token only when its token.object reads whole at C_Initialize, so a
process starting while another one rewrites that file (a login, a PIN counter) sees no
token, or gets CKR_GENERAL_ERROR for its info; a few seconds later it is there."""
TPM2_PKCS11 = "tpm2-software.github.io"
"""tpm2-pkcs11's library manufacturer ID (C_GetInfo)."""
_HASH_BY_SIZE = {32: "sha256", 48: "sha384", 64: "sha512"}

_REMOVAL_ERRORS: tuple[type[Exception], ...] = (
    pkcs11.SessionHandleInvalid,
    pkcs11.SessionClosed,
    pkcs11.TokenNotPresent,
    pkcs11.TokenNotRecognised,
    pkcs11.DeviceRemoved,
    pkcs11.DeviceError,
    pkcs11.UserNotLoggedIn,
)
_MECHANISM_ERRORS: tuple[type[Exception], ...] = (
    pkcs11.MechanismInvalid,
    pkcs11.MechanismParamInvalid,
    pkcs11.DomainParamsInvalid,
)
_OAEP_ERRORS: tuple[type[Exception], ...] = (*_MECHANISM_ERRORS, pkcs11.ArgumentsBad)
_STALE_HANDLE_ERRORS: tuple[type[Exception], ...] = (
    pkcs11.ObjectHandleInvalid,
    pkcs11.KeyHandleInvalid,
    # A KEK handle that went stale (its token came back): SoftHSM names the role.
    pkcs11.WrappingKeyHandleInvalid,
    pkcs11.UnwrappingKeyHandleInvalid,
)


@dataclass(frozen=True)
class TokenStatus:
    """What ``sekisho hsm status`` prints."""

    module_path: str
    library: str
    library_version: str
    token_label: str
    serial: str
    manufacturer: str
    model: str
    mechanisms: tuple[str, ...]


@dataclass
class _ModuleState:
    """Per-module process state: the loaded library and its one owning thread."""

    path: str
    thread: TokenThread
    lib: Any = None
    softhsm_conf: str | None = None
    generation: int = 0
    needs_reinit: bool = False
    last_rescan: float = 0.0
    failed_init_at: float | None = None
    failed_inits: int = 0
    """How often reinitialising the module failed (the token or its daemon was away)."""
    refresh_limiter: RefreshLimiter = field(default_factory=RefreshLimiter)
    paired_templates: bool = False
    """Key pairs need SIGN with DECRYPT and VERIFY with ENCRYPT (tpm2-pkcs11)."""
    refreshes: int = 0
    """How often a missing key label made the module re-read its objects."""


_modules: dict[str, _ModuleState] = {}
_modules_lock = threading.Lock()


def _module_state(path: str) -> _ModuleState:
    """The one state of a module, keyed by its real path: python-pkcs11 caches libraries by
    the path string, and loading the same library under a second name (a symlink) calls
    C_Initialize again, which fails with "already initialized"."""
    real = os.path.realpath(path)
    with _modules_lock:
        state = _modules.get(real)
        if state is None:
            state = _ModuleState(path=path, thread=TokenThread(f"pkcs11-{Path(path).stem}"))
            _modules[real] = state
        return state


@dataclass
class _Connection:
    token: Any
    session: Any
    generation: int
    handles: dict[tuple[str, int], Any] = field(default_factory=dict)
    public_keys: dict[str, PublicKeyTypes] = field(default_factory=dict)
    data_objects: dict[str, list[Any]] = field(default_factory=dict)
    profile: TokenProfile | None = None
    kek_types: dict[str, KekType] = field(default_factory=dict)


class _Unlisted(KeyNotFound):
    """A key label the module lists no object for at all: re-read the objects, look again."""


class Token:
    """A logged-in token. Create with :meth:`open` (async) or :meth:`open_sync`."""

    def __init__(self, config: TokenConfig) -> None:
        self.config = config
        self._module = _module_state(config.module_path)
        self._conn: _Connection | None = None

    # ----- lifecycle -------------------------------------------------------------

    @classmethod
    async def open(cls, config: TokenConfig) -> Token:
        """Load the module, find the token, log in; raise a typed error on failure."""
        token = cls(config)
        await token._module.thread.run(token._connect_at_open)
        return token

    @classmethod
    def open_sync(cls, config: TokenConfig) -> Token:
        """Like :meth:`open`, for synchronous callers (the CLI)."""
        token = cls(config)
        token._module.thread.call(token._connect_at_open)
        return token

    async def close(self) -> None:
        """Close the session (the module stays loaded for the process)."""
        await self._module.thread.run(self._disconnect)

    def close_sync(self) -> None:
        """Like :meth:`close`, for synchronous callers."""
        self._module.thread.call(self._disconnect)

    def owner(self, label: str) -> Token:
        """The token that holds the key ``label`` (itself; a :class:`~hsm.TokenSet` routes)."""
        del label
        return self

    def members(self) -> list[Token]:
        """Every distinct token behind this facade (itself; a TokenSet lists each)."""
        return [self]

    # ----- async API -------------------------------------------------------------

    async def status(self) -> TokenStatus:
        """Module, token and mechanism details."""
        return await self._run(self._status)

    async def profile(self) -> TokenProfile:
        """Which mechanism this token gives each Sekisho function (read once per login)."""
        return await self._run(self._profile)

    def profile_sync(self) -> TokenProfile:
        """:meth:`profile` for synchronous callers."""
        return self._call(self._profile)

    async def ping(self) -> None:
        """The token still answers: TokenRemoved (or a typed error) when it does not."""
        await self._run(self._ping)

    async def list_keys(self) -> list[KeyInfo]:
        """Every key object on the token with its protection attributes."""
        return await self._run(self._list_keys)

    async def has_key(self, label: str) -> bool:
        """True when a private or secret key with this label exists."""
        return await self._run(lambda: self._has_key(label))

    async def generate_key(self, label: str, algorithm: KeyAlgorithm) -> KeyInfo:
        """Create a sensitive, non-extractable key (pair) with this label."""
        return await self._run(lambda: self._generate(label, algorithm))

    async def public_key(self, label: str) -> PublicKeyTypes:
        """The public half of a key pair."""
        return await self._run(lambda: self._public_key(label))

    async def public_key_der(self, label: str) -> bytes:
        """SubjectPublicKeyInfo DER of a key pair."""
        return spki_der(await self.public_key(label))

    async def sign(self, request: SignRequest, *, urgent: bool = False) -> bytes:
        """One signature; see :class:`SignRequest` for digests, messages and encodings.
        ``urgent`` (the ledger's checkpoints and cosignatures): before ordinary work waiting."""
        return await self._run(lambda: self._sign(request), urgent=urgent)

    async def sign_digest(
        self,
        label: str,
        digest: bytes,
        *,
        hash_name: str | None = None,
        encoding: Literal["der", "raw"] = "der",
    ) -> bytes:
        """ECDSA (or RSA-PSS) over a precomputed SHA-256/384/512 digest.

        Without ``hash_name`` the hash is inferred from the digest length.
        """
        name = hash_name or _HASH_BY_SIZE.get(len(digest), "sha256")
        return await self.sign(
            SignRequest(label, digest, hash_name=name, prehashed=True, encoding=encoding)
        )

    async def sign_message(
        self,
        label: str,
        message: bytes,
        *,
        hash_name: str = "sha256",
        encoding: Literal["der", "raw"] = "der",
        urgent: bool = False,
    ) -> bytes:
        """Sign a message: Ed25519 directly, ECDSA/RSA-PSS over its hash."""
        request = SignRequest(label, message, hash_name=hash_name, encoding=encoding)
        return await self.sign(request, urgent=urgent)

    async def sign_many(self, requests: Sequence[SignRequest]) -> list[bytes | HsmError]:
        """Many signatures in one trip to the token thread; per-item errors are returned."""
        return await self._run(lambda: self._sign_many(requests))

    async def generate_kek(self, label: str, kek_type: KekType) -> KeyInfo:
        """Create a key-encryption key of this type (AES-256, an RSA-3072 or a P-256 pair)."""
        if kek_type is KekType.AES_KEY_WRAP_PAD:
            return await self.generate_key(label, KeyAlgorithm.AES_256)
        return await self._run(lambda: self._generate_pair_kek(label, kek_type))

    async def check_kek(self, label: str) -> None:
        """Wrap and unwrap a random key with the KEK: a token that offers the mechanism
        but not with Sekisho's parameters is refused here, before any data key uses it."""
        probe = os.urandom(32)
        if await self.unwrap_data_key(label, await self.wrap_data_key(label, probe)) != probe:
            raise OperationFailed(f"the KEK {label!r} does not give back what it wrapped")

    async def kek_type(self, label: str) -> KekType:
        """The type of the KEK with this label, from the object on the token."""
        return await self._run(lambda: self._kek_type(label))

    async def wrap_data_key(self, kek_label: str, data_key: bytes) -> bytes:
        """Wrap a data key under the KEK: AES key wrap on the token, or RSA-OAEP or ECDH in
        software with the KEK's public key."""
        return await self._run(lambda: self._wrap(kek_label, data_key))

    async def unwrap_data_key(self, kek_label: str, wrapped: bytes) -> bytes:
        """Unwrap a data key wrapped by :meth:`wrap_data_key` (always on the token)."""
        return await self._run(lambda: self._unwrap(kek_label, wrapped))

    async def store_certificate(self, label: str, der: bytes, subject_der: bytes) -> None:
        """Keep an X.509 certificate on the token next to its key."""
        await self._run(lambda: self._store_certificate(label, der, subject_der))

    async def certificate(self, label: str) -> bytes | None:
        """The X.509 certificate stored for a key, or None."""
        return await self._run(lambda: self._certificate(label))

    async def read_data(self, label: str) -> list[bytes]:
        """The values of the private data objects (CKO_DATA) labelled ``label`` (usually one).

        More than one remains only when a process stopped inside :meth:`write_data`.
        """
        return await self._run(lambda: self._read_data(label))

    async def write_data(self, label: str, value: bytes) -> None:
        """Replace the private data object(s) (CKO_DATA) ``label`` on the token by one."""
        await self._run(lambda: self._write_data(label, value))

    async def destroy_key(self, label: str) -> None:
        """Delete every object (key, pair, certificate) with this label."""
        await self._run(lambda: self._destroy(label))

    async def self_test(self, label: str) -> None:
        """Sign a fresh message with a key pair and verify it in software."""
        message = os.urandom(32)
        signature = await self.sign_message(label, message, encoding="der")
        public = await self.public_key(label)
        from hsm.verify import verify_signature

        if not verify_signature(public, signature, message, hash_name="sha256"):
            raise OperationFailed(f"the token's test signature with {label!r} did not verify")

    # ----- sync API for plain threads -----------------------------------------------

    def sign_sync(self, request: SignRequest) -> bytes:
        """:meth:`sign` for plain threads: runs on the owning thread and waits."""
        return self._call(lambda: self._sign(request))

    def call_sync(self, fn: Callable[[Token], T]) -> T:
        """Run a block of sync calls on the owning thread (used by the CLI)."""
        return self._module.thread.call(lambda: fn(self))

    def list_keys_sync(self) -> list[KeyInfo]:
        """:meth:`list_keys` for synchronous callers."""
        return self._call(self._list_keys)

    def status_sync(self) -> TokenStatus:
        """:meth:`status` for synchronous callers."""
        return self._call(self._status)

    # ----- worker-thread internals -------------------------------------------------

    async def _run(self, op: Callable[[], T], *, urgent: bool = False) -> T:
        return await self._module.thread.run(lambda: self._guarded(op), urgent=urgent)

    def _call(self, op: Callable[[], T]) -> T:
        return self._module.thread.call(lambda: self._guarded(op))

    def _guarded(self, op: Callable[[], T]) -> T:
        handles_retried = refreshed = False
        while True:
            if self._conn is None or self._conn.generation != self._module.generation:
                self._conn = None
                self._reconnect()
            try:
                return op()
            except _Unlisted as exc:
                if refreshed or not self._token_still_present():
                    raise self._missing(exc) from None
                # tpm2-pkcs11 lists objects at C_Initialize: a key another process made
                # since then appears only after the module is initialised again.
                refreshed = True
                self._module.refreshes += 1
                self._drop_connection()
            except KeyNotFound as exc:
                raise self._missing(exc) from None
            except _STALE_HANDLE_ERRORS:
                if self._conn is not None:
                    self._conn.handles.clear()
                    self._conn.data_objects.clear()
                if handles_retried:
                    raise TokenRemoved("the token's key handles became invalid") from None
                handles_retried = True
            except pkcs11.GeneralError as exc:
                if self._token_still_present():
                    raise OperationFailed(
                        "the token reported a general error for this operation"
                    ) from None
                self._drop_connection()
                raise TokenRemoved(
                    f"the {self.config.describe()} went away ({type(exc).__name__}); "
                    "it will be reopened on the next request"
                ) from None
            except _REMOVAL_ERRORS as exc:
                self._drop_connection()
                raise TokenRemoved(
                    f"the {self.config.describe()} went away ({type(exc).__name__}); "
                    "it will be reopened on the next request"
                ) from None
            except (pkcs11.MechanismInvalid, pkcs11.MechanismParamInvalid) as exc:
                raise MechanismNotSupported(
                    f"the token refused a mechanism this operation needs ({_reason(exc)}); "
                    "see 'sekisho hsm status' for what it offers"
                ) from None
            except pkcs11.PKCS11Error as exc:
                raise OperationFailed(
                    f"the token refused the operation ({type(exc).__name__})"
                ) from None

    def _missing(self, exc: KeyNotFound) -> HsmError:
        """What a key that is not found means: KeyNotFound, or a removal when the token is gone.

        SoftHSM keeps the session when its token directory vanishes, but every object
        disappears: a missing key on a token that no longer answers is a removal (503,
        reopened later), not a configuration error.
        """
        if self._token_still_present():
            return KeyNotFound(exc.message)
        self._drop_connection()
        return TokenRemoved(
            f"the {self.config.describe()} went away (its objects vanished); "
            "it will be reopened on the next request"
        )

    def _token_still_present(self) -> bool:
        if self._conn is None:
            return False
        try:
            self._conn.token.slot.get_token()
            self._conn.session.generate_random(8)
        except pkcs11.PKCS11Error:
            return False
        return True

    def _reconnect(self) -> None:
        """Connect again after a removal; a module that cannot start yet is still removed."""
        try:
            self._connect()
        except TokenNotFound:
            # The module still loads but no longer lists the token (one of several on it
            # was removed). SoftHSM lists tokens at C_Initialize only, so rescan by
            # reinitialising the module, at most every RESCAN_SECONDS: a rescan logs the
            # other tokens on this module out, and they log in again on their next call.
            now = time.monotonic()
            if now - self._module.last_rescan >= RESCAN_SECONDS:
                self._module.last_rescan = now
                self._module.needs_reinit = True
            raise TokenRemoved(
                f"the {self.config.describe()} went away (its module no longer lists it); "
                "it will be looked for again on the next request"
            ) from None
        except HsmError:
            raise
        except pkcs11.PKCS11Error as exc:
            self._module.needs_reinit = True
            raise TokenRemoved(
                f"the {self.config.describe()} is still unavailable ({type(exc).__name__}); "
                "it will be reopened on the next request"
            ) from None

    def _load_lib(self) -> Any:
        module = self._module
        wanted_conf = self.config.softhsm_conf
        if wanted_conf and wanted_conf != module.softhsm_conf:
            os.environ["SOFTHSM2_CONF"] = wanted_conf
            module.softhsm_conf = wanted_conf
            if module.lib is not None:
                module.lib.reinitialize()
                module.generation += 1
        if module.lib is not None and module.needs_reinit:
            failed = module.failed_init_at
            if failed is None or time.monotonic() - failed >= REINIT_RETRY_SECONDS:
                self._reinitialise()
            if module.needs_reinit:
                raise TokenRemoved(
                    f"the {self.config.describe()} is still unavailable (the module "
                    "does not initialise); it is tried again at most once a second"
                )
        if module.lib is None:
            if not Path(module.path).is_file():
                raise ModuleMissing(
                    f"PKCS#11 module {module.path} not found; install it (for SoftHSM: "
                    "apt-get install softhsm2) or set SEKISHO_HSM_MODULE"
                )
            try:
                module.lib = pkcs11.lib(module.path)
                # Known before its first key pair, so no refused template logs an ERROR.
                module.paired_templates = module.lib.manufacturer_id.strip() == TPM2_PKCS11
            except pkcs11.PKCS11Error as exc:
                raise ModuleMissing(
                    f"PKCS#11 module {module.path} could not be loaded: C_Initialize failed "
                    f"({_reason(exc)}); if the module needs a daemon (opencryptoki: "
                    "pkcsslotd; tpm2-pkcs11: the TPM or tpm2-abrmd), check that it runs"
                ) from None
        return module.lib

    def _find_token(self, lib: Any) -> Any:
        try:
            return lib.get_token(
                token_label=self.config.token_label, token_serial=self.config.token_serial
            )
        except pkcs11.NoSuchToken:
            present = sorted(t.label for t in lib.get_tokens() if t.label)
            raise TokenNotFound(
                f"no {self.config.describe()}; tokens present: {present or 'none'}"
            ) from None
        except pkcs11.MultipleTokensReturned:
            raise TokenNotFound(
                f"several tokens match the {self.config.describe()}; name it by serial"
            ) from None

    def _connect_at_open(self) -> None:
        """:meth:`_connect`, tried again after :data:`OPEN_RETRY_DELAYS` while the token is
        not listed or answers a general error (another process is writing its store)."""
        for delay in (*OPEN_RETRY_DELAYS, None):
            try:
                self._connect()
                return
            except (TokenNotFound, TokenRemoved, pkcs11.GeneralError, pkcs11.TokenNotRecognised):
                if delay is None:
                    raise
            time.sleep(delay)
            if self._module.lib is not None:
                self._reinitialise()

    def _connect(self) -> None:
        lib = self._load_lib()
        token = self._find_token(lib)
        try:
            session = token.open(rw=True, user_pin=self.config.pin.reveal())
        except (pkcs11.PinIncorrect, pkcs11.PinInvalid, pkcs11.PinLenRange):
            raise WrongPin(f"the {self.config.describe()} refused the PIN") from None
        except pkcs11.PinLocked:
            raise PinLocked(
                f"the user PIN of the {self.config.describe()} is locked; "
                "the security officer must reset it"
            ) from None
        except pkcs11.UserAlreadyLoggedIn:
            session = token.open(rw=True)
        except (pkcs11.TokenNotPresent, pkcs11.TokenNotRecognised):
            raise TokenNotFound(f"the {self.config.describe()} is not present") from None
        self._conn = _Connection(token=token, session=session, generation=self._module.generation)

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(pkcs11.PKCS11Error):
                conn.session.close()

    def _drop_connection(self) -> None:
        """Forget the session and reinitialise the module (after a removal, or to re-read the
        token's objects); every token on the module reconnects on its next call."""
        self._conn = None
        if self._module.lib is not None:
            self._reinitialise()

    def _reinitialise(self) -> None:
        """C_Finalize and C_Initialize; on failure (e.g. the token store or the TPM's
        resource manager is gone) the module stays marked, retried at most every
        REINIT_RETRY_SECONDS."""
        module = self._module
        try:
            module.lib.reinitialize()
        except pkcs11.PKCS11Error:
            module.needs_reinit = True
            module.failed_init_at = time.monotonic()
            module.failed_inits += 1
        else:
            module.needs_reinit = False
            module.failed_init_at = None
        module.generation += 1

    @property
    def _session(self) -> Any:
        assert self._conn is not None
        return self._conn.session

    def _handle(self, label: str, object_class: ObjectClass) -> Any:
        assert self._conn is not None
        cache_key = (label, int(object_class))
        handle = self._conn.handles.get(cache_key)
        if handle is None:
            try:
                handle = keyops.find_one(self._session, label, object_class)
            except KeyNotFound as exc:
                if self._may_refresh(label):
                    raise _Unlisted(exc.message) from None
                raise
            self._conn.handles[cache_key] = handle
        return handle

    def _may_refresh(self, label: str) -> bool:
        """True when no object at all has this label and the module may re-read its objects
        for it now (at most every few seconds per label, see :mod:`hsm.refresh`)."""
        # (read to the end: a search left open holds the session's operation)
        if list(self._session.get_objects({Attribute.LABEL: label})):
            return False  # the label is listed (e.g. a key pair asked for as a secret key)
        return self._module.refresh_limiter.allow(label, time.monotonic())

    def _ping(self) -> None:
        if not self._token_still_present():
            self._drop_connection()
            raise TokenRemoved(
                f"the {self.config.describe()} does not answer; "
                "it will be reopened on the next request"
            )

    def _status(self) -> TokenStatus:
        assert self._conn is not None
        token, lib = self._conn.token, self._module.lib
        mechanisms = tuple(sorted(m.name for m in token.slot.get_mechanisms()))
        return TokenStatus(
            module_path=self._module.path,
            library=f"{lib.manufacturer_id} {lib.library_description}".strip(),
            library_version="{}.{}".format(*lib.library_version),
            token_label=token.label,
            serial=token.serial.decode() if isinstance(token.serial, bytes) else str(token.serial),
            manufacturer=token.manufacturer_id,
            model=token.model,
            mechanisms=mechanisms,
        )

    def _profile(self) -> TokenProfile:
        assert self._conn is not None
        if self._conn.profile is None:
            wanted = {r.mechanism for options in OPTIONS.values() for o in options for r in o.needs}
            slot = self._conn.token.slot
            offered: dict[str, MechanismSupport] = {}
            for mechanism in slot.get_mechanisms():
                name = getattr(mechanism, "name", None)
                if name not in wanted:
                    continue
                info = slot.get_mechanism_info(mechanism)
                offered[name] = MechanismSupport(
                    name, info.min_key_length, info.max_key_length, int(info.flags)
                )
            self._conn.profile = choose_profile(offered)
        return self._conn.profile

    def _list_keys(self) -> list[KeyInfo]:
        infos: list[KeyInfo] = []
        for object_class in (
            ObjectClass.PRIVATE_KEY,
            ObjectClass.PUBLIC_KEY,
            ObjectClass.SECRET_KEY,
        ):
            for obj in self._session.get_objects({Attribute.CLASS: object_class}):
                infos.append(keyops.describe(obj))
        return sorted(infos, key=lambda info: (info.label, info.object_class))

    def _has_key(self, label: str) -> bool:
        for object_class in (ObjectClass.PRIVATE_KEY, ObjectClass.SECRET_KEY):
            try:
                self._handle(label, object_class)
                return True
            except _Unlisted:
                raise
            except KeyNotFound:
                continue
        return False

    def _generate(self, label: str, algorithm: KeyAlgorithm) -> KeyInfo:
        if self._has_key(label):
            raise OperationFailed(f"a key labelled {label!r} already exists on the token")
        try:
            if keyops.generate(
                self._session,
                label,
                algorithm,
                key_id=hashlib.sha256(label.encode()).digest()[:8],
                paired=self._module.paired_templates,
            ):
                self._module.paired_templates = True
        except _MECHANISM_ERRORS as exc:
            raise MechanismNotSupported(
                f"generating key {label!r} ({algorithm.value}): the token refused "
                f"CKM_{keyops.generation_mechanism(algorithm)} ({_reason(exc)})"
            ) from None
        object_class = (
            ObjectClass.PRIVATE_KEY if algorithm.is_asymmetric else ObjectClass.SECRET_KEY
        )
        return keyops.describe(self._handle(label, object_class))

    def _public_key(self, label: str) -> PublicKeyTypes:
        assert self._conn is not None
        cached = self._conn.public_keys.get(label)
        if cached is None:
            cached = public_key_of(self._handle(label, ObjectClass.PUBLIC_KEY))
            self._conn.public_keys[label] = cached
        return cached

    def _sign(self, request: SignRequest) -> bytes:
        private = self._handle(request.label, ObjectClass.PRIVATE_KEY)
        try:
            return sign_with(private, request)
        except _MECHANISM_ERRORS as exc:
            raise MechanismNotSupported(
                f"signing with key {request.label!r}: the token refused "
                f"CKM_{signing_mechanism(private, request)} ({_reason(exc)})"
            ) from None

    def _sign_many(self, requests: Sequence[SignRequest]) -> list[bytes | HsmError]:
        results: list[bytes | HsmError] = []
        for request in requests:
            try:
                results.append(self._guarded(lambda r=request: self._sign(r)))  # type: ignore[misc]
            except HsmError as exc:
                results.append(exc)
        return results

    def _generate_pair_kek(self, label: str, kek_type: KekType) -> KeyInfo:
        """An RSA-3072 (OAEP) or P-256 (ECDH) key-encryption key pair."""
        if self._has_key(label):
            raise OperationFailed(f"a key labelled {label!r} already exists on the token")
        ecdh = kek_type is KekType.ECDH_P256_HKDF_SHA256
        key_id = hashlib.sha256(label.encode()).digest()[:8]
        try:
            if ecdh:
                keyops.generate_ec_kek(self._session, label, key_id=key_id)
            elif keyops.generate_rsa_kek(
                self._session, label, key_id=key_id, paired=self._module.paired_templates
            ):
                self._module.paired_templates = True
        except _MECHANISM_ERRORS as exc:
            kind, mechanism = (
                ("ec-p256, derive", "EC_KEY_PAIR_GEN")
                if ecdh
                else ("rsa-3072", "RSA_PKCS_KEY_PAIR_GEN")
            )
            raise MechanismNotSupported(
                f"generating KEK {label!r} ({kind}): the token refused "
                f"CKM_{mechanism} ({_reason(exc)})"
            ) from None
        return keyops.describe(self._handle(label, ObjectClass.PRIVATE_KEY))

    def _kek_type(self, label: str) -> KekType:
        assert self._conn is not None
        known = self._conn.kek_types.get(label)
        if known is None:
            try:
                self._handle(label, ObjectClass.SECRET_KEY)
                known = KekType.AES_KEY_WRAP_PAD
            except _Unlisted:
                raise
            except KeyNotFound:
                private = self._handle(label, ObjectClass.PRIVATE_KEY)
                is_ec = private[Attribute.KEY_TYPE] == pkcs11.KeyType.EC
                known = KekType.ECDH_P256_HKDF_SHA256 if is_ec else KekType.RSA_OAEP_SHA256
            self._conn.kek_types[label] = known
        return known

    def _ec_kek_public(self, kek_label: str) -> ec.EllipticCurvePublicKey:
        public = self._public_key(kek_label)
        if not isinstance(public, ec.EllipticCurvePublicKey):
            raise OperationFailed(f"the KEK {kek_label!r} is not a P-256 key pair")
        return public

    def _ecdh_unwrap(self, kek_label: str, wrapped: bytes) -> bytes:
        try:
            point, wrap = ecdh_parts(wrapped)
        except ValueError:
            raise _not_unwrapped(kek_label) from None
        private = self._handle(kek_label, ObjectClass.PRIVATE_KEY)
        try:
            secret = private.derive_key(
                pkcs11.KeyType.GENERIC_SECRET,
                256,
                mechanism=Mechanism.ECDH1_DERIVE,
                mechanism_param=(pkcs11.KDF.NULL, None, point),
                store=False,
                template={Attribute.SENSITIVE: False, Attribute.EXTRACTABLE: True},
            )
        except _MECHANISM_ERRORS as exc:
            raise MechanismNotSupported(
                f"KEK unwrap with key {kek_label!r}: the token refused CKM_ECDH1_DERIVE "
                f"({_reason(exc)})"
            ) from None
        try:
            shared = bytes(secret[Attribute.VALUE])
        finally:
            secret.destroy()
        try:
            return ecdh_unwrap(shared, point, self._ec_kek_public(kek_label), wrap)
        except InvalidUnwrap:
            raise _not_unwrapped(kek_label) from None

    def _wrap(self, kek_label: str, data_key: bytes) -> bytes:
        if self._kek_type(kek_label) is KekType.ECDH_P256_HKDF_SHA256:
            return ecdh_wrap(self._ec_kek_public(kek_label), data_key)
        if self._kek_type(kek_label) is KekType.RSA_OAEP_SHA256:
            public = self._public_key(kek_label)
            if not isinstance(public, rsa.RSAPublicKey):
                raise OperationFailed(f"the KEK {kek_label!r} is not an RSA key pair")
            return oaep_encrypt(public, data_key)
        kek = self._handle(kek_label, ObjectClass.SECRET_KEY)
        transient = self._session.create_object(
            {
                Attribute.CLASS: ObjectClass.SECRET_KEY,
                Attribute.KEY_TYPE: pkcs11.KeyType.AES,
                Attribute.VALUE: data_key,
                Attribute.TOKEN: False,
                Attribute.SENSITIVE: False,
                Attribute.EXTRACTABLE: True,
            }
        )
        try:
            return bytes(kek.wrap_key(transient, mechanism=Mechanism.AES_KEY_WRAP_PAD))
        except _MECHANISM_ERRORS as exc:
            raise MechanismNotSupported(
                f"KEK wrap with key {kek_label!r}: the token refused CKM_AES_KEY_WRAP_PAD "
                f"({_reason(exc)})"
            ) from None
        finally:
            transient.destroy()

    def _unwrap(self, kek_label: str, wrapped: bytes) -> bytes:
        if self._kek_type(kek_label) is KekType.ECDH_P256_HKDF_SHA256:
            return self._ecdh_unwrap(kek_label, wrapped)
        if self._kek_type(kek_label) is KekType.RSA_OAEP_SHA256:
            return self._oaep_decrypt(kek_label, wrapped)
        kek = self._handle(kek_label, ObjectClass.SECRET_KEY)
        try:
            transient = kek.unwrap_key(
                ObjectClass.SECRET_KEY,
                pkcs11.KeyType.AES,
                wrapped,
                mechanism=Mechanism.AES_KEY_WRAP_PAD,
                store=False,
                template={Attribute.SENSITIVE: False, Attribute.EXTRACTABLE: True},
            )
        except _MECHANISM_ERRORS as exc:
            raise MechanismNotSupported(
                f"KEK unwrap with key {kek_label!r}: the token refused CKM_AES_KEY_WRAP_PAD "
                f"({_reason(exc)})"
            ) from None
        except (
            pkcs11.WrappedKeyInvalid,
            pkcs11.WrappedKeyLenRange,
            pkcs11.EncryptedDataInvalid,
            pkcs11.GeneralError,
        ):
            raise _not_unwrapped(kek_label) from None
        try:
            return bytes(transient[Attribute.VALUE])
        finally:
            transient.destroy()

    def _oaep_decrypt(self, kek_label: str, wrapped: bytes) -> bytes:
        private = self._handle(kek_label, ObjectClass.PRIVATE_KEY)
        try:
            return bytes(
                private.decrypt(
                    wrapped, mechanism=Mechanism.RSA_PKCS_OAEP, mechanism_param=OAEP_PARAMS
                )
            )
        except _OAEP_ERRORS as exc:
            # SoftHSM 2.6 offers CKM_RSA_PKCS_OAEP but refuses any hash but SHA-1.
            raise MechanismNotSupported(
                f"KEK unwrap with key {kek_label!r}: the token refused CKM_RSA_PKCS_OAEP "
                f"with SHA-256 ({_reason(exc)})"
            ) from None
        except (
            pkcs11.EncryptedDataInvalid,
            pkcs11.EncryptedDataLenRange,
            pkcs11.GeneralError,
            pkcs11.FunctionFailed,  # opencryptoki, for a changed ciphertext
        ):
            raise _not_unwrapped(kek_label) from None

    def _store_certificate(self, label: str, der: bytes, subject_der: bytes) -> None:
        for old in self._session.get_objects(
            {Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.LABEL: label}
        ):
            old.destroy()
        self._session.create_object(
            {
                Attribute.CLASS: ObjectClass.CERTIFICATE,
                Attribute.CERTIFICATE_TYPE: CertificateType.X_509,
                Attribute.TOKEN: True,
                Attribute.PRIVATE: False,
                Attribute.LABEL: label,
                Attribute.ID: hashlib.sha256(label.encode()).digest()[:8],
                Attribute.SUBJECT: subject_der,
                Attribute.VALUE: der,
            }
        )

    def _certificate(self, label: str) -> bytes | None:
        for obj in self._session.get_objects(
            {Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.LABEL: label}
        ):
            return bytes(obj[Attribute.VALUE])
        return None

    def _data_objects(self, label: str) -> list[Any]:
        assert self._conn is not None
        found = self._conn.data_objects.get(label)
        if found is None:
            found = list(
                self._session.get_objects(
                    {Attribute.CLASS: ObjectClass.DATA, Attribute.LABEL: label}
                )
            )
            self._conn.data_objects[label] = found
        return found

    def _read_data(self, label: str) -> list[bytes]:
        return [bytes(obj[Attribute.VALUE]) for obj in self._data_objects(label)]

    def _write_data(self, label: str, value: bytes) -> None:
        # CKA_VALUE is read-only once created (SoftHSM): write the new object first,
        # then remove the old ones, so a crash in between leaves both, never none.
        assert self._conn is not None
        existing = self._data_objects(label)
        created = self._session.create_object(
            {
                Attribute.CLASS: ObjectClass.DATA,
                Attribute.TOKEN: True,
                Attribute.PRIVATE: True,
                Attribute.LABEL: label,
                Attribute.APPLICATION: "sekisho",
                Attribute.VALUE: value,
            }
        )
        self._conn.data_objects[label] = [created, *existing]
        for old in existing:
            old.destroy()
        self._conn.data_objects[label] = [created]

    def _destroy(self, label: str) -> None:
        assert self._conn is not None
        for obj in list(self._session.get_objects({Attribute.LABEL: label})):
            obj.destroy()
        self._conn.handles = {k: v for k, v in self._conn.handles.items() if k[0] != label}
        self._conn.public_keys.pop(label, None)
        self._conn.kek_types.pop(label, None)


def _not_unwrapped(kek_label: str) -> OperationFailed:
    """The one answer for a wrapped data key that does not unwrap, whatever the KEK type."""
    return OperationFailed(
        f"the wrapped data key does not unwrap under {kek_label!r}: "
        "it was changed or belongs to another key"
    )


def _reason(exc: Exception) -> str:
    """A PKCS#11 error as text: python-pkcs11's message, else its CKR name (never empty)."""
    return str(exc).strip() or f"CKR {type(exc).__name__}"
