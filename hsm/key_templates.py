"""Key kinds, generation templates, and reading key attributes back (worker-thread code)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import pkcs11
from pkcs11 import Attribute, KeyType, ObjectClass
from pkcs11.util.ec import encode_named_curve_parameters

from hsm.errors import KeyNotFound

P256_OID = "1.2.840.10045.3.1.7"
ED25519_OID = "1.3.101.112"


class KeyAlgorithm(enum.StrEnum):
    """The key kinds Sekisho keeps on a token."""

    EC_P256 = "ec-p256"
    ED25519 = "ed25519"
    RSA_3072 = "rsa-3072"
    AES_256 = "aes-256"

    @property
    def is_asymmetric(self) -> bool:
        """True for signing key pairs, False for the AES key-encryption key."""
        return self is not KeyAlgorithm.AES_256


@dataclass(frozen=True)
class KeyInfo:
    """What an operator sees about one token object."""

    label: str
    key_id: str
    object_class: str
    key_type: str
    algorithm: KeyAlgorithm | None
    sensitive: bool | None
    extractable: bool | None
    token_object: bool

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready view."""
        return {
            "label": self.label,
            "id": self.key_id,
            "class": self.object_class,
            "type": self.key_type,
            "algorithm": self.algorithm.value if self.algorithm else None,
            "sensitive": self.sensitive,
            "extractable": self.extractable,
            "token": self.token_object,
        }


PRIVATE_TEMPLATE: dict[Attribute, Any] = {
    Attribute.TOKEN: True,
    Attribute.PRIVATE: True,
    Attribute.SENSITIVE: True,
    Attribute.EXTRACTABLE: False,
    Attribute.SIGN: True,
}
PUBLIC_TEMPLATE: dict[Attribute, Any] = {
    Attribute.TOKEN: True,
    Attribute.PRIVATE: False,
    Attribute.VERIFY: True,
}
KEK_TEMPLATE: dict[Attribute, Any] = {
    Attribute.TOKEN: True,
    Attribute.PRIVATE: True,
    Attribute.SENSITIVE: True,
    Attribute.EXTRACTABLE: False,
    Attribute.WRAP: True,
    Attribute.UNWRAP: True,
    Attribute.ENCRYPT: False,
    Attribute.DECRYPT: False,
}


# tpm2-pkcs11 makes every key pair able to sign and decrypt (one TPM object) and refuses a
# template that asks for only one half ("attr mismatch", CKR_GENERAL_ERROR, and an ERROR
# line on stderr): it gets the pair with ENCRYPT/DECRYPT added. A module known to need it
# (``paired``) gets that at once; any other gets it only after the plain template failed.
_PAIRED_PRIVATE = {**PRIVATE_TEMPLATE, Attribute.DECRYPT: True}
_PAIRED_PUBLIC = {**PUBLIC_TEMPLATE, Attribute.ENCRYPT: True}


def generate(
    session: Any, label: str, algorithm: KeyAlgorithm, key_id: bytes, *, paired: bool = False
) -> bool:
    """Create a key (pair) as sensitive, non-extractable token objects.

    True when the pair was made with the paired template (the module needs it).
    """
    if paired and algorithm.is_asymmetric:
        _generate(session, label, algorithm, key_id, _PAIRED_PUBLIC, _PAIRED_PRIVATE)
        return True
    try:
        _generate(session, label, algorithm, key_id, PUBLIC_TEMPLATE, PRIVATE_TEMPLATE)
    except pkcs11.GeneralError:
        if not algorithm.is_asymmetric:
            raise
        _generate(session, label, algorithm, key_id, _PAIRED_PUBLIC, _PAIRED_PRIVATE)
        return True
    return False


def _generate(
    session: Any,
    label: str,
    algorithm: KeyAlgorithm,
    key_id: bytes,
    public_template: dict[Attribute, Any],
    private_template: dict[Attribute, Any],
) -> None:
    if algorithm is KeyAlgorithm.AES_256:
        session.generate_key(
            KeyType.AES, 256, label=label, id=key_id, store=True, template=KEK_TEMPLATE
        )
        return
    if algorithm is KeyAlgorithm.RSA_3072:
        session.generate_keypair(
            KeyType.RSA,
            3072,
            label=label,
            id=key_id,
            store=True,
            public_template=public_template,
            private_template=private_template,
        )
        return
    key_type, curve = (
        (KeyType.EC, P256_OID)
        if algorithm is KeyAlgorithm.EC_P256
        else (KeyType.EC_EDWARDS, ED25519_OID)
    )
    params = session.create_domain_parameters(
        key_type, {Attribute.EC_PARAMS: encode_named_curve_parameters(curve)}, local=True
    )
    params.generate_keypair(
        label=label,
        id=key_id,
        store=True,
        public_template=public_template,
        private_template=private_template,
    )


def generation_mechanism(algorithm: KeyAlgorithm) -> str:
    """The PKCS#11 mechanism name :func:`generate` uses (without ``CKM_``)."""
    return {
        KeyAlgorithm.AES_256: "AES_KEY_GEN",
        KeyAlgorithm.RSA_3072: "RSA_PKCS_KEY_PAIR_GEN",
        KeyAlgorithm.EC_P256: "EC_KEY_PAIR_GEN",
        KeyAlgorithm.ED25519: "EC_EDWARDS_KEY_PAIR_GEN",
    }[algorithm]


