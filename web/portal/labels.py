"""The label widgets of the portal's forms (level, compartments, REL TO), shared by upload,
new version and downgrade: what they offer and how their values become a label."""

from __future__ import annotations

from typing import Any

from gateway.documents.catalogue import DocumentCatalogue
from gateway.errors import BadRequest
from web.portal.app_keys import Viewer


def levels_up_to(catalogue: DocumentCatalogue, level: str) -> list[str]:
    """The scheme's levels from the lowest up to ``level``."""
    scheme = catalogue.context.pdp.scheme
    return list(scheme.levels[: scheme.rank(level) + 1])


def label_widgets(
    catalogue: DocumentCatalogue, viewer: Viewer, current: str | None = None
) -> dict[str, Any]:
    """What the widgets offer: levels up to the person's clearance, their compartments
    (and the current label's, which they hold since they can read it), their nationality."""
    compartments = set(viewer.identity.compartments)
    if current:
        compartments |= catalogue.parse_label(current).compartments
    return {
        "levels": levels_up_to(catalogue, viewer.identity.level),
        "compartments": sorted(compartments),
        "nationality": viewer.identity.nationality,
    }


def label_form(catalogue: DocumentCatalogue, text: str) -> dict[str, Any]:
    """The widgets' values for an existing label (to start a form from it)."""
    label = catalogue.parse_label(text)
    nations = sorted(label.releasable_to) if label.releasable_to is not None else []
    return {
        "level": label.level,
        "compartments": sorted(label.compartments),
        "rel_to": ", ".join(nations),
    }


def label_text(form: dict[str, Any]) -> str:
    """The label the widgets' values spell (parsed and checked by the catalogue)."""
    if not form["level"]:
        raise BadRequest("Choose a classification level.", code="missing_label")
    parts = [str(form["level"])]
    if form["compartments"]:
        parts.append("/".join(form["compartments"]))
    nations = ", ".join(n.strip().upper() for n in str(form["rel_to"]).split(",") if n.strip())
    if nations:
        parts.append(f"REL TO {nations}")
    return "//".join(parts)
