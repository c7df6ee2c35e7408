"""OpenAPI path items for /api/v1/admin/users."""

from __future__ import annotations

from typing import Any

from gateway.http.openapi import error_responses

_NAMES = {"type": "array", "items": {"type": "string"}}
_USERNAME_PATTERN = {"type": "string", "pattern": "^[a-z0-9][a-z0-9._-]{0,63}$"}
USER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["username", "level", "compartments", "nationality", "roles", "disabled"],
    "properties": {
        "username": _USERNAME_PATTERN,
        "display_name": {"type": "string"},
        "level": {"type": "string", "example": "SECRET"},
        "compartments": _NAMES,
        "nationality": {"type": "string", "description": "ISO 3166-1 alpha-3, or empty"},
        "roles": {
            "type": "array",
            "items": {"enum": ["reader", "uploader", "officer", "auditor", "admin"]},
        },
        "disabled": {"type": "boolean"},
        "must_change_password": {"type": "boolean"},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
    },
}
_EDITABLE = {
    "display_name": {"type": "string", "maxLength": 128},
    "level": {"type": "string", "example": "SECRET"},
    "compartments": _NAMES,
    "nationality": {
        "type": "string",
        "description": "ISO 3166-1 alpha-3, or empty",
        "example": "FRA",
    },
    "roles": {
        "type": "array",
        "items": {"enum": ["reader", "uploader", "officer", "auditor", "admin"]},
    },
}
_USERNAME = {"name": "username", "in": "path", "required": True, "schema": {"type": "string"}}
_CHANGED = {
    "type": "object",
    "required": ["user", "changed"],
    "properties": {"user": USER_SCHEMA, "changed": {"type": "boolean"}},
}
_LEDGERED = " Each change is ledgered as a principal.changed entry naming the caller."


def _json(schema: dict[str, Any], description: str = "ok") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


PATHS: dict[str, Any] = {
    "/api/v1/admin/users": {
        "get": {
            "summary": "List every account (admin role)",
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "required": ["users"],
                        "properties": {"users": {"type": "array", "items": USER_SCHEMA}},
                    }
                ),
                **error_responses(401, 403),
            },
        },
        "post": {
            "summary": "Create an account; the response holds its one-time password, once",
            "description": "Roles default to reader." + _LEDGERED,
            "requestBody": _body(
                {
                    "type": "object",
                    "required": ["username", "level"],
                    "additionalProperties": False,
                    "properties": {"username": _USERNAME_PATTERN, **_EDITABLE},
                }
            ),
            "responses": {
                "201": _json(
                    {
                        "type": "object",
                        "required": ["user", "one_time_password"],
                        "properties": {
                            "user": USER_SCHEMA,
                            "one_time_password": {"type": "string"},
                        },
                    },
                    "created",
                ),
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
            "requestBody": _body(
                {"type": "object", "additionalProperties": False, "properties": _EDITABLE}
            ),
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "required": ["user", "changed"],
                        "properties": {"user": USER_SCHEMA, "changed": _NAMES},
                    }
                ),
                **error_responses(400, 401, 403, 404, 409, 503),
            },
        },
    },
    "/api/v1/admin/users/{username}/disable": {
        "post": {
            "summary": "Disable an account; its tokens stop working",
            "description": "The last enabled administrator cannot be disabled." + _LEDGERED,
            "parameters": [_USERNAME],
            "responses": {"200": _json(_CHANGED), **error_responses(401, 403, 404, 409, 503)},
        },
    },
    "/api/v1/admin/users/{username}/unlock": {
        "post": {
            "summary": "End an account's sign-in lock-out now",
            "description": "Clears the lock-out of the account name set by too many failed "
            "passwords (lock-outs of client addresses stay); changed is false, and nothing is "
            "written, when the account was not locked out." + _LEDGERED,
            "parameters": [_USERNAME],
            "responses": {"200": _json(_CHANGED), **error_responses(401, 403, 404, 503)},
        },
    },
    "/api/v1/admin/users/{username}/enable": {
        "post": {
            "summary": "Enable a disabled account",
            "description": _LEDGERED.strip(),
            "parameters": [_USERNAME],
            "responses": {"200": _json(_CHANGED), **error_responses(401, 403, 404, 503)},
        },
    },
}
