"""Who may watch the node's machinery: request counts, process figures, readiness and
witness details (addresses, error texts). One rule for every such answer.

An API client with the ``metrics`` scope (what Prometheus scrapes with), an admin or an
auditor. Anyone else gets only what a load balancer or a log verifier needs.
"""

from __future__ import annotations

from gateway.auth.identity import Identity

METRICS_SCOPE = "metrics"
"""The API-client scope of a metrics scraper."""
WATCHER_ROLES = frozenset({"admin", "auditor"})
"""People who may watch the node."""


def may_watch(identity: Identity | None) -> bool:
    """True when ``identity`` may read the node's request, process and infrastructure details."""
    if identity is None:
        return False
    if identity.is_person:
        return bool(identity.roles & WATCHER_ROLES)
    return identity.kind == "client" and METRICS_SCOPE in identity.scopes
