"""The Vertex token cache is keyed by the credential itself, not by who the file claims to be.

Every ``gcloud auth application-default login`` file carries gcloud's own OAuth ``client_id``, so two
users' files differ only in their refresh token; a service account's rotated key keeps its
``client_email``. A cache keyed by those shared names hands one user's access token to another, and
lets a file whose key no longer works keep running on a token minted from the old key.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tarash.tarash_gateway.exceptions import ValidationError
from tarash.tarash_gateway.models import VideoGenerationConfig, VideoGenerationRequest
from tarash_google import _auth, _flows
from tarash_google.testing import FakeGoogle

from .conftest import context, drive

#: Stands in for the one OAuth client that every gcloud application-default login file names.
GCLOUD_CLIENT_ID = "000000000000-gcloud-adc.apps.googleusercontent.com"


def _config(fake: FakeGoogle, path: Path) -> VideoGenerationConfig:
    return VideoGenerationConfig(
        provider="google-vertex",
        model="veo-3.0-generate-001",
        base_url=fake.url,
        provider_config={"credentials_file": str(path), "project": "p1", "location": "global"},
    )


def _user_file(fake: FakeGoogle, path: Path, refresh_token: str) -> Path:
    path.write_text(
        json.dumps(
            {
                "type": "authorized_user",
                "client_id": GCLOUD_CLIENT_ID,
                "client_secret": "fake-gcloud-client-secret",
                "refresh_token": refresh_token,
                "token_uri": fake.token_uri,
            }
        )
    )
    return path


def _submit(fake: FakeGoogle, path: Path) -> str:
    """Submit one Veo job with this credentials file; return the Authorization header it carried."""
    drive(
        _flows.submit(
            "vertex", _config(fake, path), VideoGenerationRequest(prompt="a"), context("google-vertex")
        ),
        fake.url,
    )
    return str([r for r in fake.requests if r["kind"] == "submit"][-1]["headers"]["Authorization"])


def test_two_users_of_the_gcloud_client_each_get_their_own_token(fake: FakeGoogle, tmp_path: Path) -> None:
    """Same client_id, different refresh tokens: different people, so neither may send the other's token."""
    alice = _user_file(fake, tmp_path / "alice.json", "1//alice-refresh-token")
    bob = _user_file(fake, tmp_path / "bob.json", "1//bob-refresh-token")

    alice_header = _submit(fake, alice)
    (alice_token,) = fake.tokens
    headers = [alice_header, _submit(fake, bob), _submit(fake, alice), _submit(fake, bob)]

    assert [body["refresh_token"] for body in fake.bodies("token")] == [
        "1//alice-refresh-token",
        "1//bob-refresh-token",
    ]
    assert fake.counts["token"] == 2 and fake.counts["submit"] == 4
    (bob_token,) = fake.tokens - {alice_token}
    assert headers == [f"Bearer {alice_token}", f"Bearer {bob_token}"] * 2
    assert not any("refresh-token" in repr(key) for key in _auth._tokens)


def test_a_service_account_file_with_a_replaced_key_is_exchanged_again(
    fake: FakeGoogle, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A key the token endpoint no longer accepts must fail now, not when the old key's token expires;
    the refusal names the file but never the key."""
    path = Path(fake.service_account_file(tmp_path))
    _submit(fake, path)
    info = json.loads(path.read_text())
    replacement = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    info["private_key_id"] = "fake-key-2"
    info["private_key"] = replacement.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    path.write_text(json.dumps(info))

    caplog.set_level(logging.DEBUG)
    with pytest.raises(ValidationError, match=r"was refused by .*/token \(HTTP 400: invalid_grant") as raised:
        _submit(fake, path)

    assert fake.counts["token"] == 2 and fake.counts["submit"] == 1
    key_chunk = "".join(info["private_key"].splitlines()[1:-1])[400:464]
    for text in (str(raised.value), repr(raised.value), caplog.text, *map(repr, _auth._tokens)):
        assert key_chunk not in text


def test_a_service_account_key_id_change_gets_a_fresh_token(fake: FakeGoogle, tmp_path: Path) -> None:
    """A rotated file is a new credential: its first call exchanges its own key for a new token."""
    path = Path(fake.service_account_file(tmp_path))
    first = _submit(fake, path)
    info = json.loads(path.read_text())
    path.write_text(json.dumps({**info, "private_key_id": "fake-key-2"}))
    (first_token,) = fake.tokens

    second = _submit(fake, path)

    assert fake.counts["token"] == 2 and fake.counts["submit"] == 2
    (second_token,) = fake.tokens - {first_token}
    assert first == f"Bearer {first_token}"
    assert second == f"Bearer {second_token}"
