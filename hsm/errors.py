"""Typed token errors, each with a message an operator can act on."""

from __future__ import annotations


class HsmError(Exception):
    """Base of every error raised by the token layer."""

    code = "hsm_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class HsmConfigError(HsmError):
    """The token configuration (URI, module path, PIN source) is unusable."""

    code = "hsm_config"


class ModuleMissing(HsmError):
    """The PKCS#11 module file is missing or cannot be loaded."""

    code = "hsm_module_not_found"


class TokenNotFound(HsmError):
    """No token with the configured label or serial is present."""

    code = "hsm_token_not_found"


class WrongPin(HsmError):
    """The token refused the user PIN."""

    code = "hsm_wrong_pin"


class PinLocked(HsmError):
    """The user PIN is locked after too many wrong attempts."""

    code = "hsm_pin_locked"


class KeyNotFound(HsmError):
    """No key with the requested label exists on the token."""

    code = "hsm_key_not_found"


class MechanismNotSupported(HsmError):
    """The token does not offer a mechanism the operation needs."""

    code = "hsm_mechanism_not_supported"


class TokenRemoved(HsmError):
    """The token went away (removed, unplugged, or its store vanished) while running."""

    code = "hsm_token_removed"


class OperationFailed(HsmError):
    """The token rejected an operation for a reason other than the above."""

    code = "hsm_operation_failed"
