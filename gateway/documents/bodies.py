"""Documents API JSON bodies: the pydantic models validate them and are their OpenAPI schemas.

Uploads are multipart forms (:mod:`gateway.http.multipart`); only the downgrade
takes JSON. Whether the label is lower and the reason acceptable is the
catalogue's decision (:meth:`gateway.documents.catalogue.DocumentCatalogue.downgrade`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from pydantic import ConfigDict, Field

from gateway.http.models import BodyModel

_BAD_BODY = ("bad_body", 'send JSON {"label": ..., "reason": ...}')


class DowngradeBody(BodyModel):
    """The lower label and the reason for a downgrade (other fields are ignored)."""

    model_config = ConfigDict(extra="ignore")
    MISSING: ClassVar[tuple[str, str] | None] = _BAD_BODY
    FIELD_ERRORS: ClassVar[Mapping[str, tuple[str, str]]] = {
        "label": _BAD_BODY,
        "reason": _BAD_BODY,
    }

    label: str = Field(description="the new, lower label", examples=["CONFIDENTIAL"])
    reason: str = Field(description="why (kept as its SHA-256 in the ledger)")
