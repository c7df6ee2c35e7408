"""People and their clearance: accounts, roles and personal API tokens.

:data:`Account` is the type in which the services (accounts, sign-in,
certificates, sessions) hand a person to their callers. The portal reads its
fields and passes it back to those services; it never queries or saves it.
"""

from gateway.auth.principals import Principal as Account

__all__ = ["Account"]
