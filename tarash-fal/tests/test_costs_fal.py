"""What fal generations cost: per second by resolution, per megapixel rounded up, fal's price API
(cached), a failed-but-billed attempt in a fallback chain, and max_cost refused with 0 submits."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tarash.tarash_gateway import Gateway
from tarash.tarash_gateway.costs import Cost, reconcile
from tarash.tarash_gateway.exceptions import CostLimitExceededError, HTTPError
from tarash.tarash_gateway.models import (
    ImageGenerationRequest,
    VideoGenerationConfig,
    VideoGenerationRequest,
)
from tarash_fal.testing import FakeFalServer

SEEDANCE = "bytedance/seedance-2.0/text-to-video"


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    made = Gateway(ledger="off")
    yield made
    made.close()


@pytest.fixture
def server(make_server: object) -> FakeFalServer:
    return make_server(queue_polls=0, processing_polls=1)  # type: ignore[operator,no-any-return]


def test_video_priced_per_second_by_resolution_tier(server: FakeFalServer, gateway: Gateway) -> None:
    """Seedance 2.0 from the bundled table: 0.682/s at 1080p, 0.1346/s at 480p, 0.3034/s unset."""
    config = server.video_config(SEEDANCE)
    costs = [
        gateway.generate_video(
            config, VideoGenerationRequest(prompt="a lighthouse", duration_seconds=5, resolution=tier)
        )
        .execution_metadata.attempts[0]
        .cost  # type: ignore[union-attr]
        for tier in ("1080p", "480p", None)
    ]
    assert costs == [
        Cost(
            amount="3.410",
            unit="second",
            quantity=5,
            unit_price="0.682",
            source="bundled-table",
            variant="1080p",
        ),
        Cost(
            amount="0.6730",
            unit="second",
            quantity=5,
            unit_price="0.1346",
            source="bundled-table",
            variant="480p",
        ),
        Cost(amount="1.5170", unit="second", quantity=5, unit_price="0.3034", source="bundled-table"),
    ]
    assert server.billing_counts == {"pricing": 1, "billing_events": 0}  # its empty answer is cached
    assert server.counts["submit"] == 3


def test_price_api_is_cached_and_keeps_the_table_tiers(server: FakeFalServer, gateway: Gateway) -> None:
    """fal's price API gives the account's price for the default tier (cached for the TTL); the
    table's variant still prices another resolution."""
    server.set_price(SEEDANCE, "0.25", "seconds")
    config = server.video_config(SEEDANCE)
    default = gateway.generate_video(config, VideoGenerationRequest(prompt="a", duration_seconds=4))
    tiered = gateway.generate_video(
        config, VideoGenerationRequest(prompt="a", duration_seconds=4, resolution="4k")
    )
    assert default.execution_metadata.total_cost == Cost(  # type: ignore[union-attr]
        amount="1.00", unit="second", quantity=4, unit_price="0.25", source="provider-price-api"
    )
    assert tiered.execution_metadata.total_cost == Cost(  # type: ignore[union-attr]
        amount="6.2208",
        unit="second",
        quantity=4,
        unit_price="1.5552",
        source="provider-price-api",
        variant="4k",
    )
    assert server.billing_counts["pricing"] == 1


def test_image_priced_per_megapixel_rounded_up(server: FakeFalServer, gateway: Gateway) -> None:
    """FLUX dev: 0.025 per megapixel, each image's megapixels rounded up: 1920x1080 is 2.07 MP -> 3,
    two images -> 6 MP; fal's default landscape_4_3 (1024x768, 0.79 MP) -> 1."""
    config = server.image_config("fal-ai/flux/dev")
    sized = gateway.generate_image(config, ImageGenerationRequest(prompt="a", size="1920x1080", n=2))
    default = gateway.generate_image(config, ImageGenerationRequest(prompt="a"))
    assert sized.execution_metadata.total_cost == Cost(  # type: ignore[union-attr]
        amount="0.150", unit="megapixel", quantity=6, unit_price="0.025", source="bundled-table"
    )
    assert default.execution_metadata.total_cost.amount == Decimal("0.025")  # type: ignore[union-attr]


