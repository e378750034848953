"""A loopback GitHub API for tests, validated against GitHub's OpenAPI description."""
