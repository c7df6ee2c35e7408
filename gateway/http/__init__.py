"""HTTP plumbing: app keys, error middleware, health handlers."""
