"""Marshmallow schemas: query parameters in, response rows out, fixture documents in."""
