"""Everything PKCS#11: token discovery, sessions, keys, signing and key wrapping.

Nothing outside this package imports ``pkcs11``. The public surface is what
this module exports; the rest is internal.
"""

from hsm.capabilities import (
    Choice,
    Function,
    MechanismSupport,
    Option,
    TokenProfile,
    choose_profile,
)
from hsm.certs import CertificateRequest, issue_certificate
from hsm.config import Secret, TokenConfig, find_softhsm_module, read_pin
from hsm.errors import (
    HsmConfigError,
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
from hsm.signing import DIGEST_SIZES, RsaPadding, SignRequest
from hsm.softhsm import SoftHsmLayout, provision_token
from hsm.token import Token, TokenStatus
from hsm.tokenset import Placement, TokenSet
from hsm.uri import Pkcs11Uri, format_pkcs11_uri, parse_pkcs11_uri
from hsm.verify import verify_signature
from hsm.wrapping import KekType

__all__ = [
    "DIGEST_SIZES",
    "CertificateRequest",
    "Choice",
    "Function",
    "HsmConfigError",
    "HsmError",
    "KekType",
    "KeyAlgorithm",
    "KeyInfo",
    "KeyNotFound",
    "MechanismNotSupported",
    "MechanismSupport",
    "ModuleMissing",
    "OperationFailed",
    "Option",
    "PinLocked",
    "Pkcs11Uri",
    "Placement",
    "RsaPadding",
    "Secret",
    "SignRequest",
    "SoftHsmLayout",
    "Token",
    "TokenConfig",
    "TokenNotFound",
    "TokenProfile",
    "TokenRemoved",
    "TokenSet",
    "TokenStatus",
    "WrongPin",
    "choose_profile",
    "find_softhsm_module",
    "format_pkcs11_uri",
    "issue_certificate",
    "parse_pkcs11_uri",
    "provision_token",
    "read_pin",
    "verify_signature",
]