def test_failed_but_billed_attempt_in_a_fallback_chain(server: FakeFalServer, gateway: Gateway) -> None:
    """The first job ran and completed with an error (fal bills it); the fallback succeeded. Both
    costs are on the attempts and summed; the second is priced at its own tier."""
    gateway.set_price("fal", "fal-ai/veo3.1", unit="second", price="0.20", variants={"1080p": "0.40"})
    fallback = server.video_config(SEEDANCE)
    config = server.video_config("fal-ai/veo3.1", fallback_configs=(fallback,))
    server.inject(
        "status",
        status_code=200,
        body={"status": "COMPLETED", "error": "Internal model error", "error_type": "internal_error"},
    )
    response = gateway.generate_video(
        config, VideoGenerationRequest(prompt="a", duration_seconds=8, resolution="1080p")
    )
    meta = response.execution_metadata
    assert meta is not None
    assert [(a.status, a.error_type) for a in meta.attempts] == [
        ("failed", "GenerationFailedError"),
        ("success", None),
    ]
    assert [a.cost for a in meta.attempts] == [
        Cost(
            amount="3.20",
            unit="second",
            quantity=8,
            unit_price="0.40",
            source="user-override",
            variant="1080p",
        ),
        Cost(
            amount="5.456",
            unit="second",
            quantity=8,
            unit_price="0.682",
            source="bundled-table",
            variant="1080p",
        ),
    ]
    assert meta.total_cost == Cost(
        amount="8.656",
        unit="second",
        quantity=16,
        unit_price="0.682",
        source="bundled-table",
        variant="1080p",
    )
    assert server.counts["submit"] == 2


def test_max_cost_refused_before_submit(server: FakeFalServer, gateway: Gateway) -> None:
    """8 s at 1080p is 5.456: over max_cost=5, refused with 0 submits at the server."""
    config = server.video_config(SEEDANCE, max_cost="5")
    with pytest.raises(CostLimitExceededError) as caught:
        gateway.generate_video(
            config, VideoGenerationRequest(prompt="a", duration_seconds=8, resolution="1080p")
        )
    error = caught.value
    assert error.limit == Decimal(5)
    assert error.estimate == Cost(
        amount="5.456", unit="second", quantity=8, unit_price="0.682", source="bundled-table", variant="1080p"
    )
    assert error.message == (
        "Expected cost 5.456 USD exceeds max_cost=5 (5.456 USD (8 second 1080p x 0.682, bundled-table)): "
        "refused before submit, nothing was sent."
    )
    assert [a.cost for a in error.attempts] == [
        Cost(amount=0, unit="second", quantity=0, unit_price="0.682", source="bundled-table", variant="1080p")
    ]
    assert server.counts == {"submit": 0, "status": 0, "result": 0, "cancel": 0}
    assert server.billing_counts["pricing"] == 1  # the price read, nothing billable


def test_max_cost_falls_back_to_a_cheaper_config(server: FakeFalServer, gateway: Gateway) -> None:
    """Over the limit on the first config, the fallback at 480p fits: only it is submitted."""
    cheap = server.video_config(SEEDANCE)
    config = server.video_config("fal-ai/veo3.1", max_cost="2", fallback_configs=(cheap,))
    gateway.set_price("fal", "fal-ai/veo3.1", unit="second", price="0.40")
    response = gateway.generate_video(
        config, VideoGenerationRequest(prompt="a", duration_seconds=8, resolution="480p")
    )
    meta = response.execution_metadata
    assert meta is not None
    assert [(a.status, a.error_type) for a in meta.attempts] == [
        ("skipped", "CostLimitExceededError"),
        ("success", None),
    ]
    assert meta.total_cost is not None and meta.total_cost.amount == Decimal("1.0768")
    assert server.counts["submit"] == 1


def test_veo31_is_priced_from_the_bundled_tables_sourced_tiers(
    server: FakeFalServer, gateway: Gateway
) -> None:
    """fal's page: $0.40/s with audio at 720p/1080p, $0.60/s at 4k; 8 s when no duration is set."""
    config = server.video_config("fal-ai/veo3.1")
    uhd = gateway.generate_video(config, VideoGenerationRequest(prompt="a", resolution="4k"))
    plain = gateway.generate_video(config, VideoGenerationRequest(prompt="a", duration_seconds=4))
    assert uhd.execution_metadata.total_cost == Cost(  # type: ignore[union-attr]
        amount="4.80", unit="second", quantity=8, unit_price="0.60", source="bundled-table", variant="4k"
    )
    assert plain.execution_metadata.total_cost == Cost(  # type: ignore[union-attr]
        amount="1.60", unit="second", quantity=4, unit_price="0.40", source="bundled-table"
    )


