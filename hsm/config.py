"""How to reach a token: module, token label or serial, PIN source."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from hsm.errors import HsmConfigError
from hsm.uri import parse_pkcs11_uri

SOFTHSM_MODULE_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)


class Secret:
    """A string that never shows itself in repr, str or logs."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret value; call only where it is handed to the token."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def find_softhsm_module() -> str | None:
    """The path of the installed SoftHSM module, or None when it is not installed."""
    for candidate in SOFTHSM_MODULE_CANDIDATES:
        if Path(candidate).is_file():
            return candidate
    return None


def read_pin(
    *, env_var: str | None = None, pin_file: str | os.PathLike[str] | None = None
) -> Secret:
    """Read a PIN from an environment variable or, failing that, a file."""
    if env_var and os.environ.get(env_var):
        return Secret(os.environ[env_var])
    if pin_file:
        path = Path(os.fspath(pin_file).removeprefix("file:"))
        try:
            value = path.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise HsmConfigError(f"cannot read the PIN file {path}: {exc.strerror}") from exc
        if not value:
            raise HsmConfigError(f"the PIN file {path} is empty")
        return Secret(value)
    source = f"${env_var}" if env_var else "a PIN file"
    raise HsmConfigError(f"no token PIN: set {source} or configure a PIN file")


@dataclass(frozen=True)
class TokenConfig:
    """Everything needed to open a logged-in session on one token."""

    module_path: str
    pin: Secret = field(repr=False)
    token_label: str | None = None
    token_serial: str | None = None
    softhsm_conf: str | None = None

    def __post_init__(self) -> None:
        if not self.token_label and not self.token_serial:
            raise HsmConfigError("a token must be named by label or serial (never by slot)")

    @classmethod
    def from_uri(cls, uri: str, pin: Secret, *, softhsm_conf: str | None = None) -> TokenConfig:
        """Build from an RFC 7512 URI such as ``pkcs11:token=sekisho?module-path=/x.so``."""
        parsed = parse_pkcs11_uri(uri)
        module = parsed.module_path or find_softhsm_module()
        if module is None:
            raise HsmConfigError("the pkcs11 URI names no module-path and SoftHSM is not installed")
        return cls(
            module_path=module,
            pin=pin,
            token_label=parsed.token,
            token_serial=parsed.serial,
            softhsm_conf=softhsm_conf,
        )

    @property
    def identity(self) -> tuple[str, str | None, str | None]:
        """Which token this is: the module's real path (symlinks resolved), label, serial."""
        return (os.path.realpath(self.module_path), self.token_label, self.token_serial)

    def describe(self) -> str:
        """A short, PIN-free description for messages."""
        name = (
            f"label {self.token_label!r}" if self.token_label else f"serial {self.token_serial!r}"
        )
        return f"token with {name} in {self.module_path}"
