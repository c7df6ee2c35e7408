"""The dependency direction, read from the imports (ast), so the layout stays as designed.

``web -> gateway -> hsm``; ``gateway/tlog`` (pure log formats) imports nothing of
the gateway but itself; ``gateway/http`` is plumbing and imports no feature
package; the portal reaches the token only through gateway services, and the
gateway only through an allowed list of public modules (services, plumbing,
pure helpers; never ORM models, stores, handlers or the token); domain code
never imports aiohttp (only handlers, clients, app composition and plumbing do).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMPOSITION_ROOT = "gateway/app.py"  # the one place that wires the portal in
HTTP_MAY_IMPORT = (
    "gateway.http",
    "gateway.errors",
    "gateway.config",
    "gateway.auth",
    "gateway.db",
    "gateway.tlog",
)

WEB_MAY_IMPORT = frozenset(
    {
        # plumbing and composition
        "gateway.app_keys",
        "gateway.errors",
        "gateway.http.auth",
        "gateway.http.bodies",
        "gateway.http.downloads",
        "gateway.http.errors",
        "gateway.http.headers",
        "gateway.http.multipart",
        "gateway.http.openapi",
        "gateway.http.params",
        "gateway.http.paths",
        "gateway.http.text",
        # the features' public modules: services and their value types
        "gateway.anchoring.report",
        "gateway.accounts",
        "gateway.accounts.rules",
        "gateway.accounts.service",
        "gateway.auth.certificates",
        "gateway.auth.identity",
        "gateway.auth.name_tags",
        "gateway.auth.security_keys",
        "gateway.auth.sessions",
        "gateway.auth.signin",
        "gateway.auth.tokens",
        "gateway.custody.export",
        "gateway.custody.items",
        "gateway.documents.approvals",
        "gateway.documents.catalogue",
        "gateway.documents.changes",
        "gateway.documents.check",
        "gateway.documents.kek",
        "gateway.documents.titles",
        "gateway.documents.writer",
        "gateway.ledger.witnessing",
        "gateway.node_token",
        "gateway.oversight",
        "gateway.oversight.activity",
        "gateway.oversight.alerts",
        "gateway.oversight.log",
        "gateway.oversight.record",
        "gateway.oversight.verification",
        "gateway.oversight.witnesses",
        "gateway.policy.labels",
        "gateway.signing.anchors",
        "gateway.signing.clients",
        "gateway.signing.keymgmt",
        "gateway.signing.named_keys",
        "gateway.trail.export",
        "gateway.trail.own_view",
        "gateway.trail.query",
        "gateway.trail.service",
    }
)
"""The gateway modules the portal may import. A module that defines ORM models, a
store, HTTP handlers or stream cryptography may never be added (checked below)."""
NEVER_PUBLIC = ("models", "store", "stream_aead", "http", "lookup", "principals")


def import_statements(path: Path) -> Iterator[str]:
    """The module each import statement in ``path`` names (not the names it takes)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def defines_orm_model(module: str) -> bool:
    """Whether ``module``'s source defines a class deriving from Tortoise's ``Model``."""
    path = ROOT / (module.replace(".", "/") + ".py")
    if not path.exists():
        path = ROOT / module.replace(".", "/") / "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return any(
        isinstance(node, ast.ClassDef)
        and any(
            isinstance(b, ast.Name | ast.Attribute) and ast.unparse(b).endswith("Model")
            for b in node.bases
        )
        for node in ast.walk(tree)
    )


def modules_imported(path: Path) -> Iterator[str]:
    """Every absolute module an import statement in ``path`` names (also inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def imports_under(package: str) -> Iterator[tuple[str, str]]:
    """(file relative to the repository, module imported) for every file of ``package``."""
    for path in sorted((ROOT / package).rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        for module in modules_imported(path):
            yield relative, module


def within(module: str, *packages: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def offenders(package: str, allowed: tuple[str, ...], watched: tuple[str, ...]) -> list[str]:
    return sorted(
        {
            f"{file}: {module}"
            for file, module in imports_under(package)
            if within(module, *watched) and not within(module, *allowed)
        }
    )


def test_hsm_imports_neither_gateway_nor_web() -> None:
    assert offenders("hsm", (), ("gateway", "web")) == []


def test_gateway_imports_web_only_in_the_composition_root() -> None:
    found = [o for o in offenders("gateway", (), ("web",)) if not o.startswith(COMPOSITION_ROOT)]
    assert found == []


def test_web_reaches_the_token_only_through_gateway() -> None:
    assert offenders("web", (), ("hsm", "pkcs11")) == []


def test_log_formats_import_nothing_of_the_gateway_but_themselves() -> None:
    assert offenders("gateway/tlog", ("gateway.tlog",), ("gateway", "web", "hsm", "aiohttp")) == []


def test_http_plumbing_imports_no_feature_package() -> None:
    watched = ("gateway", "web")
    allowed = (*HTTP_MAY_IMPORT, "gateway.__version__")
    found = [
        o
        for o in offenders("gateway/http", allowed, watched)
        if not o.endswith(": gateway")  # `from gateway import __version__`
    ]
    assert found == []


def speaks_http(file: str) -> bool:
    """Handlers, clients, app composition, plumbing, health and the CLI's servers."""
    if file.startswith(("gateway/http/", "gateway/health/", "gateway/cli/")):
        return True
    name = file.rsplit("/", 1)[-1]
    return name in {"http.py", "app.py", "app_keys.py", "client.py"} or name.endswith(
        ("_http.py", "_client.py")
    )


def test_domain_code_does_not_import_aiohttp() -> None:
    found = [o for o in offenders("gateway", (), ("aiohttp",)) if not speaks_http(o.split(":")[0])]
    assert found == []


def test_the_checker_sees_imports(tmp_path: Path) -> None:
    source = tmp_path / "sample.py"
    source.write_text(
        "import hsm\nfrom web.portal import auth\n\ndef f():\n    from gateway import x\n"
    )
    assert set(modules_imported(source)) == {
        "hsm",
        "web.portal",
        "web.portal.auth",
        "gateway",
        "gateway.x",
    }


def test_the_portal_imports_only_the_gateways_public_modules() -> None:
    found = sorted(
        f"{path.relative_to(ROOT).as_posix()}: {module}"
        for path in (ROOT / "web").rglob("*.py")
        for module in import_statements(path)
        if within(module, "gateway") and module not in WEB_MAY_IMPORT
    )
    assert found == [], "web/ must call the features' services, not their internals"


def test_no_public_module_is_an_orm_store_handler_or_crypto_module() -> None:
    for module in WEB_MAY_IMPORT:
        last = module.rsplit(".", 1)[1]
        assert last not in NEVER_PUBLIC and not last.endswith("_http"), module
        assert not defines_orm_model(module), f"{module} defines ORM models"


def test_one_content_disposition_writer() -> None:
    """Every download names its file through ``gateway.http.headers.attachment``."""
    helper = ROOT / "gateway/http/headers.py"
    found = sorted(
        path.relative_to(ROOT).as_posix()
        for package in ("gateway", "web")
        for path in (ROOT / package).rglob("*.py")
        if path != helper and "attachment; filename" in path.read_text(encoding="utf-8")
    )
    assert found == []
