"""Base64 images (data URIs) written through core's download path, like any provider's URLs."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tarash.tarash_gateway import generate_image
from tarash.tarash_gateway.models import ImageGenerationRequest
from tarash_openai.testing import FakeOpenAIServer, png


def test_base64_images_are_saved_with_their_checksums(fake_openai: FakeOpenAIServer, tmp_path: Path) -> None:
    response = generate_image(fake_openai.config(), ImageGenerationRequest(prompt="a lighthouse", n=2))
    saved = response.download(tmp_path)
    assert [s.path.read_bytes() for s in saved] == [png(0), png(1)]
    assert [s.sha256 for s in saved] == [hashlib.sha256(png(i)).hexdigest() for i in range(2)]
    assert [s.path.suffix for s in saved] == [".png", ".png"]
    assert [s.source for s in saved] == ["data:image/png", "data:image/png"]
    assert len(fake_openai.requests) == 1
