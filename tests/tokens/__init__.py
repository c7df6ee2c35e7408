"""Real PKCS#11 tokens other than SoftHSM, started by the tests and the benchmarks."""


class TokenUnavailable(RuntimeError):
    """The token cannot run on this machine (missing package, not root, daemon owned
    elsewhere): the tests skip (fail in CI), the benchmarks report a skipped row."""