RSA_KEK_PRIVATE: dict[Attribute, Any] = {
    Attribute.TOKEN: True,
    Attribute.PRIVATE: True,
    Attribute.SENSITIVE: True,
    Attribute.EXTRACTABLE: False,
    Attribute.DECRYPT: True,
}
RSA_KEK_PUBLIC: dict[Attribute, Any] = {
    Attribute.TOKEN: True,
    Attribute.PRIVATE: False,
    Attribute.ENCRYPT: True,
}


def generate_rsa_kek(session: Any, label: str, key_id: bytes, *, paired: bool = False) -> bool:
    """An RSA-3072 key pair that decrypts (OAEP) data keys; paired like signing keys on a TPM.

    True when the pair was made with the paired template.
    """
    templates = (
        (RSA_KEK_PUBLIC, RSA_KEK_PRIVATE),
        ({**RSA_KEK_PUBLIC, Attribute.VERIFY: True}, {**RSA_KEK_PRIVATE, Attribute.SIGN: True}),
    )
    for attempt, (public, private) in enumerate(templates[1:] if paired else templates):
        try:
            session.generate_keypair(
                KeyType.RSA,
                3072,
                label=label,
                id=key_id,
                store=True,
                public_template=public,
                private_template=private,
            )
            return paired or attempt > 0
        except pkcs11.GeneralError:
            if paired or attempt:
                raise
    raise AssertionError("unreachable")


EC_KEK_PRIVATE: dict[Attribute, Any] = {
    Attribute.TOKEN: True,
    Attribute.PRIVATE: True,
    Attribute.SENSITIVE: True,
    Attribute.EXTRACTABLE: False,
    Attribute.DERIVE: True,
}
EC_KEK_PUBLIC: dict[Attribute, Any] = {Attribute.TOKEN: True, Attribute.PRIVATE: False}


def generate_ec_kek(session: Any, label: str, key_id: bytes) -> None:
    """A P-256 key pair whose private half derives ECDH secrets (ECDH KEKs)."""
    params = session.create_domain_parameters(
        KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters(P256_OID)}, local=True
    )
    params.generate_keypair(
        label=label,
        id=key_id,
        store=True,
        public_template=EC_KEK_PUBLIC,
        private_template=EC_KEK_PRIVATE,
    )


def find_one(session: Any, label: str, object_class: ObjectClass) -> Any:
    """The one object with this label and class, or KeyNotFound."""
    try:
        return session.get_key(object_class=object_class, label=label)
    except pkcs11.NoSuchKey as exc:
        raise KeyNotFound(
            f"no {_class_name(object_class)} key labelled {label!r} on the token; "
            "run 'sekisho init' or check the key name"
        ) from exc


def algorithm_of(obj: Any) -> KeyAlgorithm | None:
    """Which of our algorithms a key object is, from its attributes."""
    key_type = obj.key_type
    if key_type == KeyType.AES:
        return KeyAlgorithm.AES_256
    if key_type == KeyType.RSA:
        return KeyAlgorithm.RSA_3072
    if key_type == KeyType.EC_EDWARDS:
        return KeyAlgorithm.ED25519
    if key_type == KeyType.EC:
        return KeyAlgorithm.EC_P256
    return None


def describe(obj: Any) -> KeyInfo:
    """Read label, id, type and the protection attributes back from the token."""
    object_class = obj.object_class
    sensitive = (
        _bool_attr(obj, Attribute.SENSITIVE) if object_class != ObjectClass.PUBLIC_KEY else None
    )
    extractable = (
        _bool_attr(obj, Attribute.EXTRACTABLE) if object_class != ObjectClass.PUBLIC_KEY else None
    )
    raw_id = _attr(obj, Attribute.ID) or b""
    return KeyInfo(
        label=str(_attr(obj, Attribute.LABEL) or ""),
        key_id=bytes(raw_id).hex(),
        object_class=_class_name(object_class),
        key_type=getattr(obj.key_type, "name", str(obj.key_type)),
        algorithm=algorithm_of(obj),
        sensitive=sensitive,
        extractable=extractable,
        token_object=bool(_attr(obj, Attribute.TOKEN)),
    )


def _attr(obj: Any, attribute: Attribute) -> Any:
    try:
        return obj[attribute]
    except (pkcs11.AttributeTypeInvalid, pkcs11.AttributeSensitive):
        return None


def _bool_attr(obj: Any, attribute: Attribute) -> bool | None:
    value = _attr(obj, attribute)
    return None if value is None else bool(value)


def _class_name(object_class: ObjectClass) -> str:
    return {
        ObjectClass.PRIVATE_KEY: "private",
        ObjectClass.PUBLIC_KEY: "public",
        ObjectClass.SECRET_KEY: "secret",
        ObjectClass.CERTIFICATE: "certificate",
    }.get(object_class, str(object_class))
