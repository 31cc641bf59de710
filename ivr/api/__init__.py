"""The JSON API at /api/v1 and its OpenAPI document."""
