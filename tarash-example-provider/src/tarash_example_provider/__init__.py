"""Tarash provider plugin for the Example API (the template for plugins), and its reference server."""

from ._fields import API_KEY_ENV, DEFAULT_BASE_URL, IMAGE_MODEL, PROVIDER, VIDEO_MODEL

__all__ = ["API_KEY_ENV", "DEFAULT_BASE_URL", "IMAGE_MODEL", "PROVIDER", "VIDEO_MODEL"]
