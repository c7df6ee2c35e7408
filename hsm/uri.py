"""RFC 7512 ``pkcs11:`` URIs: parse and format the parts Sekisho uses.

Slot numbers (``slot-id``) are refused on purpose: SoftHSM renumbers slots, so
tokens are found by label or serial only. PINs in URIs (``pin-value``) are
refused too; PINs come from the environment or a file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote, unquote_to_bytes

from hsm.errors import HsmConfigError

_PATH_ATTRS = {
    "token",
    "manufacturer",
    "serial",
    "model",
    "object",
    "id",
    "type",
    "library-manufacturer",
    "library-description",
    "library-version",
}
_QUERY_ATTRS = {"module-path", "module-name", "pin-source"}
_REFUSED = {
    "slot-id": "slot numbers change between runs; name the token by label or serial",
    "slot-description": "slot descriptions are not stable; name the token by label or serial",
    "slot-manufacturer": "slot attributes are not stable; name the token by label or serial",
    "pin-value": "a PIN must not be written into a URI; use SEKISHO_HSM_PIN or a PIN file",
}
_OBJECT_TYPES = {"private", "public", "secret-key", "cert", "data"}


@dataclass(frozen=True)
class Pkcs11Uri:
    """The attributes of a parsed ``pkcs11:`` URI (all optional)."""

    path: dict[str, bytes] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)

    def text(self, name: str) -> str | None:
        """A path attribute decoded as UTF-8, or None when absent."""
        raw = self.path.get(name)
        if raw is None:
            return None
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise HsmConfigError(f"pkcs11 URI attribute {name!r} is not UTF-8") from exc

    @property
    def token(self) -> str | None:
        """Token label."""
        return self.text("token")

    @property
    def serial(self) -> str | None:
        """Token serial number."""
        return self.text("serial")

    @property
    def object(self) -> str | None:
        """Object (key) label."""
        return self.text("object")

    @property
    def object_id(self) -> bytes | None:
        """Object id as raw bytes."""
        return self.path.get("id")

    @property
    def object_type(self) -> str | None:
        """Object class: private, public, secret-key, cert or data."""
        return self.text("type")

    @property
    def module_path(self) -> str | None:
        """Path of the PKCS#11 module to load."""
        return self.query.get("module-path")

    @property
    def pin_source(self) -> str | None:
        """A file path (or ``file:`` URI) the PIN is read from."""
        return self.query.get("pin-source")


def parse_pkcs11_uri(uri: str) -> Pkcs11Uri:
    """Parse an RFC 7512 URI, refusing slot numbers, PIN values and unknown attributes."""
    scheme, sep, rest = uri.partition(":")
    if not sep or scheme.lower() != "pkcs11":
        raise HsmConfigError(f"not a pkcs11: URI: {uri[:40]!r}")
    path_part, _, query_part = rest.partition("?")
    path = _parse_attributes(path_part, ";", _PATH_ATTRS)
    query_raw = _parse_attributes(query_part, "&", _QUERY_ATTRS)
    query = {k: v.decode("utf-8", "strict") for k, v in query_raw.items()}
    object_type = path.get("type")
    if object_type is not None and object_type.decode() not in _OBJECT_TYPES:
        raise HsmConfigError(f"pkcs11 URI type must be one of {sorted(_OBJECT_TYPES)}")
    return Pkcs11Uri(path=path, query=query)


def _parse_attributes(part: str, separator: str, allowed: set[str]) -> dict[str, bytes]:
    result: dict[str, bytes] = {}
    if not part:
        return result
    for item in part.split(separator):
        name, eq, value = item.partition("=")
        name = name.strip().lower()
        if not eq or not name:
            raise HsmConfigError(f"pkcs11 URI attribute {item!r} has no value")
        if name in _REFUSED:
            raise HsmConfigError(f"pkcs11 URI attribute {name!r} refused: {_REFUSED[name]}")
        if name not in allowed:
            raise HsmConfigError(f"pkcs11 URI attribute {name!r} is not supported here")
        if name in result:
            raise HsmConfigError(f"pkcs11 URI attribute {name!r} appears twice")
        result[name] = unquote_to_bytes(value)
    return result


def format_pkcs11_uri(
    *, token: str, object_label: str | None = None, object_type: str | None = None
) -> str:
    """Build a URI naming a token (and optionally an object) by label."""
    parts = [f"token={quote(token, safe='')}"]
    if object_label is not None:
        parts.append(f"object={quote(object_label, safe='')}")
    if object_type is not None:
        parts.append(f"type={object_type}")
    return "pkcs11:" + ";".join(parts)
