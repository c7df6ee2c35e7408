"""People and their clearance: accounts, roles and personal API tokens."""
