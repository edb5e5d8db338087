"""Webhook signing secrets stay out of reprs, logs and error messages.

A receiver hands each provider's options (replicate's ``{"secret": "whsec_..."}``) to the plugin's
``verify_webhook`` as ``context.options``; a plugin that logs the context, or quotes the secret in
an error, must show it redacted. Each test uses its own secret: registered secrets are process-wide.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import pytest

from tarash.tarash_gateway._redact import get_logger
from tarash.tarash_gateway.exceptions import WebhookVerificationError
from tarash.tarash_gateway.webhooks import WebhookContext, WebhookReceiver

plugin_log = get_logger("tarash.test_webhook_plugin")


def test_the_context_repr_redacts_secret_options_and_keeps_the_rest() -> None:
    """The repr is what a plugin's ``log.debug("%r", context)`` or f-string shows; the secret itself
    stays readable through ``options`` for the signature check."""
    secret = "whsec_ReprOnlyS3cretAAAAbbbbCCCCdddd"
    context = WebhookContext(
        provider="replicate", now=0.0, options={"secret": secret, "jwks_url": "https://keys.test/jwks"}
    )
    assert repr(context) == (
        "WebhookContext(provider='replicate', now=0.0, timeout=10.0, "
        "options={'secret': '***REDACTED***', 'jwks_url': 'https://keys.test/jwks'})"
    )
    assert context.options["secret"] == secret


def test_the_receiver_registers_secret_options_so_errors_and_logs_scrub_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A verifier quoting its secrets (any secret-named option) in a log line and in its error gets
    them scrubbed by value, as API keys are; options that are not secrets are left as they are."""
    secret = "whsec_ReceiverS3cretEEEEffffGGGGhhhh"
    token = "tok-ReceiverSigningT0ken-1234"

    def verify(provider: str, headers: Mapping[str, str], body: bytes, context: WebhookContext) -> Any:
        options = context.options
        plugin_log.warning("checking %s with %s", provider, options["secret"])
        raise WebhookVerificationError(
            f"no signature matches {options['secret']} / {options['signing_token']} "
            f"(keys from {options['jwks_url']})",
            reason="bad_signature",
        )
        yield  # a flow that sends nothing

    receiver = WebhookReceiver(
        options={
            "toy": {"secret": secret, "signing_token": token, "jwks_url": "https://keys.test/jwks"},
        },
        verifier=lambda provider: verify,
    )
    with caplog.at_level(logging.WARNING):
        answer = asyncio.run(receiver.handle("toy", {}, b"{}"))
    assert answer == (
        401,
        {
            "error": "no signature matches ***REDACTED*** / ***REDACTED*** (keys from https://keys.test/jwks)",
            "reason": "bad_signature",
        },
    )
    assert [r.getMessage() for r in caplog.records] == [
        "checking toy with ***REDACTED***",
        "Webhook for toy rejected (bad_signature): no signature matches ***REDACTED*** / ***REDACTED*** "
        "(keys from https://keys.test/jwks)",
    ]
