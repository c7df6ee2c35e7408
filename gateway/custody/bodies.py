"""Request bodies of the custody API: the models that validate them also describe them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, ClassVar

from pydantic import Field

from gateway.custody.rules import PARTY
from gateway.http.models import BodyModel
from gateway.signing.requests import AnchorRequest, Base64

_PARTY_ERROR = "must be a party: 'client:NAME' or 'person:NAME'"


class HandoverBody(AnchorRequest):
    """A two-party hand-over: the link anchored once both parties signed, and the parties.

    ``metadata`` must name the new custody ``state``.
    """

    FIELD_ERRORS: ClassVar[Mapping[str, tuple[str, str]]] = {
        **AnchorRequest.FIELD_ERRORS,
        "giver": ("bad_party", f"'giver' {_PARTY_ERROR}"),
        "receiver": ("bad_party", f"'receiver' {_PARTY_ERROR}"),
    }

    giver: Annotated[str, Field(pattern=PARTY, description="the party handing over")]
    receiver: Annotated[str, Field(pattern=PARTY, description="the party receiving")]


class HandoverSignatureBody(BodyModel):
    """One party's signature over the hand-over document's SHA-256."""

    FIELD_ERRORS: ClassVar[Mapping[str, tuple[str, str]]] = {
        "key": ("missing_input", "'key' names the signing key"),
        "version": ("bad_version", "'version' is the key version that signed"),
        "signature": ("missing_signature", "'signature' is a base64 signature"),
    }

    key: Annotated[str, Field(min_length=1, max_length=64, description="the signing key")]
    version: Annotated[int, Field(ge=1, description="the key version that signed")]
    signature: Base64
