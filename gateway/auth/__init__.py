"""Who is calling: identities, bearer tokens, scopes."""
