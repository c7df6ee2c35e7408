"""JSON bodies as pydantic models: one class validates (or builds) a body and describes it.

A feature declares its bodies as :class:`BodyModel` subclasses; the handler
calls :func:`validate_body`, and the feature's OpenAPI paths name the same class
through :func:`gateway.http.openapi.json_body`, so the document is generated
from the validating code and cannot drift from it.

Validation is strict (no ``"1"`` for ``1``, no ``true`` for ``1``) and unknown
fields are refused. Errors keep the API's stable codes: a validator raises
:func:`body_error` with the code and message the API has always answered, a
model maps pydantic's own errors on a field to a code in
:attr:`BodyModel.FIELD_ERRORS`, and unknown fields are ``unknown_field``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, WithJsonSchema
from pydantic_core import PydanticCustomError

from gateway.errors import BadRequest

M = TypeVar("M", bound="BodyModel")
Timestamp = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
"""A time already written as RFC 3339 text by the feature: answers keep each feature's
precision and ``Z``/``+00:00`` (pydantic would write every datetime its own way)."""
_OWN_CODES: set[str] = set()


class BodyModel(BaseModel):
    """A JSON request body: strict, unknown fields refused, immutable."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, hide_input_in_errors=True)

    FIELD_ERRORS: ClassVar[Mapping[str, tuple[str, str]]] = {}
    """Field name -> (code, message) for pydantic's own errors on that field."""
    WHAT: ClassVar[str] = "the request"
    """How messages name this body ("the request", "a batch item")."""
    MISSING: ClassVar[tuple[str, str] | None] = None
    """(code, message) when a required field is absent; None: as :attr:`FIELD_ERRORS`."""
    UNKNOWN_CODE: ClassVar[str] = "unknown_field"
    """The code for fields the model does not know."""


class ResponseModel(BaseModel):
    """A JSON response body: built by the handler, dumped with :func:`answer`, described
    in OpenAPI by the same class (:func:`gateway.http.openapi.json_answer`)."""

    model_config = ConfigDict(frozen=True)


def answer(model: ResponseModel) -> dict[str, Any]:
    """``model`` as the JSON object to send (fields left unset are omitted)."""
    return model.model_dump(mode="json", exclude_unset=True)


def body_error(code: str, message: str) -> PydanticCustomError:
    """An error for a validator to raise; the API answers it with ``code`` and ``message``."""
    _OWN_CODES.add(code)
    return PydanticCustomError(code, message)


def validate_body(
    model: type[M], body: Any, error: type[BadRequest] = BadRequest, what: str | None = None
) -> M:
    """``body`` (parsed JSON) as ``model``, or ``error`` with the body's stable code."""
    if not isinstance(body, dict):
        raise error(f"{what or 'the request body'} must be a JSON object", code="bad_json")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise translate(model, exc, error, what) from None


def translate(
    model: type[BodyModel], exc: ValidationError, error: type[BadRequest], what: str | None = None
) -> BadRequest:
    """The API error for the first problem pydantic found (unknown fields come first)."""
    problems = exc.errors(include_url=False, include_input=False)
    unknown = sorted(str(p["loc"][0]) for p in problems if p["type"] == "extra_forbidden")
    if unknown:
        message = f"{what or model.WHAT} has unknown field(s): {', '.join(unknown)}"
        return error(message, code=model.UNKNOWN_CODE)
    first = problems[0]
    if first["type"] in _OWN_CODES:
        return error(first["msg"], code=first["type"])
    if first["type"] == "missing" and model.MISSING is not None:
        return error(model.MISSING[1], code=model.MISSING[0])
    field = str(first["loc"][0]) if first["loc"] else ""
    if field in model.FIELD_ERRORS:
        code, message = model.FIELD_ERRORS[field]
        return error(message, code=code)
    where = ".".join(str(part) for part in first["loc"])
    return error(f"{where}: {first['msg']}" if where else first["msg"])
