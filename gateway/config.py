"""One typed settings object, read from a TOML file and ``SEKISHO_*`` environment variables.

Precedence: environment over file over embedded defaults. Every setting has an
environment name ``SEKISHO_<SECTION>_<KEY>`` (upper case); the data directory
is also ``SEKISHO_DATA``; a sub-table such as ``[hsm.keys]`` is
``SEKISHO_HSM_KEYS_<KEY>``. A bad value stops start-up with one line naming the
setting. PINs are never settings: the token PIN comes from ``SEKISHO_HSM_PIN``
or the file named by ``hsm.pin_file``.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

from gateway.errors import ConfigError
from gateway.policy.labels import DEFAULT_LEVELS
from gateway.policy.nations import DEFAULT_COALITIONS as DEFAULT_COALITION_MEMBERS
from gateway.policy.nations import NationCodes, NationError

DEFAULT_TSA_POLICY = "2.25.133956762331911955508548569086636320372"
"""A UUID-derived OID (ITU-T X.667): unique without registration; set your own."""
_OID = re.compile(r"[0-2](\.(0|[1-9][0-9]*))+")


@dataclass(frozen=True)
class NodeSettings:
    """Who this node is and where it keeps its files."""

    name: str = "sekisho-1"
    data_dir: Path = Path("var")
    log_level: str = "info"


@dataclass(frozen=True)
class HttpSettings:
    """Where the HTTP server listens."""

    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 0
    max_body_mib: int = 1024
    body_idle_seconds: int = 30
    body_total_seconds: int = 900
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""


@dataclass(frozen=True)
class DatabaseSettings:
    """The database URL (``sqlite:///path`` or ``postgres://user@host:port/db``)."""

    url: str = ""


@dataclass(frozen=True)
class KeyPlacements:
    """Where each key lives when not on the default token: an RFC 7512 ``pkcs11:`` URI.

    In TOML the table ``[hsm.keys]``; in the environment ``SEKISHO_HSM_KEYS_<NAME>``.
    Empty: the key lives on the default token (``hsm.module``/``hsm.uri``). The
    token's PIN comes from the URI's ``pin-source`` (a file, or ``env:VARIABLE``),
    else from the node's PIN; ``pin-value`` is refused (see docs/deployment.md).
    """

    ledger: str = ""
    kek: str = ""
    ca: str = ""
    signing: str = ""
    tsa: str = ""
    witness: str = ""


@dataclass(frozen=True)
class NamedKeyPlacement:
    """A named signing key (``keys create NAME``) on its own token: every version of it.

    In TOML an array of tables ``[[hsm.named_keys]]`` with ``name`` and ``uri``; in
    the environment ``SEKISHO_HSM_NAMED_KEYS`` holds the same list as JSON.
    """

    name: str = ""
    uri: str = ""


@dataclass(frozen=True)
class HsmSettings:
    """The PKCS#11 token. Empty module and uri mean a SoftHSM token under the data dir.

    ``keys`` and ``named_keys`` put single keys on other tokens (default: all on this one).
    """

    module: str = ""
    uri: str = ""
    token_label: str = "sekisho"  # noqa: S105 - a label, not a secret
    pin_file: str = ""
    keys: KeyPlacements = field(default_factory=KeyPlacements)
    named_keys: tuple[NamedKeyPlacement, ...] = ()


@dataclass(frozen=True)
class KeySettings:
    """Labels of the token keys Sekisho uses."""

    ledger: str = "sekisho-ledger"
    kek: str = "sekisho-kek"
    signing: str = "sekisho-sign"
    ca: str = "sekisho-ca"
    tsa: str = "sekisho-tsa"


@dataclass(frozen=True)
class WitnessEndpoint:
    """One witness of this log: its cosigner vkey (type 0x04), submission URL, display name.

    In TOML an array of tables ``[[ledger.witnesses]]``; in the environment
    ``SEKISHO_LEDGER_WITNESSES`` holds the same list as JSON.
    """

    url: str = ""
    vkey: str = ""
    name: str = ""


@dataclass(frozen=True)
class LedgerSettings:
    """Ledger origin, sequencer batching, the periodic auditor and the log's witnesses."""

    origin: str = ""
    batch_size: int = 1000
    batch_ms: int = 5
    audit_seconds: int = 30
    audit_full_seconds: int = 900
    witnesses: tuple[WitnessEndpoint, ...] = ()
    quorum: int = 0
    witness_timeout_ms: int = 5000
    witness_tls_ca: str = ""
    public_entries: bool = False


@dataclass(frozen=True)
class TsaEndpoint:
    """One external RFC 3161 time-stamping authority that anchors the log.

    ``certs`` names a PEM file with the CA certificate(s) the TSA's certificate must
    chain to (intermediates may follow); ``token_file`` an optional file holding a
    bearer token to send (a Sekisho node's ``/api/v1/timestamp`` needs one).
    In TOML an array of tables ``[[anchoring.tsas]]``; in the environment
    ``SEKISHO_ANCHORING_TSAS`` holds the same list as JSON.
    """

    name: str = ""
    url: str = ""
    certs: str = ""
    hash: str = "sha256"
    policy: str = ""
    token_file: str = ""


@dataclass(frozen=True)
class AnchoringSettings:
    """Public anchoring: which TSAs timestamp the newest checkpoint, how often, when to alert."""

    tsas: tuple[TsaEndpoint, ...] = ()
    interval_seconds: int = 3600
    alert_after_seconds: int = 86_400
    retry_seconds: int = 30
    retry_max_seconds: int = 1800
    timeout_ms: int = 10_000


@dataclass(frozen=True)
class WitnessSettings:
    """A witness node (``sekisho witness``): cosigner name, token key, database, mirroring."""

    name: str = ""
    key: str = "sekisho-witness"
    database_url: str = ""
    mirror_seconds: int = 2
    tls_ca: str = ""
    mirror_readers_file: str = ""


@dataclass(frozen=True)
class SigningSettings:
    """The signing API: the RFC 3161 time-stamping policy and key, and batch limits."""

    tsa_policy: str = DEFAULT_TSA_POLICY
    tsa_key: str = "tsa"
    max_batch: int = 256
    custody_check_seconds: int = 60  # how often overdue custody steps are looked for; 0: never


@dataclass(frozen=True)
class PortalSettings:
    """The web portal: session time-outs, sign-in throttling, TLS terminated by a proxy."""

    session_idle_minutes: int = 30
    session_absolute_hours: int = 12
    max_failures: int = 5
    max_address_failures: int = 20
    failure_window_minutes: int = 15
    lockout_minutes: int = 15
    assume_tls: bool = False


@dataclass(frozen=True)
class AuthSettings:
    """Security keys (WebAuthn): the relying party and the levels that need a strong sign-in.

    ``security_key_levels``: content at or above the lowest listed level is served
    only to a session that signed in, or stepped up, with a security key or a client
    certificate. ``rp_id`` defaults to ``http.host`` when that is a DNS name, else
    ``localhost``; ``origins`` default to the origin the browser reached the portal
    at, when its host is the RP id (see docs/security.md).
    """

    security_key_levels: tuple[str, ...] = ()
    rp_id: str = ""
    rp_name: str = "Sekisho"
    origins: tuple[str, ...] = ()


@dataclass(frozen=True)
class DocumentSettings:
    """Document serving: how long an unwrapped data key may be reused (0: never), and the
    two-person rule: the levels at and above which downgrade and destruction need a second
    officer's approval within ``two_person_window`` seconds (none by default); and how
    many helper processes each gateway process may start to hash long downloads."""

    key_cache_seconds: int = 10
    two_person_levels: tuple[str, ...] = ()
    two_person_window: int = 3600
    hashing_helpers: int = 1


@dataclass(frozen=True)
class BlobSettings:
    """Where ciphertext lives: the data directory (default) or an S3-compatible object store."""

    backend: str = "filesystem"
    directory: str = ""
    s3_endpoint: str = ""
    s3_bucket: str = "sekisho"
    s3_region: str = "us-east-1"
    s3_path_style: bool = False
    s3_tls_ca: str = ""
    s3_prefix: str = "blobs/"
    s3_part_mib: int = 8
    s3_connections: int = 64
    s3_create_bucket: bool = True
    sweep_minutes: int = 60


@dataclass(frozen=True)
class Coalition:
    """A coalition code that REL TO may name, and its member nations (ISO alpha-3).

    In TOML an array of tables ``[[clearance.coalitions]]`` with ``name`` and
    ``members`` (codes separated by commas or spaces); in the environment
    ``SEKISHO_CLEARANCE_COALITIONS`` holds the same list as JSON. Setting it
    replaces the default list (NATO and FVEY).
    """

    name: str = ""
    members: str = ""


DEFAULT_COALITIONS = tuple(Coalition(n, m) for n, m in DEFAULT_COALITION_MEMBERS.items())


@dataclass(frozen=True)
class ClearanceSettings:
    """The ordered list of classification levels, lowest first, and REL TO coalitions."""

    levels: tuple[str, ...] = DEFAULT_LEVELS
    coalitions: tuple[Coalition, ...] = DEFAULT_COALITIONS


@dataclass(frozen=True)
class Settings:
    """Everything configurable, grouped by section."""

    node: NodeSettings = field(default_factory=NodeSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    hsm: HsmSettings = field(default_factory=HsmSettings)
    keys: KeySettings = field(default_factory=KeySettings)
    ledger: LedgerSettings = field(default_factory=LedgerSettings)
    clearance: ClearanceSettings = field(default_factory=ClearanceSettings)
    documents: DocumentSettings = field(default_factory=DocumentSettings)
    blobs: BlobSettings = field(default_factory=BlobSettings)
    signing: SigningSettings = field(default_factory=SigningSettings)
    portal: PortalSettings = field(default_factory=PortalSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    witness: WitnessSettings = field(default_factory=WitnessSettings)
    anchoring: AnchoringSettings = field(default_factory=AnchoringSettings)

    @property
    def worker_processes(self) -> int:
        """Gateway processes on this node's port: ``http.workers``, or one per core (at most 16)."""
        return self.http.workers or min(os.cpu_count() or 1, 16)

    @property
    def data_dir(self) -> Path:
        """The absolute data directory."""
        return self.node.data_dir.resolve()

    @property
    def database_url(self) -> str:
        """The configured database URL, or SQLite in the data directory."""
        return self.database.url or f"sqlite://{self.data_dir / 'sekisho.sqlite3'}"

    @property
    def webauthn_rp_id(self) -> str:
        """The WebAuthn relying-party id: ``auth.rp_id``, else a DNS-name host, else localhost."""
        if self.auth.rp_id:
            return self.auth.rp_id.lower()
        host = self.http.host.strip("[]").lower()
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return host or "localhost"
        return "localhost"

    @property
    def ledger_origin(self) -> str:
        """The checkpoint origin line; derived from the node name unless set."""
        return self.ledger.origin or f"sekisho.example/{self.node.name}"

    @property
    def witness_quorum(self) -> int:
        """Cosignatures that make a checkpoint final: ``ledger.quorum``, else a majority."""
        count = len(self.ledger.witnesses)
        return self.ledger.quorum or (count // 2 + 1 if count else 0)

    @property
    def witness_name(self) -> str:
        """This witness node's cosigner key name; derived from the node name unless set."""
        return self.witness.name or f"sekisho.example/witness/{self.node.name}"

    @property
    def witness_database_url(self) -> str:
        """A witness node's own database: ``witness.database_url`` or SQLite in the data dir."""
        return self.witness.database_url or f"sqlite://{self.data_dir / 'witness.sqlite3'}"

    @property
    def uses_embedded_softhsm(self) -> bool:
        """True when no module or URI is configured: SoftHSM under the data dir."""
        return not self.hsm.module and not self.hsm.uri

    @property
    def blob_dir(self) -> Path:
        """Where the filesystem blob store keeps ciphertext: ``blobs.directory`` or the data dir."""
        return (
            Path(self.blobs.directory).resolve()
            if self.blobs.directory
            else self.data_dir / "blobs"
        )


_SECTIONS = {f.name: f for f in fields(Settings)}


def load_settings(
    config_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Read the TOML file (if any) and the environment into a validated Settings."""
    env = os.environ if environ is None else environ
    file_values = _read_file(config_file or env.get("SEKISHO_CONFIG"))
    sections: dict[str, Any] = {}
    for name, section_field in _SECTIONS.items():
        cls = typing.get_type_hints(Settings)[name]
        raw_section = file_values.pop(name, {})
        if not isinstance(raw_section, dict):
            raise ConfigError(f"setting [{name}] must be a table")
        sections[name] = _build_section(name, cls, raw_section, env)
        del section_field
    if file_values:
        unknown = ", ".join(sorted(file_values))
        raise ConfigError(f"unknown configuration section(s): {unknown}")
    settings = Settings(**sections)
    data_env = env.get("SEKISHO_DATA")
    if data_env and "SEKISHO_NODE_DATA_DIR" not in env:
        settings = replace(settings, node=replace(settings.node, data_dir=Path(data_env)))
    _validate(settings)
    return settings


def _read_file(path: str | os.PathLike[str] | None) -> dict[str, Any]:
    if not path:
        return {}
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"configuration file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"configuration file {path} is not valid TOML: {exc}") from None


def _build_section(
    section: str, cls: type[Any], raw: dict[str, Any], env: Mapping[str, str]
) -> Any:
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for key in raw:
        if key not in hints:
            raise ConfigError(f"unknown setting {section}.{key}")
    for key, hint in hints.items():
        env_name = f"SEKISHO_{section}_{key}".upper().replace(".", "_")
        if isinstance(hint, type) and is_dataclass(hint):  # a sub-table such as [hsm.keys]
            sub = raw.get(key, {})
            if not isinstance(sub, dict):
                raise ConfigError(f"setting [{section}.{key}] must be a table")
            values[key] = _build_section(f"{section}.{key}", hint, sub, env)
        elif env_name in env:
            values[key] = _coerce(section, key, env_name, hint, env[env_name], from_env=True)
        elif key in raw:
            values[key] = _coerce(section, key, env_name, hint, raw[key], from_env=False)
    return cls(**values)


def _coerce(section: str, key: str, env_name: str, hint: Any, value: Any, *, from_env: bool) -> Any:
    where = f"setting {section}.{key} ({env_name})"
    try:
        if hint is bool:
            if from_env:
                lowered = str(value).strip().lower()
                if lowered not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
                    raise ValueError
                return lowered in {"1", "true", "yes", "on"}
            if not isinstance(value, bool):
                raise ValueError
            return value
        if hint is int:
            if isinstance(value, bool):
                raise ValueError
            return int(value)
        if hint is Path:
            return Path(str(value))
        if hint is str:
            if not isinstance(value, str):
                raise ValueError
            return value
        table = _table_type(hint)
        if table is not None:
            return _coerce_tables(where, table, value, from_env=from_env)
        if typing.get_origin(hint) is tuple or isinstance(hint, types.GenericAlias):
            items = value.split(",") if from_env else value
            if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
                raise ValueError
            return tuple(i.strip() for i in items if i.strip())
    except ValueError:
        expected = getattr(hint, "__name__", str(hint))
        raise ConfigError(f"{where}: expected {expected}, got {value!r}") from None
    raise ConfigError(f"{where}: unsupported setting type")


def _table_type(hint: Any) -> type[Any] | None:
    """The dataclass of a ``tuple[SomeDataclass, ...]`` setting (an array of tables)."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) is tuple and args and isinstance(args[0], type):
        table: type[Any] = args[0]
        if is_dataclass(table):
            return table
    return None


def _coerce_tables(where: str, table: type[Any], value: Any, *, from_env: bool) -> Any:
    """An array of tables from TOML, or the same list as JSON from the environment."""
    if from_env:
        try:
            value = json.loads(value)
        except ValueError:
            raise ConfigError(f"{where}: expected a JSON list of objects") from None
    if not isinstance(value, list):
        raise ConfigError(f"{where}: expected a list of tables")
    names = {f.name for f in fields(table)}
    items = []
    for number, item in enumerate(value, start=1):
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: item {number} must be a table")
        unknown = sorted(set(item) - names)
        if unknown:
            raise ConfigError(f"{where}: item {number} has unknown key(s) {', '.join(unknown)}")
        if not all(isinstance(v, str) for v in item.values()):
            raise ConfigError(f"{where}: item {number}: every value must be a string")
        items.append(table(**item))
    return tuple(items)


def _validate(settings: Settings) -> None:
    if settings.node.log_level.lower() not in {"debug", "info", "warning", "error"}:
        raise ConfigError(
            "setting node.log_level (SEKISHO_NODE_LOG_LEVEL): one of debug, info, warning, error"
        )
    if not 0 < settings.http.port < 65536:
        raise ConfigError(
            f"setting http.port (SEKISHO_HTTP_PORT): must be 1-65535, got {settings.http.port}"
        )
    if not 0 <= settings.http.workers <= 256:
        raise ConfigError(
            "setting http.workers (SEKISHO_HTTP_WORKERS): 0 (one per core, at most 16) to 256"
        )
    if settings.http.max_body_mib < 1:
        raise ConfigError("setting http.max_body_mib (SEKISHO_HTTP_MAX_BODY_MIB): must be >= 1")
    if not 0 <= settings.documents.key_cache_seconds <= 3600:
        raise ConfigError(
            "setting documents.key_cache_seconds (SEKISHO_DOCUMENTS_KEY_CACHE_SECONDS): "
            "must be 0-3600"
        )
    if not 0 <= settings.documents.hashing_helpers <= 16:
        raise ConfigError(
            "setting documents.hashing_helpers (SEKISHO_DOCUMENTS_HASHING_HELPERS): "
            "must be 0-16 (0: each download hashes on its own reading thread)"
        )
    known = {" ".join(level.upper().split()) for level in settings.clearance.levels}
    unknown = [
        level
        for level in settings.documents.two_person_levels
        if " ".join(level.upper().split()) not in known
    ]
    if unknown:
        raise ConfigError(
            "setting documents.two_person_levels (SEKISHO_DOCUMENTS_TWO_PERSON_LEVELS): "
            f"{', '.join(unknown)} is not one of clearance.levels "
            f"({', '.join(settings.clearance.levels)})"
        )
    if not 1 <= settings.documents.two_person_window <= 30 * 86400:
        raise ConfigError(
            "setting documents.two_person_window (SEKISHO_DOCUMENTS_TWO_PERSON_WINDOW): "
            "seconds, 1-2592000"
        )
    if settings.http.body_idle_seconds < 0:
        raise ConfigError(
            "setting http.body_idle_seconds (SEKISHO_HTTP_BODY_IDLE_SECONDS): must be >= 0"
            " (0 turns the slow-body guard off)"
        )
    if settings.http.body_total_seconds < 0:
        raise ConfigError(
            "setting http.body_total_seconds (SEKISHO_HTTP_BODY_TOTAL_SECONDS): must be >= 0"
            " (0: no overall deadline)"
        )
    url = settings.database_url
    if not url.startswith(("sqlite://", "postgres://", "postgresql://")):
        raise ConfigError(
            "setting database.url (SEKISHO_DATABASE_URL): must start with sqlite:// or "
            f"postgres://, got {url.split('://')[0]!r}"
        )
    if not 1 <= settings.ledger.batch_size <= 100_000:
        raise ConfigError("setting ledger.batch_size (SEKISHO_LEDGER_BATCH_SIZE): must be 1-100000")
    if not 0 <= settings.ledger.batch_ms <= 10_000:
        raise ConfigError("setting ledger.batch_ms (SEKISHO_LEDGER_BATCH_MS): must be 0-10000 ms")
    if not 0 <= settings.ledger.audit_seconds <= 86_400:
        raise ConfigError(
            "setting ledger.audit_seconds (SEKISHO_LEDGER_AUDIT_SECONDS): must be 0-86400 "
            "(0 turns the periodic auditor off)"
        )
    if not 0 <= settings.ledger.audit_full_seconds <= 30 * 86_400:
        raise ConfigError(
            "setting ledger.audit_full_seconds (SEKISHO_LEDGER_AUDIT_FULL_SECONDS): "
            "must be 0-2592000 (0 makes every audit a full pass)"
        )
    _validate_witnessing(settings)
    _validate_placements(settings)
    _validate_anchoring(settings.anchoring)
    _validate_signing(settings.signing)
    _validate_blobs(settings.blobs)
    _validate_portal(settings.portal)
    levels = settings.clearance.levels
    if len(levels) < 1 or len({lvl.upper() for lvl in levels}) != len(levels):
        raise ConfigError(
            "setting clearance.levels (SEKISHO_CLEARANCE_LEVELS): must be a non-empty list "
            "of distinct level names, lowest first"
        )
    unknown = [lvl for lvl in settings.auth.security_key_levels if lvl not in levels]
    if unknown:
        raise ConfigError(
            "setting auth.security_key_levels (SEKISHO_AUTH_SECURITY_KEY_LEVELS): "
            f"{', '.join(unknown)} is not a level of clearance.levels"
        )
    try:
        NationCodes({c.name: c.members for c in settings.clearance.coalitions})
    except NationError as exc:
        raise ConfigError(
            f"setting clearance.coalitions (SEKISHO_CLEARANCE_COALITIONS): {exc.message}"
        ) from None
    if not settings.node.name or any(c in settings.node.name for c in " /\n"):
        raise ConfigError(
            "setting node.name (SEKISHO_NODE_NAME): must be a word without spaces or /"
        )


_PLACEMENT_PATH = {"token", "serial", "object"}
_PLACEMENT_QUERY = {"module-path", "pin-source"}
_NAMED_KEY = re.compile(r"[a-z][a-z0-9-]{0,31}")


def placement_labels(settings: Settings) -> dict[str, str]:
    """The key label each ``[hsm.keys]`` entry places (its versions follow it)."""
    keys = settings.keys
    return {
        "ledger": keys.ledger,
        "kek": keys.kek,
        "ca": keys.ca,
        "signing": keys.signing,
        "tsa": keys.tsa,
        "witness": settings.witness.key,
    }


def check_placement_uri(where: str, uri: str, label: str | None) -> None:
    """One line naming the setting when a key's URI is unusable (checked at load time)."""
    from hsm import HsmConfigError, parse_pkcs11_uri

    try:
        parsed = parse_pkcs11_uri(uri)
    except HsmConfigError as exc:
        raise ConfigError(f"{where}: {exc.message}") from None
    extra = sorted((set(parsed.path) - _PLACEMENT_PATH) | (set(parsed.query) - _PLACEMENT_QUERY))
    if extra:
        raise ConfigError(
            f"{where}: pkcs11 URI attribute {extra[0]!r} is not supported for a key's token "
            "(use token or serial, object, module-path and pin-source)"
        )
    if parsed.token is None and parsed.serial is None:
        raise ConfigError(f"{where}: the pkcs11 URI must name the token (token=LABEL or serial=)")
    if parsed.object is not None and parsed.object != label:
        expected = f"the key label {label!r}" if label else "no object (labels are per version)"
        raise ConfigError(f"{where}: the URI names object {parsed.object!r}, expected {expected}")
    pin_source = parsed.pin_source or ""
    if pin_source.startswith("env:") and not re.fullmatch(
        r"[A-Za-z_][A-Za-z0-9_]*", pin_source[4:]
    ):
        raise ConfigError(f"{where}: pin-source env:NAME needs a variable name")


def _validate_placements(settings: Settings) -> None:
    for role, label in placement_labels(settings).items():
        uri = getattr(settings.hsm.keys, role)
        if uri:
            check_placement_uri(
                f"setting hsm.keys.{role} (SEKISHO_HSM_KEYS_{role.upper()})", uri, label
            )
    where = "setting hsm.named_keys (SEKISHO_HSM_NAMED_KEYS)"
    names: set[str] = set()
    for number, named in enumerate(settings.hsm.named_keys, start=1):
        if not _NAMED_KEY.fullmatch(named.name) or named.name in names:
            raise ConfigError(f"{where}: item {number} needs a key name (a-z, 0-9, -) listed once")
        names.add(named.name)
        if not named.uri:
            raise ConfigError(f"{where}: key {named.name!r} needs a uri")
        check_placement_uri(f"{where}: key {named.name!r}", named.uri, None)


def _validate_blobs(blobs: BlobSettings) -> None:
    if blobs.backend not in {"filesystem", "s3"}:
        raise ConfigError(
            "setting blobs.backend (SEKISHO_BLOBS_BACKEND): filesystem or s3, "
            f"got {blobs.backend!r}"
        )
    if not 5 <= blobs.s3_part_mib <= 5 * 1024:
        raise ConfigError("setting blobs.s3_part_mib (SEKISHO_BLOBS_S3_PART_MIB): must be 5-5120")
    if not 1 <= blobs.s3_connections <= 1024:
        raise ConfigError(
            "setting blobs.s3_connections (SEKISHO_BLOBS_S3_CONNECTIONS): must be 1-1024"
        )
    if not 1 <= blobs.sweep_minutes <= 7 * 24 * 60:
        raise ConfigError(
            "setting blobs.sweep_minutes (SEKISHO_BLOBS_SWEEP_MINUTES): must be 1-10080"
        )
    if blobs.backend == "s3" and not blobs.s3_bucket:
        raise ConfigError("setting blobs.s3_bucket (SEKISHO_BLOBS_S3_BUCKET): must name a bucket")
    if blobs.s3_endpoint and not blobs.s3_endpoint.startswith(("http://", "https://")):
        raise ConfigError(
            "setting blobs.s3_endpoint (SEKISHO_BLOBS_S3_ENDPOINT): an http:// or https:// URL"
        )


_ANCHOR_LIMITS = {
    "interval_seconds": (0, 30 * 86_400),
    "alert_after_seconds": (1, 365 * 86_400),
    "retry_seconds": (1, 86_400),
    "retry_max_seconds": (1, 7 * 86_400),
    "timeout_ms": (100, 300_000),
}


def _validate_anchoring(anchoring: AnchoringSettings) -> None:
    for name, (low, high) in _ANCHOR_LIMITS.items():
        if not low <= getattr(anchoring, name) <= high:
            raise ConfigError(
                f"setting anchoring.{name} (SEKISHO_ANCHORING_{name.upper()}): must be {low}-{high}"
            )
    where = "setting anchoring.tsas (SEKISHO_ANCHORING_TSAS)"
    names: set[str] = set()
    for number, tsa in enumerate(anchoring.tsas, start=1):
        if not tsa.name or not tsa.name.isascii() or not tsa.name.isprintable():
            raise ConfigError(f"{where}: TSA {number} needs a name (printable ASCII)")
        if len(tsa.name) > 64 or tsa.name in names:
            raise ConfigError(f"{where}: TSA name {tsa.name!r} is too long or listed twice")
        names.add(tsa.name)
        if not tsa.url.startswith(("http://", "https://")):
            raise ConfigError(f"{where}: TSA {tsa.name!r} needs a url starting http(s)://")
        if not tsa.certs:
            raise ConfigError(f"{where}: TSA {tsa.name!r} needs certs (a PEM file of its CA)")
        if tsa.hash not in {"sha256", "sha384", "sha512"}:
            raise ConfigError(f"{where}: TSA {tsa.name!r}: hash is sha256, sha384 or sha512")
        if tsa.policy and not _OID.fullmatch(tsa.policy):
            raise ConfigError(f"{where}: TSA {tsa.name!r}: policy must be a dotted OID")


def _validate_signing(signing: SigningSettings) -> None:
    if not _OID.fullmatch(signing.tsa_policy) or len(signing.tsa_policy) > 200:
        raise ConfigError(
            "setting signing.tsa_policy (SEKISHO_SIGNING_TSA_POLICY): must be a dotted OID "
            f"such as 1.3.6.1.4.1.<your PEN>.1, got {signing.tsa_policy!r}"
        )
    if not signing.tsa_key:
        raise ConfigError("setting signing.tsa_key (SEKISHO_SIGNING_TSA_KEY): must name a key")
    if not 1 <= signing.max_batch <= 10_000:
        raise ConfigError("setting signing.max_batch (SEKISHO_SIGNING_MAX_BATCH): must be 1-10000")
    if not 0 <= signing.custody_check_seconds <= 86_400:
        raise ConfigError(
            "setting signing.custody_check_seconds (SEKISHO_SIGNING_CUSTODY_CHECK_SECONDS): "
            "must be 0-86400"
        )


def _validate_portal(portal: PortalSettings) -> None:
    limits = {
        "session_idle_minutes": (1, 24 * 60),
        "session_absolute_hours": (1, 24 * 7),
        "max_failures": (1, 1000),
        "max_address_failures": (1, 100_000),
        "failure_window_minutes": (1, 24 * 60),
        "lockout_minutes": (1, 7 * 24 * 60),
    }
    for name, (low, high) in limits.items():
        if not low <= getattr(portal, name) <= high:
            raise ConfigError(
                f"setting portal.{name} (SEKISHO_PORTAL_{name.upper()}): must be {low}-{high}"
            )


def _validate_witnessing(settings: Settings) -> None:
    # Imported here: config is imported by nearly everything, the note module only here.
    from gateway.tlog.note import (
        SIG_ED25519_COSIGNATURE,
        NoteError,
        is_valid_key_name,
        parse_verifier_key,
    )

    ledger = settings.ledger
    where = "setting ledger.witnesses (SEKISHO_LEDGER_WITNESSES)"
    keys: set[str] = set()
    labels: set[str] = set()
    for number, endpoint in enumerate(ledger.witnesses, start=1):
        if not endpoint.url.startswith(("http://", "https://")):
            raise ConfigError(f"{where}: witness {number} needs a url starting http(s)://")
        try:
            key_name, _, _ = parse_verifier_key(endpoint.vkey, sig_type=SIG_ED25519_COSIGNATURE)
        except NoteError as exc:
            raise ConfigError(f"{where}: witness {number} has a bad vkey: {exc.message}") from None
        label = endpoint.name or key_name
        if key_name in keys or label in labels:
            raise ConfigError(f"{where}: witness {label!r} is listed twice")
        keys.add(key_name)
        labels.add(label)
    if not 0 <= ledger.quorum <= len(ledger.witnesses):
        raise ConfigError(
            f"setting ledger.quorum (SEKISHO_LEDGER_QUORUM): must be 0-{len(ledger.witnesses)} "
            "(at most the number of witnesses; 0 means a majority)"
        )
    if not 100 <= ledger.witness_timeout_ms <= 60_000:
        raise ConfigError(
            "setting ledger.witness_timeout_ms (SEKISHO_LEDGER_WITNESS_TIMEOUT_MS): "
            "must be 100-60000"
        )
    witness = settings.witness
    if not witness.key:
        raise ConfigError("setting witness.key (SEKISHO_WITNESS_KEY): must name a token key")
    if not 1 <= witness.mirror_seconds <= 3600:
        raise ConfigError(
            "setting witness.mirror_seconds (SEKISHO_WITNESS_MIRROR_SECONDS): must be 1-3600"
        )
    if not is_valid_key_name(settings.witness_name):
        raise ConfigError(
            "setting witness.name (SEKISHO_WITNESS_NAME): must be a key name without spaces, "
            "'+' or control characters"
        )