def test_unknown_price_is_none_never_zero(server: FakeFalServer, gateway: Gateway) -> None:
    """Kling v3 has no sourced price in the bundled table (its endpoints' prices differ by tier)
    and the API lists none: the cost is unknown (None), and max_cost refuses a call it cannot
    price."""
    response = gateway.generate_video(
        server.video_config("fal-ai/kling-video/v3"), VideoGenerationRequest(prompt="a")
    )
    assert response.execution_metadata.attempts[0].cost is None  # type: ignore[union-attr]
    with pytest.raises(CostLimitExceededError, match="cannot be estimated"):
        gateway.generate_video(
            server.video_config("fal-ai/kling-video/v3", max_cost="10"), VideoGenerationRequest(prompt="a")
        )
    assert server.counts["submit"] == 1


def test_estimate_sends_no_submit(server: FakeFalServer, gateway: Gateway) -> None:
    config: VideoGenerationConfig = server.video_config(SEEDANCE)
    estimate = gateway.estimate_cost(config, VideoGenerationRequest(prompt="a", duration_seconds=10))
    assert estimate == Cost(
        amount="3.0340", unit="second", quantity=10, unit_price="0.3034", source="bundled-table"
    )
    assert server.counts == {"submit": 0, "status": 0, "result": 0, "cancel": 0}


def test_reconcile_records_what_fal_billed_beside_the_estimate(server: FakeFalServer, tmp_path: Path) -> None:
    """fal's billing events (admin key) for the ledger's job: 5 s at 0.682 with a 10% discount
    is 3.069 billed, recorded beside the 3.410 estimate; the queue key is refused."""
    gateway = Gateway(ledger=tmp_path / "jobs.db")
    try:
        response = gateway.generate_video(
            server.video_config(SEEDANCE),
            VideoGenerationRequest(prompt="a", duration_seconds=5, resolution="1080p"),
        )
        nano = server.bill(
            response.request_id, SEEDANCE, output_units=5, unit_price="0.682", percent_discount=10
        )
        assert nano == 3_069_000_000
        where = {"base_url": server.base_url, "provider_config": {"ca_bundle": server.ca_path}}
        with pytest.raises(HTTPError) as refused:
            reconcile("fal", admin_key=server.api_key, gateway=gateway, **where)  # type: ignore[arg-type]
        assert refused.value.status_code == 401
        [job] = reconcile("fal", admin_key=server.admin_key, gateway=gateway, **where)  # type: ignore[arg-type]
        assert job.job_id == response.request_id
        assert job.estimate == Cost(
            amount="3.410",
            unit="second",
            quantity=5,
            unit_price="0.682",
            source="bundled-table",
            variant="1080p",
        )
        assert job.billed == Cost(
            amount="3.069",
            unit="second",
            quantity=5,
            unit_price="0.6138",
            source="provider-reported",
            kind="billed",
        )
        record = gateway.ledger().store.get(job.key)  # type: ignore[union-attr]
        assert record is not None and record.billed is not None
        assert (record.billed["amount"], record.billed["kind"]) == ("3.069", "billed")
        assert server.billing_counts["billing_events"] == 2
    finally:
        gateway.close()


