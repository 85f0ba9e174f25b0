"""The conformance checks, one module per transaction."""
