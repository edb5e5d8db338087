"""Costs: the Cost record, the mock's configurable price, zero for refused attempts, max_cost,
overrides (API and file), the ledger (schema 2, migrated from 1, on SQLite and PostgreSQL), and a
budget spent across two processes."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest

from tarash.tarash_gateway import Gateway, get_job
from tarash.tarash_gateway._codec import structure
from tarash.tarash_gateway._gateway import default_gateway
from tarash.tarash_gateway._ledger import SQLiteJobStore
from tarash.tarash_gateway._plain import unstructure
from tarash.tarash_gateway.cli import main
from tarash.tarash_gateway.costs import Cost, estimate_cost
from tarash.tarash_gateway.exceptions import (
    BudgetExceededError,
    CostLimitExceededError,
    HTTPError,
    ValidationError,
)
from tarash.tarash_gateway.jobs import submit_video
from tarash.tarash_gateway.models import (
    ExecutionMetadata,
    ImageGenerationConfig,
    ImageGenerationRequest,
    MockConfig,
    MockResponse,
    VideoGenerationConfig,
    VideoGenerationRequest,
)

FAST = {"delay_between_updates": 0}


def mock_video(price: str | None = None, **fields: Any) -> VideoGenerationConfig:
    return VideoGenerationConfig(
        provider="mock", model="mock", mock=MockConfig(price=price, polling=FAST), **fields
    )


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    made = Gateway(ledger=tmp_path / "jobs.db")
    yield made
    made.close()


# -- the record --------------------------------------------------------------------------------


def test_cost_is_exact_and_serialised_as_decimal_strings(gateway: Gateway) -> None:
    response = gateway.generate_video(
        mock_video("0.05"), VideoGenerationRequest(prompt="x", duration_seconds=6)
    )
    meta = response.execution_metadata
    assert meta is not None
    expected = Cost(amount="0.30", unit="second", quantity=6, unit_price="0.05", source="provider-price-api")
    assert meta.attempts[0].cost == expected and meta.total_cost == expected
    assert meta.total_cost.amount == Decimal("0.30") and expected.is_estimate
    data = unstructure(meta)
    assert data["attempts"][0]["cost"] == {
        "amount": "0.30",
        "currency": "USD",
        "unit": "second",
        "quantity": "6",
        "unit_price": "0.05",
        "source": "provider-price-api",
        "kind": "estimate",
        "variant": None,
    }
    assert structure(data, ExecutionMetadata) == meta


def test_a_float_amount_is_refused() -> None:
    with pytest.raises(ValidationError, match="floats are not exact"):
        Cost(amount=0.1, unit="second", quantity=1, unit_price="0.1", source="estimate")  # type: ignore[arg-type]
    data = unstructure(Cost(amount="1", unit="image", quantity=1, unit_price="1", source="estimate"))
    with pytest.raises(ValidationError, match=r"expected Decimal @ \$\.amount"):
        structure({**data, "amount": 1.0}, Cost)


def test_the_mock_price_is_configurable_per_second_and_per_image(gateway: Gateway) -> None:
    image = ImageGenerationConfig(
        provider="mock", model="mock-image", mock=MockConfig(price="0.04", polling=FAST)
    )
    images = gateway.generate_image(image, ImageGenerationRequest(prompt="x", n=3))
    video = gateway.generate_video(mock_video("0.125"), VideoGenerationRequest(prompt="x"))
    assert images.execution_metadata.total_cost == Cost(  # type: ignore[union-attr]
        amount="0.12", unit="image", quantity=3, unit_price="0.04", source="provider-price-api"
    )
    assert video.execution_metadata.total_cost == Cost(  # type: ignore[union-attr]
        amount="0.500", unit="second", quantity=4, unit_price="0.125", source="provider-price-api"
    )
    free = gateway.generate_video(mock_video(), VideoGenerationRequest(prompt="x", duration_seconds=2))
    assert free.execution_metadata.total_cost == Cost(  # type: ignore[union-attr]
        amount=0, unit="second", quantity=2, unit_price=0, source="bundled-table"
    )


def test_an_attempt_refused_before_submit_costs_zero(gateway: Gateway) -> None:
    """A request refused before anything is sent (a blank prompt) was charged nothing."""
    with pytest.raises(ValidationError) as caught:
        gateway.generate_video(mock_video("0.05"), VideoGenerationRequest(prompt="   "))
    [attempt] = caught.value.attempts
    assert attempt.cost == Cost(amount=0, unit="video", quantity=0, unit_price=0, source="estimate")
    assert caught.value.execution_metadata.total_cost.amount == 0  # type: ignore[union-attr]


def test_max_cost_refuses_before_anything_is_recorded(gateway: Gateway) -> None:
    with pytest.raises(CostLimitExceededError) as caught:
        gateway.generate_video(mock_video("1", max_cost="3.99"), VideoGenerationRequest(prompt="x"))
    assert caught.value.limit == Decimal("3.99")
    assert caught.value.estimate.amount == Decimal(4)
    assert caught.value.attempts[0].cost.amount == 0  # type: ignore[union-attr]
    assert gateway.ledger().store.records() == []  # type: ignore[union-attr]


def test_a_fallback_configs_own_max_cost_caps_its_attempt(gateway: Gateway) -> None:
    """A cap on an expensive fallback holds when the fallback runs for a failed primary: the
    stricter of the call's max_cost and the fallback config's own."""
    outage = MockResponse(error=HTTPError("busy", status_code=503))
    failing = attrs.evolve(
        mock_video("0.10"), mock=MockConfig(price="0.10", polling=FAST, responses=[outage])
    )
    config = attrs.evolve(failing, fallback_configs=[mock_video("1", max_cost="0.50")])
    with pytest.raises(CostLimitExceededError) as caught:
        gateway.generate_video(config, VideoGenerationRequest(prompt="x"))
    assert (caught.value.limit, caught.value.estimate.amount) == (Decimal("0.50"), Decimal(4))
    assert [(a.provider, a.status) for a in caught.value.attempts] == [
        ("mock", "failed"),
        ("mock", "skipped"),
    ]
    assert caught.value.attempts[1].cost.amount == 0  # type: ignore[union-attr]


# -- prices ------------------------------------------------------------------------------------


def test_a_user_override_wins_and_the_prices_file_is_read(
    gateway: Gateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = VideoGenerationConfig(provider="mock", model="mock")
    request = VideoGenerationRequest(prompt="x", duration_seconds=5, resolution="1080p")
    monkeypatch.setenv("TARASH_HOME", str(tmp_path))
    (tmp_path / "prices.json").write_text(
        json.dumps(
            {
                "version": 1,
                "prices": [
                    {
                        "provider": "mock",
                        "model": "mock",
                        "unit": "second",
                        "price": "0.10",
                        "variants": {"1080p": "0.30"},
                        "source": "my contract",
                        "as_of": "2026-12-01",
                    }
                ],
            }
        )
    )
    assert gateway.estimate_cost(config, request) == Cost(
        amount="1.50", unit="second", quantity=5, unit_price="0.30", source="user-override", variant="1080p"
    )
    gateway.set_price("mock", "mock", unit="second", price="0.02")
    assert gateway.estimate_cost(config, request) == Cost(
        amount="0.10", unit="second", quantity=5, unit_price="0.02", source="user-override"
    )
    assert estimate_cost(config, request) == Cost(  # the default gateway: the file only
        amount="1.50", unit="second", quantity=5, unit_price="0.30", source="user-override", variant="1080p"
    )


def test_a_broken_prices_file_is_a_clear_error(
    gateway: Gateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TARASH_HOME", str(tmp_path))
    (tmp_path / "prices.json").write_text('{"version": 1, "prices": [{"provider": "mock"}]}')
    with pytest.raises(ValidationError, match=r"prices.json: price entry 0 is invalid"):
        gateway.estimate_cost(mock_video(), VideoGenerationRequest(prompt="x"))


def test_every_model_of_every_plugin_has_a_table_entry_in_its_rules_unit() -> None:
    from tarash.tarash_gateway._plugins import HOST
    from tarash.tarash_gateway._pricing import TABLE_PATH, load_prices, rule_for

    table = load_prices(TABLE_PATH, "bundled-table")
    for provider in HOST.providers():
        for family in HOST.entry_plugin(provider.name)[0].models:
            entry = table.get((provider.name, family.prefix))
            assert entry is not None, (provider.name, family.prefix)
            rule = rule_for(HOST, provider.name, family.prefix, family.modality)
            assert rule is not None and rule.unit == entry.unit, (provider.name, family.prefix)
            assert entry.price is None or entry.as_of, (provider.name, family.prefix)
    raw = json.loads(TABLE_PATH.read_text())["prices"]
    assert all((e["price"] is None and not e.get("variants")) == (e["source"] == "unsourced") for e in raw)


def test_every_sourced_price_names_its_page_and_date_and_comes_from_the_sources_file() -> None:
    from tarash.tarash_gateway._pricing import TABLE_PATH

    raw = json.loads(TABLE_PATH.read_text())["prices"]
    sourced = [e for e in raw if e["source"] != "unsourced"]
    for entry in sourced:
        if entry["provider"] == "mock":  # Tarash's own provider: its price is Tarash's word
            continue
        key = (entry["provider"], entry["model"])
        assert re.fullmatch(r"https://\S+", entry["source"]), key
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", entry["as_of"] or ""), key
        assert entry["note"], key
    sources_file = Path(__file__).resolve().parents[2] / "scripts" / "price_sources.json"
    sources = json.loads(sources_file.read_text())["prices"]
    table = {(e["provider"], e["model"]): e for e in raw}
    for source in sources:  # the bundled table is regenerated from the sources file
        assert {**table[(source["provider"], source["model"])], **source} == table[
            (source["provider"], source["model"])
        ]
    assert len(sourced) == len(sources) == 21


# -- the ledger --------------------------------------------------------------------------------


def test_the_ledger_keeps_each_jobs_cost_and_jobs_list_shows_it(
    gateway: Gateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway.generate_video(mock_video("0.05"), VideoGenerationRequest(prompt="x", duration_seconds=6))
    [record] = gateway.ledger().store.records()  # type: ignore[union-attr]
    assert record.cost == {
        "amount": "0.30",
        "currency": "USD",
        "unit": "second",
        "quantity": "6",
        "unit_price": "0.05",
        "source": "provider-price-api",
        "kind": "estimate",
        "variant": None,
    }
    monkeypatch.setenv("TARASH_LEDGER", str(tmp_path / "jobs.db"))
    assert main(["jobs", "list"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == [
        "KEY",
        "PROVIDER",
        "MODEL",
        "STATE",
        "JOB",
        "ID",
        "COST",
        "CREATED",
        "(UTC)",
    ]
    assert " ~0.30 USD " in out.splitlines()[1]


V1_SCHEMA = """CREATE TABLE jobs (key TEXT PRIMARY KEY, provider TEXT NOT NULL, model TEXT NOT NULL,
    modality TEXT NOT NULL, state TEXT NOT NULL, job_id TEXT, job TEXT, config TEXT, request TEXT,
    result TEXT, error TEXT, detail TEXT, cancel TEXT, created_at REAL NOT NULL,
    updated_at REAL NOT NULL, finished_at REAL, owner TEXT, lease_until REAL);
CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, at REAL NOT NULL,
    kind TEXT NOT NULL, state TEXT, detail TEXT);
INSERT INTO jobs VALUES ('old', 'mock', 'mock', 'video', 'completed', 'j1', NULL, '{}', '{}', NULL,
    NULL, '{}', NULL, 1.0, 1.0, 1.0, NULL, NULL);
PRAGMA user_version=1;"""


def test_a_version_1_sqlite_ledger_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(V1_SCHEMA)
    store = SQLiteJobStore(path, retention_days=None).open()
    try:
        [old] = store.records()
        assert (old.key, old.cost, old.billed) == ("old", None, None)
        store.record_cost("old", cost={"amount": "1.5", "currency": "USD"})
        assert store.costs_since(0) == [{"amount": "1.5", "currency": "USD"}]
        assert store.record_billed("j1", billed={"amount": "1.25", "currency": "USD"})
        assert store.get("old").billed == {"amount": "1.25", "currency": "USD"}  # type: ignore[union-attr]
        store.set_budget("default", {"amount": "10", "currency": "USD", "period": "day"})
        assert store.get_budget("default") == {"amount": "10", "currency": "USD", "period": "day"}
    finally:
        store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (2,)


def test_a_version_1_postgres_ledger_is_migrated(pg_url: str) -> None:
    import psycopg

    from tarash.tarash_gateway._ledger import pg_sql, postgres

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE tarash_schema"
            " (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for statement in pg_sql.MIGRATIONS[0]:
            conn.execute(statement)
        conn.execute("INSERT INTO tarash_schema (version) VALUES (1)")
        conn.execute(
            "INSERT INTO tarash_jobs (key, provider, model, modality, state, job_id, created_at, updated_at)"
            " VALUES ('old', 'mock', 'mock', 'video', 'submitted', 'j1', now(), now())"
        )
    store = postgres.PostgresJobStore(pg_url, retention_days=None).open()
    try:
        assert store.schema_version() == 3 == postgres.SCHEMA_VERSION
        [old] = store.records()
        assert (old.key, old.cost, old.billed) == ("old", None, None)
        store.record_cost("old", cost={"amount": "1.5", "currency": "USD"})
        assert store.costs_since(0) == [{"amount": "1.5", "currency": "USD"}]
        assert store.record_billed("j1", billed={"amount": "1.25", "currency": "USD"})
        assert store.get("j1").billed == {"amount": "1.25", "currency": "USD"}  # type: ignore[union-attr]
        assert [e.kind for e in store.events("old")] == ["billed"]
        store.set_budget("default", {"amount": "10", "currency": "USD", "period": "day"})
        store.set_budget("default", {"amount": "12", "currency": "USD", "period": "week"})
        assert store.get_budget("default") == {"amount": "12", "currency": "USD", "period": "week"}
        store.set_budget("default", None)
        assert store.get_budget("default") is None
    finally:
        store.close()


# -- budgets -----------------------------------------------------------------------------------

BUDGET_CHILD = """
import sys
from tarash.tarash_gateway import BudgetExceededError, Gateway
from tarash.tarash_gateway.models import MockConfig, VideoGenerationConfig, VideoGenerationRequest

