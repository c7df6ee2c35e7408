"""HTTP plumbing that imports no feature: errors to statuses, authentication, JSON and
multipart bodies, security headers, TLS, OpenAPI assembly and path classes.

Feature handlers live with their feature (``gateway/<feature>/http.py``), health and
metrics in ``gateway/health/``, app keys in ``gateway/app_keys.py``;
tests/test_dependencies.py keeps it so.
"""
