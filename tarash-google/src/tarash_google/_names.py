"""Names and roots shared by the entry module and the flows (tarash-core imports only)."""

from __future__ import annotations

#: The Gemini Developer API (API key in ``x-goog-api-key``).
GEMINI = "google"
#: Vertex AI / Gemini Enterprise Agent Platform (OAuth token from a service-account file).
VERTEX = "google-vertex"

GEMINI_BASE_URL = "https://generativelanguage.googleapis.com"
#: The ``global`` location's host; regional locations use ``https://{location}-aiplatform...``.
VERTEX_BASE_URL = "https://aiplatform.googleapis.com"
GEMINI_API_VERSION = "v1beta"
VERTEX_API_VERSION = "v1beta1"

#: Read by core, in this order (``ProviderSpec.api_key_env`` and its fallback), as google-genai reads them.
GEMINI_KEY_ENV = "GEMINI_API_KEY"
GOOGLE_KEY_ENV = "GOOGLE_API_KEY"
CREDENTIALS_ENV = "GOOGLE_APPLICATION_CREDENTIALS"