gateway = Gateway()
config = VideoGenerationConfig(provider="mock", model="mock",
                               mock=MockConfig(price="1.00", polling={"delay_between_updates": 0}))
try:
    response = gateway.generate_video(config, VideoGenerationRequest(prompt="x", duration_seconds=4))
except BudgetExceededError as exc:
    print("refused", exc.estimate.amount, exc.spent, exc.limit, exc.attempts[0].cost.amount)
else:
    print("generated", response.execution_metadata.total_cost.amount)
"""


def test_a_budget_holds_across_two_processes(tmp_path: Path) -> None:
    """Budget 5 USD a day, kept in the ledger of one data dir: the first process spends 4; the
    second, expecting 4 more, is refused before submit (its ledger shows one job)."""
    env = {**__import__("os").environ, "TARASH_HOME": str(tmp_path)}
    env.pop("TARASH_LEDGER", None)
    Gateway(ledger=tmp_path / "jobs.db").set_budget("5", period="day")

    def child() -> str:
        done = subprocess.run(
            [sys.executable, "-c", BUDGET_CHILD], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert child() == "generated 4.00"
    assert child() == "refused 4.00 4.00 5 0"
    gateway = Gateway(ledger=tmp_path / "jobs.db")
    assert gateway.budget() == {"amount": "5", "currency": "USD", "period": "day", "spent": "4.00"}
    assert len(gateway.ledger().store.records()) == 1  # type: ignore[union-attr]


def test_a_budget_needs_the_ledger_and_refuses_what_it_cannot_price(gateway: Gateway) -> None:
    from tarash.tarash_gateway.exceptions import LedgerError

    with pytest.raises(LedgerError, match="kept in the job ledger"):
        Gateway(ledger="off").set_budget("5")
    gateway.set_budget("5", period="week")
    gateway.set_price("mock", "mock", unit="image", price="1")  # the wrong unit: no estimate
    with pytest.raises(BudgetExceededError, match="cannot be estimated"):
        gateway.generate_video(mock_video(), VideoGenerationRequest(prompt="x"))
    gateway.set_budget(None)
    assert gateway.budget() is None


def test_what_the_provider_reports_wins_over_the_estimate() -> None:
    """An amount the provider reports is the cost, as billed; a reported quantity (image tokens)
    is priced at the estimate's unit price; another unit, or nothing, leaves the estimate."""
    from tarash.tarash_gateway._pricing import billed_cost
    from tarash.tarash_gateway.costs import ReportedUsage

    estimate = Cost(amount="0.40", unit="token", quantity=1000, unit_price="0.0004", source="bundled-table")
    assert billed_cost(estimate, ReportedUsage(unit="token", quantity=1056, amount="0.3968")) == Cost(
        amount="0.3968",
        unit="token",
        quantity=1056,
        unit_price="0.000375758",  # 0.3968 / 1056, to a nano-dollar
        source="provider-reported",
        kind="billed",
    )
    assert billed_cost(estimate, ReportedUsage(unit="token", quantity=1056)) == Cost(
        amount="0.4224", unit="token", quantity=1056, unit_price="0.0004", source="provider-reported"
    )
    assert billed_cost(estimate, ReportedUsage(unit="image", quantity=1)) == estimate
    assert billed_cost(estimate, None) == estimate


