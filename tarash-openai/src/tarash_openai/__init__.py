"""Tarash provider plugin for OpenAI images (the gpt-image-2.x models) and Azure OpenAI.

Install it next to tarash-core and both provider names work::

    from tarash.tarash_gateway import generate_image
    from tarash.tarash_gateway.models import ImageGenerationConfig, ImageGenerationRequest

    config = ImageGenerationConfig(provider="openai", model="gpt-image-2.5-flare")  # OPENAI_API_KEY
    image = generate_image(config, ImageGenerationRequest(prompt="a lighthouse at dawn"))

Azure OpenAI: ``provider="azure-openai"``, ``base_url`` the resource endpoint, ``api_version``,
and ``provider_config={"deployment": ...}`` when the deployment is not named after the model.
Tests: :mod:`tarash_openai.testing` has a fake of the Images API.
"""

from __future__ import annotations

from ._specs import AZURE, AZURE_KEY_ENV, OPENAI, OPENAI_BASE_URL, OPENAI_KEY_ENV

__all__ = ["AZURE", "AZURE_KEY_ENV", "OPENAI", "OPENAI_BASE_URL", "OPENAI_KEY_ENV"]
