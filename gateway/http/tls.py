"""The server's TLS context from ``http.tls_cert``, ``http.tls_key`` and ``http.tls_client_ca``.

With a client CA the server asks for a client certificate but does not require
one: a certificate that chains to the CA authenticates an API client
registered with its SHA-256 fingerprint; without one, bearer tokens apply.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from gateway.config import HttpSettings
from gateway.errors import ConfigError


def _file(setting: str, value: str) -> str:
    if not Path(value).is_file():
        env = "SEKISHO_HTTP_" + setting.removeprefix("http.").upper()
        raise ConfigError(f"setting {setting} ({env}): {value} is not a readable file")
    return value


def server_ssl_context(http: HttpSettings) -> ssl.SSLContext | None:
    """None when TLS is not configured; otherwise a TLS 1.2+ server context."""
    if not http.tls_cert and not http.tls_key and not http.tls_client_ca:
        return None
    if not http.tls_cert or not http.tls_key:
        raise ConfigError(
            "settings http.tls_cert and http.tls_key (SEKISHO_HTTP_TLS_CERT, "
            "SEKISHO_HTTP_TLS_KEY) must be set together; http.tls_client_ca needs both"
        )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(
            _file("http.tls_cert", http.tls_cert), _file("http.tls_key", http.tls_key)
        )
    except ssl.SSLError as exc:
        raise ConfigError(
            f"setting http.tls_cert/http.tls_key: cannot load the certificate and key: {exc}"
        ) from None
    if http.tls_client_ca:
        try:
            context.load_verify_locations(cafile=_file("http.tls_client_ca", http.tls_client_ca))
        except ssl.SSLError as exc:
            raise ConfigError(
                f"setting http.tls_client_ca (SEKISHO_HTTP_TLS_CLIENT_CA): not a CA file: {exc}"
            ) from None
        context.verify_mode = ssl.CERT_OPTIONAL
    return context