# -- what the engine keeps between calls ---------------------------------------------------------


class _RulesHost:
    """A plugin host whose one plugin answers ``pricing_rules`` with ``self.rules``."""

    def __init__(self, rules: Any) -> None:
        self.rules = rules

    def call(self, name: str, hook: str, **kwargs: Any) -> Any:
        assert (name, hook, kwargs) == ("p", "pricing_rules", {"provider": "p"})
        return self.rules


class _BrokenRulesHost(_RulesHost):
    """A plugin host whose one plugin's ``pricing_rules`` hook raises."""

    def call(self, name: str, hook: str, **kwargs: Any) -> Any:
        raise RuntimeError("pricing table missing")


class _BrokenRules:
    """Rules that raise when iterated (a broken generator from a plugin)."""

    def __iter__(self) -> Any:
        raise RuntimeError("rules unreadable")


def test_a_broken_pricing_rules_hook_leaves_the_cost_unknown(caplog: pytest.LogCaptureFixture) -> None:
    """A plugin whose pricing hook raises, or returns rules that cannot be read, is logged and
    has no rule (its cost is unknown); nothing is raised to the caller."""
    from tarash.tarash_gateway._pricing import rule_for

    assert rule_for(_BrokenRulesHost(()), "p", "acme/clip", "video") is None  # type: ignore[arg-type]
    assert rule_for(_RulesHost(_BrokenRules()), "p", "acme/clip", "video") is None  # type: ignore[arg-type]
    assert [r.getMessage() for r in caplog.records] == [
        "The pricing_rules hook of p raised; its costs are unknown",
        "The pricing_rules hook of p raised; its costs are unknown",
    ]


