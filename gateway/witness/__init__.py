"""A witness node: C2SP tlog-witness cosigning, split-view evidence, and optional log mirrors."""
