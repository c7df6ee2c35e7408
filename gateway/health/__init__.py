"""Health, readiness and metrics: read several features, owned by none."""