def test_a_rule_match_is_kept_for_the_same_tuple_only() -> None:
    """The match for a model is kept while the plugin returns the same rules tuple; new rules (a
    new tuple, or a list changed in place) are matched again."""
    from tarash.tarash_gateway._pricing import rule_for
    from tarash.tarash_gateway.costs import PricingRule

    every = PricingRule(prefix="", modality="video", unit="second")
    family = PricingRule(prefix="acme/clip", modality="video", unit="video")
    host = _RulesHost((every,))
    assert rule_for(host, "p", "acme/clip/fast", "video") is every  # type: ignore[arg-type]
    assert rule_for(host, "p", "acme/clip/fast", "video") is every  # type: ignore[arg-type]
    host.rules = (every, family)
    assert rule_for(host, "p", "acme/clip/fast", "video") is family  # type: ignore[arg-type]
    assert rule_for(host, "p", "acme/clip/fast", "image") is None  # type: ignore[arg-type]
    listed: list[PricingRule] = [every]
    host.rules = listed
    assert rule_for(host, "p", "acme/clip/fast", "video") is every  # type: ignore[arg-type]
    listed.append(family)
    assert rule_for(host, "p", "acme/clip/fast", "video") is family  # type: ignore[arg-type]


def test_per_family_rules_bill_video_per_second_and_are_made_once_per_families() -> None:
    """One rule per family: video per second with its default duration, images each, the
    variant field only where the family takes it; the same families give the same tuple."""
    from tarash.tarash_gateway.costs import PricingRule
    from tarash.tarash_gateway.plugin import ModelFamily

    families = (
        ModelFamily(prefix="acme/clip", modality="video", allowed={"resolution": ("720p", "1080p")}),
        ModelFamily(prefix="acme/draft", modality="video"),
        ModelFamily(prefix="acme/still", modality="image", allowed={"resolution": ("1k",)}),
    )
    rules = PricingRule.per_family(families, variant_field="resolution", default_seconds=8)
    assert rules == (
        PricingRule(
            prefix="acme/clip", modality="video", unit="second", variant_field="resolution", default_seconds=8
        ),
        PricingRule(prefix="acme/draft", modality="video", unit="second", default_seconds=8),
        PricingRule(prefix="acme/still", modality="image", unit="image", variant_field="resolution"),
    )
    assert PricingRule.per_family(families, variant_field="resolution", default_seconds=8) is rules
    assert PricingRule.per_family(families, default_seconds=8) == (
        PricingRule(prefix="acme/clip", modality="video", unit="second", default_seconds=8),
        PricingRule(prefix="acme/draft", modality="video", unit="second", default_seconds=8),
        PricingRule(prefix="acme/still", modality="image", unit="image"),
    )
    assert PricingRule.per_family(list(families), variant_field="resolution", default_seconds=8) is not rules


