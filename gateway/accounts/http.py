"""Admin API for accounts under ``/api/v1/admin/users`` (admin role only)."""

from __future__ import annotations

from typing import TypeVar

from aiohttp import web

from gateway.accounts.bodies import (
    AccountChangesBody,
    AccountList,
    AccountView,
    CreatedAccount,
    NewAccountBody,
    SwitchedAccount,
    UpdatedAccount,
)
from gateway.accounts.rules import AccountError
from gateway.accounts.service import AccountService, Actor
from gateway.app_keys import ACCOUNTS
from gateway.http.auth import client_address, identity
from gateway.http.bodies import read_json
from gateway.http.models import BodyModel, answer, validate_body

BASE = "/api/v1/admin/users"
B = TypeVar("B", bound=BodyModel)
routes = web.RouteTableDef()


def _service(request: web.Request) -> tuple[AccountService, Actor]:
    caller = identity(request)
    caller.require_role("admin")
    return request.app[ACCOUNTS], Actor(caller.actor, client_address(request))


async def _body(request: web.Request, model: type[B]) -> B:
    return validate_body(model, await read_json(request), AccountError)


@routes.get(BASE)
async def list_users(request: web.Request) -> web.Response:
    """Every account."""
    service, _ = _service(request)
    people = await service.list_accounts()
    return web.json_response(answer(AccountList(users=[AccountView.of(p) for p in people])))


@routes.post(BASE)
async def create_user(request: web.Request) -> web.Response:
    """Create an account; the one-time password is in this response only."""
    service, actor = _service(request)
    new = (await _body(request, NewAccountBody)).new_account()
    person, password = await service.create(new, actor)
    return web.json_response(
        answer(CreatedAccount(user=AccountView.of(person), one_time_password=password)),
        status=201,
        headers={"Cache-Control": "no-store"},
    )


@routes.patch(BASE + "/{username}")
async def update_user(request: web.Request) -> web.Response:
    """Change name, level, compartments, nationality or roles."""
    service, actor = _service(request)
    changes = (await _body(request, AccountChangesBody)).changes()
    person, changed = await service.update(request.match_info["username"], changes, actor)
    return web.json_response(answer(UpdatedAccount(user=AccountView.of(person), changed=changed)))


@routes.post(BASE + "/{username}/disable")
async def disable_user(request: web.Request) -> web.Response:
    """Disable an account (its tokens stop working)."""
    service, actor = _service(request)
    person, changed = await service.set_disabled(request.match_info["username"], True, actor)
    return web.json_response(answer(SwitchedAccount(user=AccountView.of(person), changed=changed)))


@routes.post(BASE + "/{username}/enable")
async def enable_user(request: web.Request) -> web.Response:
    """Enable a disabled account."""
    service, actor = _service(request)
    person, changed = await service.set_disabled(request.match_info["username"], False, actor)
    return web.json_response(answer(SwitchedAccount(user=AccountView.of(person), changed=changed)))


@routes.post(BASE + "/{username}/unlock")
async def unlock_user(request: web.Request) -> web.Response:
    """End an account's sign-in lock-out."""
    service, actor = _service(request)
    person, changed = await service.unlock(request.match_info["username"], actor)
    return web.json_response(answer(SwitchedAccount(user=AccountView.of(person), changed=changed)))
