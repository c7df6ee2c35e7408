"""TLS for connections this node opens to other nodes (witnesses, logs it mirrors)."""

from __future__ import annotations

import ssl
from pathlib import Path

from gateway.errors import ConfigError


def client_ssl_context(ca_file: str, setting: str) -> ssl.SSLContext:
    """Verify servers against the system roots, or only against ``ca_file`` when given.

    ``setting`` names the setting for the error message (e.g. ``ledger.witness_tls_ca``).
    """
    if not ca_file:
        return ssl.create_default_context()
    env = "SEKISHO_" + setting.replace(".", "_").upper()
    if not Path(ca_file).is_file():
        raise ConfigError(f"setting {setting} ({env}): {ca_file} is not a readable file")
    try:
        context = ssl.create_default_context(cafile=ca_file)
    except ssl.SSLError as exc:
        raise ConfigError(f"setting {setting} ({env}): not a CA file: {exc}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context