def test_a_price_set_or_written_applies_to_the_next_generation_exactly(
    gateway: Gateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between generations of the same model: the prices file written, rewritten (same size),
    removed, then set_price; each generation's cost is the price in force, and the ledger keeps
    each job's cost."""
    monkeypatch.setenv("TARASH_HOME", str(tmp_path))
    prices = tmp_path / "prices.json"
    request = VideoGenerationRequest(prompt="x", duration_seconds=5)

    def cost() -> Cost | None:
        meta = gateway.generate_video(mock_video("0.05"), request).execution_metadata
        assert meta is not None
        return meta.total_cost

    def write(price: str) -> None:
        entry = {"provider": "mock", "model": "mock", "unit": "second", "price": price}
        prices.write_text(json.dumps({"version": 1, "prices": [entry]}))

    api = Cost(amount="0.25", unit="second", quantity=5, unit_price="0.05", source="provider-price-api")
    assert cost() == api
    write("0.10")
    assert cost() == Cost(amount="0.50", unit="second", quantity=5, unit_price="0.10", source="user-override")
    write("0.20")
    assert cost() == Cost(amount="1.00", unit="second", quantity=5, unit_price="0.20", source="user-override")
    prices.unlink()
    assert cost() == api
    gateway.set_price("mock", "mock", unit="second", price="0.03")
    assert cost() == Cost(amount="0.15", unit="second", quantity=5, unit_price="0.03", source="user-override")
    records = sorted(gateway.ledger().store.records(), key=lambda r: r.created_at)  # type: ignore[union-attr]
    assert [r.cost["amount"] for r in records] == ["0.25", "0.50", "1.00", "0.25", "0.15"]  # type: ignore[index]


@pytest.mark.parametrize("api", ["sync", "async"])
def test_a_job_cancelled_through_its_handle_while_processing_keeps_its_cost(api: str) -> None:
    """The provider started the job (it may bill it): cancelling it through a handle must not free
    its money from the budget (the handle's attempt never priced it or saw it processing)."""
    gateway = default_gateway()
    gateway.set_budget("1.00", period="day")
    polling = {"delay_between_updates": 0.01, "status_sequence": ["queued", "processing", "processing"]}
    config = VideoGenerationConfig(
        provider="mock", model="mock", mock=MockConfig(price="0.10", polling=polling)
    )
    handle = submit_video(config, VideoGenerationRequest(prompt="a ship", duration_seconds=8))
    assert gateway.budget()["spent"] == "0.80"  # type: ignore[index]
    assert [handle.status().state for _ in range(2)] == ["queued", "processing"]
    assert (handle.cancel() if api == "sync" else asyncio.run(handle.cancel_async())) is True
    record = get_job(handle.key)
    assert record is not None and record.state == "cancelled"
    assert gateway.budget()["spent"] == "0.80"  # type: ignore[index]
