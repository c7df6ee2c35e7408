"""People and their clearance: accounts, roles and personal API tokens.

:class:`Account` (defined beside the principals in :mod:`gateway.auth.account`) is
the read-only type in which the services hand a person to their callers.
"""

from gateway.auth.account import Account

__all__ = ["Account"]
