"""perfgate: a CI performance gate for gRPC services."""

__version__ = "0.1.0"
