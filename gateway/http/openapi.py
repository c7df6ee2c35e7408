"""The OpenAPI document: each API module contributes its paths; served at /api/openapi.json.

A test checks that every route under ``/api/`` is described here and that
nothing here is missing from the router, so the document cannot drift. JSON
request bodies are described by the pydantic models that validate them
(:mod:`gateway.http.models`): a path item names its model with :func:`json_body`
and :func:`build_document` puts each model's generated schema under
``components/schemas``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from gateway import __version__

SCHEMA_REF = "#/components/schemas/{model}"

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string"},
        "message": {"type": "string"},
        "parameter": {"type": "string", "description": "the path or query parameter at fault"},
    },
}


def error_responses(*statuses: int) -> dict[str, Any]:
    """Standard JSON error responses for the given status codes."""
    return {
        str(status): {
            "description": "error",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for status in statuses
    }


Mode = Literal["validation", "serialization"]


class ModelBody(dict[str, Any]):
    """A JSON request body or response whose schema is generated from ``models``."""

    def __init__(
        self,
        models: tuple[type[BaseModel], ...],
        mode: Mode,
        other_content: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> None:
        refs = [{"$ref": SCHEMA_REF.format(model=model.__name__)} for model in models]
        schema = refs[0] if len(refs) == 1 else {"oneOf": refs}
        content = {**(other_content or {}), "application/json": {"schema": schema}}
        super().__init__(**fields, content=content)
        self.models = models
        self.mode = mode


def json_body(
    *models: type[BaseModel], other_content: Mapping[str, Any] | None = None
) -> ModelBody:
    """A required JSON request body validated by ``models`` (one of them, if several);
    ``other_content``: the media types the operation also takes instead of JSON."""
    return ModelBody(models, "validation", other_content, required=True)


def json_answer(
    *models: type[BaseModel],
    description: str = "ok",
    other_content: Mapping[str, Any] | None = None,
) -> ModelBody:
    """A JSON response built with ``models`` (one of them, if several); ``other_content``:
    the media types the operation may answer with instead of JSON."""
    return ModelBody(models, "serialization", other_content, description=description)


def model_schema(model: type[BaseModel], mode: Mode = "validation") -> dict[str, Any]:
    """The schema ``model`` generates, as ``components/schemas`` holds it."""
    schema = model.model_json_schema(ref_template=SCHEMA_REF, mode=mode)
    schema.pop("$defs", None)
    return schema


def component_schemas(models: Iterable[tuple[type[BaseModel], Mode]]) -> dict[str, Any]:
    """Each model's generated schema, and those of models they nest, by class name."""
    models = list(models)
    unique = {model.__name__: (model, mode) for model, mode in models}
    if len(unique) < len({model for model, _ in models}):
        raise ValueError("two body models share a class name")
    _, generated = models_json_schema(list(unique.values()), ref_template=SCHEMA_REF)
    schemas: dict[str, Any] = generated.get("$defs", {})
    for name, (model, mode) in unique.items():
        schemas[name] = model_schema(model, mode)
    return schemas


def build_document(parts: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Merge path items from every API module into one OpenAPI 3.1 document."""
    paths: dict[str, Any] = {}
    models: list[tuple[type[BaseModel], Mode]] = []

    def plain(part: Any) -> Any:
        if isinstance(part, ModelBody):
            models.extend((model, part.mode) for model in part.models)
            return dict(part)
        return part

    for path, item in parts.items():
        paths.setdefault(path, {}).update(item)
    for item in paths.values():
        for method, operation in item.items():
            operation = {**operation, "requestBody": plain(operation.get("requestBody"))}
            if operation["requestBody"] is None:
                del operation["requestBody"]
            responses = operation.get("responses", {})
            operation["responses"] = {status: plain(r) for status, r in responses.items()}
            item[method] = operation
            _add_common_errors(operation)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Sekisho gateway API",
            "version": __version__,
            "description": "Documents, ledger and signing API of a Sekisho node.",
        },
        "components": {
            "schemas": {"Error": ERROR_SCHEMA, **component_schemas(models)},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": dict(sorted(paths.items())),
    }


def _add_common_errors(operation: dict[str, Any]) -> None:
    """Answers any operation may give: 503 when the database or token is unavailable; with
    a body, 408 for one that stopped arriving or took too long (``http.body_idle_seconds``,
    ``http.body_total_seconds``), 413 over the route's limit, 415 in another media type."""
    responses = operation.setdefault("responses", {})
    common = (503, 408, 413, 415) if "requestBody" in operation else (503,)
    for status, answer in error_responses(*common).items():
        responses.setdefault(status, answer)


OPENAPI_DOCUMENT = web.AppKey("openapi_document", dict)
OPENAPI_PATH = "/api/openapi.json"
EXPLORER_PATH = "/api/docs"
PATHS: dict[str, Any] = {
    EXPLORER_PATH: {
        "get": {
            "summary": "The API explorer: this document in a browser (Swagger UI)",
            "description": "An HTML page for people; it reads this OpenAPI document and can "
            "send requests with a bearer token typed into its Authorize dialog.",
            "security": [],
            "responses": {
                "200": {
                    "description": "the explorer page",
                    "content": {"text/html": {"schema": {"type": "string"}}},
                }
            },
        }
    },
    OPENAPI_PATH: {
        "get": {
            "summary": "This OpenAPI document",
            "security": [],
            "responses": {
                "200": {
                    "description": "the OpenAPI 3.1 description of the API",
                    "content": {
                        "application/json": {
                            "schema": {"type": "object", "required": ["openapi", "info", "paths"]}
                        }
                    },
                }
            },
        }
    },
}


async def serve_openapi(request: web.Request) -> web.Response:
    """GET /api/openapi.json."""
    return web.json_response(request.app[OPENAPI_DOCUMENT])
