"""The ``sekisho`` command line."""
