"""The dependency direction, read from the imports (ast), so the layout stays as designed.

``web -> gateway -> hsm``; ``gateway/tlog`` (pure log formats) imports nothing of
the gateway but itself; ``gateway/http`` is plumbing and imports no feature
package; the portal reaches the token only through gateway services; domain code
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
