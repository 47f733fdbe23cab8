"""HTTP routes: ``api`` (JSON, described by the OpenAPI document) and ``pages`` (HTML)."""
