"""Admin API for accounts under ``/api/v1/admin/users`` (admin role only)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.accounts.rules import AccountError
from gateway.accounts.service import (
    AccountChanges,
    AccountService,
    Actor,
    NewAccount,
    account_view,
)
from gateway.app_keys import ACCOUNTS
from gateway.http.auth import client_address, identity
from gateway.http.bodies import read_json_object

BASE = "/api/v1/admin/users"
_CREATE_FIELDS = {"username", "level", "compartments", "nationality", "roles", "display_name"}
_PATCH_FIELDS = _CREATE_FIELDS - {"username"}
routes = web.RouteTableDef()


def _service(request: web.Request) -> tuple[AccountService, Actor]:
    caller = identity(request)
    caller.require_role("admin")
    return request.app[ACCOUNTS], Actor(caller.actor, client_address(request))


async def _body(request: web.Request, allowed: set[str]) -> dict[str, Any]:
    body = await read_json_object(request)
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise AccountError(f"unknown field(s) {', '.join(unknown)}")
    return body


def _strings(body: dict[str, Any], name: str) -> tuple[str, ...] | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise AccountError(f"{name} must be a list of strings")
    return tuple(value)


def _string(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise AccountError(f"{name} must be a string")
    return value


@routes.get(BASE)
async def list_users(request: web.Request) -> web.Response:
    """Every account."""
    service, _ = _service(request)
    return web.json_response({"users": [account_view(p) for p in await service.list_accounts()]})


@routes.post(BASE)
async def create_user(request: web.Request) -> web.Response:
    """Create an account; the one-time password is in this response only."""
    service, actor = _service(request)
    body = await _body(request, _CREATE_FIELDS)
    username, level = _string(body, "username"), _string(body, "level")
    if username is None or level is None:
        raise AccountError("username and level are required")
    new = NewAccount(
        username=username,
        level=level,
        compartments=_strings(body, "compartments") or (),
        nationality=_string(body, "nationality") or "",
        roles=_strings(body, "roles") or NewAccount.roles,
        display_name=_string(body, "display_name") or "",
    )
    person, password = await service.create(new, actor)
    return web.json_response(
        {"user": account_view(person), "one_time_password": password},
        status=201,
        headers={"Cache-Control": "no-store"},
    )


@routes.patch(BASE + "/{username}")
async def update_user(request: web.Request) -> web.Response:
    """Change name, level, compartments, nationality or roles."""
    service, actor = _service(request)
    body = await _body(request, _PATCH_FIELDS)
    changes = AccountChanges(
        display_name=_string(body, "display_name"),
        level=_string(body, "level"),
        compartments=_strings(body, "compartments"),
        nationality=_string(body, "nationality"),
        roles=_strings(body, "roles"),
    )
    person, changed = await service.update(request.match_info["username"], changes, actor)
    return web.json_response({"user": account_view(person), "changed": changed})


@routes.post(BASE + "/{username}/disable")
async def disable_user(request: web.Request) -> web.Response:
    """Disable an account (its tokens stop working)."""
    service, actor = _service(request)
    person, changed = await service.set_disabled(request.match_info["username"], True, actor)
    return web.json_response({"user": account_view(person), "changed": changed})


@routes.post(BASE + "/{username}/enable")
async def enable_user(request: web.Request) -> web.Response:
    """Enable a disabled account."""
    service, actor = _service(request)
    person, changed = await service.set_disabled(request.match_info["username"], False, actor)
    return web.json_response({"user": account_view(person), "changed": changed})


@routes.post(BASE + "/{username}/unlock")
async def unlock_user(request: web.Request) -> web.Response:
    """End an account's sign-in lock-out."""
    service, actor = _service(request)
    person, changed = await service.unlock(request.match_info["username"], actor)
    return web.json_response({"user": account_view(person), "changed": changed})
