"""Public anchoring of the log: external RFC 3161 TSAs timestamp the newest checkpoint."""