def test_tarash_costs_reconcile(
    server: FakeFalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tarash.tarash_gateway.cli import main

    monkeypatch.setenv("TARASH_LEDGER", str(tmp_path / "jobs.db"))
    gateway = Gateway(ledger=tmp_path / "jobs.db")
    try:
        response = gateway.generate_video(
            server.video_config(SEEDANCE), VideoGenerationRequest(prompt="a", duration_seconds=4)
        )
    finally:
        gateway.close()
    server.bill(response.request_id, SEEDANCE, output_units=4, unit_price="0.3034")
    where = ["--base-url", server.base_url, "--ca-bundle", server.ca_path]
    assert main(["costs", "reconcile", *where]) == 2
    assert capsys.readouterr().err == (
        "tarash: error: an admin key is needed: pass --admin-key or set FAL_ADMIN_KEY\n"
    )
    monkeypatch.setenv("FAL_ADMIN_KEY", server.admin_key)
    assert main(["costs", "reconcile", *where]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["KEY", "JOB", "ID", "ESTIMATE", "BILLED"]
    assert lines[1].split()[1:] == [response.request_id, "1.2136", "USD", "1.2136", "USD"]
    assert server.admin_key not in "\n".join(lines)
    assert main(["jobs", "list"]) == 0
    assert " 1.2136 USD billed " in capsys.readouterr().out


def test_dry_run_sends_nothing_and_max_cost_refuses_from_the_shell(
    server: FakeFalServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With a key at hand, --dry-run prints the estimate and opens no connection at all;
    --max-cost below it exits 4 (a refused request) with 0 submits."""
    from tarash.tarash_gateway.cli import main

    monkeypatch.setenv("FAL_KEY", server.api_key)
    fal = [
        "--provider",
        "fal",
        "--model",
        SEEDANCE,
        "--base-url",
        server.base_url,
        "--provider-config",
        f"ca_bundle={server.ca_path}",
    ]
    request = ["generate", "video", "a cat", "--duration", "5", "--resolution", "1080p"]
    assert main([*request, *fal, "--dry-run"]) == 0
    assert capsys.readouterr().out == "expected cost: 3.410 USD (5 second 1080p x 0.682, bundled-table)\n"
    assert server.connections == 0
    assert main([*request, *fal, "--max-cost", "3.40"]) == 4
    assert "Expected cost 3.410 USD exceeds max_cost=3.40" in capsys.readouterr().err
    assert server.counts == {"submit": 0, "status": 0, "result": 0, "cancel": 0}
    assert server.billing_counts == {"pricing": 1, "billing_events": 0}


def test_an_impossible_request_sends_nothing_not_even_a_price_read(
    server: FakeFalServer, gateway: Gateway
) -> None:
    """Veo 3 takes 4, 6 or 8 s: 5 s is refused by the plugin's check before the price API is
    asked (it would be: the account has a price for the model); no connection is opened."""
    from tarash.tarash_gateway.exceptions import ValidationError

    server.set_price("fal-ai/veo3", "0.40", "second")
    with pytest.raises(ValidationError, match="duration_seconds"):
        gateway.generate_video(
            server.video_config("fal-ai/veo3"), VideoGenerationRequest(prompt="a", duration_seconds=5)
        )
    assert server.connections == 0
    assert server.billing_counts["pricing"] == 0
    with pytest.raises(ValidationError, match="duration_seconds"):
        gateway.estimate_cost(
            server.video_config("fal-ai/veo3"), VideoGenerationRequest(prompt="a", duration_seconds=5)
        )
    assert server.connections == 0


def test_the_pricing_rules_are_made_again_only_when_a_model_is_saved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rules are kept while the families stay the same (core keeps its per-model match for the
    same tuple); a model saved with ``add-model`` gets its own rule at once."""
    from tarash.tarash_gateway._plugins import HOST
    from tarash.tarash_gateway._pricing import rule_for
    from tarash_fal._commands import add_model
    from tarash_fal._pricing import pricing_rules
    from tarash_fal.testing import openapi_document

    monkeypatch.setenv("TARASH_HOME", str(tmp_path))
    first = pricing_rules()
    assert pricing_rules() is first
    assert rule_for(HOST, "fal", "acme/clip", "video").prefix == ""  # type: ignore[union-attr]
    add_model(
        "acme/clip", openapi_document("acme/clip", {"prompt": {"type": "string"}}, category="text-to-video")
    )
    second = pricing_rules()
    assert second is not first and len(second) == len(first) + 1
    assert rule_for(HOST, "fal", "acme/clip", "video").prefix == "acme/clip"  # type: ignore[union-attr]
    assert rule_for(HOST, "fal", "acme/clip/fast", "video").prefix == "acme/clip"  # type: ignore[union-attr]
    (tmp_path / "fal" / "models.json").unlink()
    assert len(pricing_rules()) == len(first)
    assert rule_for(HOST, "fal", "acme/clip", "video").prefix == ""  # type: ignore[union-attr]


def test_a_broken_model_table_is_logged_once_and_skipped_until_it_is_fixed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Each generation asks for the families; the table is parsed again only when its bytes
    change, so a broken one is reported once, not at every generation."""
    from tarash_fal._commands import add_model
    from tarash_fal._pricing import pricing_rules
    from tarash_fal.testing import openapi_document

    monkeypatch.setenv("TARASH_HOME", str(tmp_path))
    built_in = pricing_rules()
    table = tmp_path / "fal" / "models.json"
    table.parent.mkdir()
    table.write_text('{"version": 1}')
    assert pricing_rules() == built_in
    assert pricing_rules() == built_in
    warnings = [r.getMessage() for r in caplog.records if r.name == "tarash.fal"]
    assert warnings == [
        f"Your fal model table was not loaded: {table} is not a fal model table (no 'models' object)"
    ]
    table.write_text('{"version": 1, "models": {}}')
    add_model(
        "acme/clip", openapi_document("acme/clip", {"prompt": {"type": "string"}}, category="text-to-video")
    )
    rules = pricing_rules()
    assert len(rules) == len(built_in) + 1
    assert {rule.prefix for rule in rules} - {rule.prefix for rule in built_in} == {"acme/clip"}
