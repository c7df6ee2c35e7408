"""OpenAPI path items for /api/v1/admin/users."""

from __future__ import annotations

from typing import Any

from gateway.accounts.bodies import (
    AccountChangesBody,
    AccountList,
    CreatedAccount,
    NewAccountBody,
    SwitchedAccount,
    UpdatedAccount,
)
from gateway.http.openapi import error_responses, json_answer, json_body

_USERNAME = {"name": "username", "in": "path", "required": True, "schema": {"type": "string"}}
_LEDGERED = " Each change is ledgered as a principal.changed entry naming the caller."


PATHS: dict[str, Any] = {
    "/api/v1/admin/users": {
        "get": {
            "summary": "List every account (admin role)",
            "responses": {
                "200": json_answer(AccountList),
                **error_responses(401, 403),
            },
        },
        "post": {
            "summary": "Create an account; the response holds its one-time password, once",
            "description": "Roles default to reader." + _LEDGERED,
            "requestBody": json_body(NewAccountBody),
            "responses": {
                "201": json_answer(CreatedAccount, description="created"),
                **error_responses(400, 401, 403, 409, 503),
            },
        },
    },
    "/api/v1/admin/users/{username}": {
        "patch": {
            "summary": "Change an account's name, level, compartments, nationality or roles",
            "description": "Only the fields given change; nothing changed, nothing ledgered."
            + _LEDGERED,
            "parameters": [_USERNAME],
            "requestBody": json_body(AccountChangesBody),
            "responses": {
                "200": json_answer(UpdatedAccount),
                **error_responses(400, 401, 403, 404, 409, 503),
            },
        },
    },
    "/api/v1/admin/users/{username}/disable": {
        "post": {
            "summary": "Disable an account; its tokens stop working",
            "description": "The last enabled administrator cannot be disabled." + _LEDGERED,
            "parameters": [_USERNAME],
            "responses": {
                "200": json_answer(SwitchedAccount),
                **error_responses(401, 403, 404, 409, 503),
            },
        },
    },
    "/api/v1/admin/users/{username}/unlock": {
        "post": {
            "summary": "End an account's sign-in lock-out now",
            "description": "Clears the lock-out of the account name set by too many failed "
            "passwords (lock-outs of client addresses stay); changed is false, and nothing is "
            "written, when the account was not locked out." + _LEDGERED,
            "parameters": [_USERNAME],
            "responses": {
                "200": json_answer(SwitchedAccount),
                **error_responses(401, 403, 404, 503),
            },
        },
    },
    "/api/v1/admin/users/{username}/enable": {
        "post": {
            "summary": "Enable a disabled account",
            "description": _LEDGERED.strip(),
            "parameters": [_USERNAME],
            "responses": {
                "200": json_answer(SwitchedAccount),
                **error_responses(401, 403, 404, 503),
            },
        },
    },
}
