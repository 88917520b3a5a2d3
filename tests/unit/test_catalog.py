"""The model catalog as data: the shipped files against their schema, lookups, user overrides,
prices, and the pure checks (option rules, lifecycle, inputs) with the date given."""

from __future__ import annotations

import datetime
import json
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

import llm_connectors as lc
from llm_connectors import catalog
from llm_connectors.catalog import checks
from llm_connectors.errors import ConfigurationError, InvalidRequestError, NotFoundError, UnsupportedCapabilityError
from llm_connectors.pricing import price_for
from llm_connectors.types import Message, ModelInfo, OptionRule

CATALOG_DIR = Path(catalog.__file__).parent
SHIPPED = sorted(p for p in CATALOG_DIR.glob("*.json") if p.name != "schema.json")


@pytest.fixture(autouse=True)
def fresh_catalog(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(catalog.MODELS_ENV, raising=False)
    monkeypatch.setattr(catalog, "_registered", [])
    catalog.reload()
    yield
    catalog.reload()


# -- the files -------------------------------------------------------------------------------------

def test_schema_json_is_the_generated_schema() -> None:
    """schema.json is written by `python -m llm_connectors.catalog`; edit the struct, then rerun it."""
    shipped = json.loads((CATALOG_DIR / "schema.json").read_text(encoding="utf-8"))
    assert shipped == json.loads(json.dumps(catalog.schema()))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_each_shipped_file_is_valid_and_sourced(path: Path) -> None:
    parsed = catalog._read(path.read_bytes(), path.name)
    assert parsed.models, "a shipped catalog file lists models"
    ids = [m.id for m in parsed.models]
    assert len(ids) == len(set(ids)), "each model once"
    for model in parsed.models:
        assert model.source.strip(), f"{model.id}: every entry says where its facts come from"
        if model.successor:
            assert model.successor in ids, f"{model.id}: successor {model.successor!r} is not in the catalog"
        if model.default_max_tokens and model.max_output_tokens:
            assert model.default_max_tokens <= model.max_output_tokens, model.id
        for rule in model.rules:
            assert rule.why.strip(), f"{model.id}/{rule.option}: a rule says why"


def test_a_malformed_file_names_the_file_and_the_field() -> None:
    bad = json.dumps({"provider": "x", "as_of": "2026-12-01", "models": [{"id": "m", "source": "s",
                                                                          "context_window": "big"}]})
    with pytest.raises(ConfigurationError, match=r"where\.json.*context_window"):
        catalog._read(bad.encode(), "where.json")
    with pytest.raises(ConfigurationError, match="colour"):
        catalog._read(json.dumps({"provider": "x", "as_of": "2026-12-01",
                                  "models": [{"id": "m", "source": "s", "colour": 1}]}).encode(), "f")


# -- lookups ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("model", "expected"), [
    ("claude-sonnet-5-5", "claude-sonnet-5-5"),
    ("claude-haiku-4-5-20251001", "claude-haiku-4-5"),  # an alias
    ("claude-sonnet-5-5-20261105", "claude-sonnet-5-5"),  # a dated form
    ("mistral-large-latest", "mistral-large"),
    ("mistral-small-2506", "mistral-small"),
    ("gpt-5.4-mini-2026-03-17", "gpt-5.4-mini"),
])
def test_entry_by_id_alias_or_dated_form(model: str, expected: str) -> None:
    provider = "claude" if model.startswith("claude") else "mistral" if model.startswith("mistral") else "openai"
    found = catalog.entry(provider, model)
    assert found is not None and found.id == expected


def test_unknown_models_and_providers_have_no_entry() -> None:
    assert catalog.entry("openai", "my-finetune") is None
    assert catalog.entry("ollama", "llama3.2") is None
    assert catalog.entry("claude", None) is None
    assert catalog.entry("openai", "gpt-5.5-turbo") is None  # not a dated form of gpt-5.5


def test_models_lists_each_entry_once() -> None:
    listed = lc.models("claude")
    assert [m.id for m in listed].count("claude-haiku-4-5") == 1
    assert {"claude-sonnet-5-5", "claude-opus-4-5"} <= {m.id for m in listed}
    assert lc.models("nobody") == []


def test_register_model_adds_and_overrides(caplog: pytest.LogCaptureFixture) -> None:
    info = lc.register_model("openai", "my-finetune", price={"input": 1.0, "output": 2.0},
                             rules=[{"option": "temperature", "rejected": True, "why": "fixed sampling"}],
                             retires_on="2030-01-01", aliases=["ft-1"])
    assert info.price == lc.Price(1.0, 2.0) and info.retires_on == "2030-01-01"
    assert catalog.entry("openai", "ft-1") is info
    lc.register_model("openai", "gpt-5.5", context_window=123)
    assert catalog.entry("openai", "gpt-5.5").context_length == 123  # type: ignore[union-attr]
    catalog.reload()  # registrations survive a reload of the files
    assert catalog.entry("openai", "my-finetune") is not None
    with pytest.raises(ConfigurationError, match="colour"):
        lc.register_model("openai", "x", colour="red")


def test_a_user_file_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user = tmp_path / "models.json"
    user.write_text(json.dumps({"provider": "groq", "as_of": "2026-12-01", "models": [
        {"id": "llama-3.3-70b", "source": "my notes", "context_window": 131072,
         "price": {"input": 0.59, "output": 0.79}}]}), encoding="utf-8")
    monkeypatch.setenv(catalog.MODELS_ENV, str(user))
    catalog.reload()
    assert catalog.entry("groq", "llama-3.3-70b").context_length == 131072  # type: ignore[union-attr]
    assert price_for("groq", "llama-3.3-70b") == lc.Price(0.59, 0.79)
    monkeypatch.setenv(catalog.MODELS_ENV, str(tmp_path / "missing.json"))
    catalog.reload()
    with pytest.raises(ConfigurationError, match="LLM_CONNECTORS_MODELS"):
        catalog.entry("groq", "llama-3.3-70b")


def test_merged_keeps_what_the_provider_said() -> None:
    reported = ModelInfo(id="claude-sonnet-5-5-20261105", name="Claude Sonnet 5.5", created=5,
                         raw={"type": "model"})
    merged = catalog.merged("claude", reported)
    assert (merged.id, merged.name, merged.created, merged.raw) == (
        reported.id, reported.name, 5, {"type": "model"})
    assert merged.default_max_tokens and merged.price is not None and merged.rules
    unknown = ModelInfo(id="claude-next", name="claude-next")
    assert catalog.merged("claude", unknown) is unknown


def test_prices_come_from_the_catalog_and_set_price_wins() -> None:
    sonnet = price_for("claude", "claude-sonnet-5-5-20261105")
    assert sonnet is not None and (sonnet.input, sonnet.output, sonnet.batch_input) == (2.0, 10.0, 1.0)
    assert price_for("openai", "gpt-5.4-mini") == catalog.entry("openai", "gpt-5.4-mini").price  # type: ignore[union-attr]
    lc.set_price("claude", "claude-sonnet-5", input=9.0, output=9.0)
    try:
        assert price_for("claude", "claude-sonnet-5-5") == lc.Price(9.0, 9.0)
    finally:
        from llm_connectors import pricing
        pricing._overrides.pop("claude", None)
    assert price_for("openai", "no-such-model") is None


# -- option rules ----------------------------------------------------------------------------------

GPT6_TEMPERATURE = OptionRule(option="temperature", rejected=True, unless={"reasoning_effort": ("none",)},
                              why="sampling needs reasoning off")
FORCED = OptionRule(option="tool_choice", allowed=("auto", "none"), why="no forced tool use")
RANGE = OptionRule(option="max_tokens", maximum=64000, why="the output limit")


def test_violations_name_the_option_the_value_and_why() -> None:
    assert checks.violations([GPT6_TEMPERATURE], {"temperature": 0.2}) == [
        ("temperature", "does not take 'temperature' (allowed with reasoning_effort='none'): "
                        "sampling needs reasoning off")]
    assert checks.violations([GPT6_TEMPERATURE], {"temperature": 0.2, "reasoning_effort": "none"}) == []
    assert checks.violations([GPT6_TEMPERATURE], {"temperature": None}) == []
    (_, problem), = checks.violations([FORCED], {"tool_choice": {"type": "function", "function": {"name": "f"}}})
    assert "only as 'auto' or 'none', not 'named'" in problem
    assert checks.violations([FORCED], {"tool_choice": "auto"}) == []
    (_, problem), = checks.violations([RANGE], {"max_tokens": 100_000})
    assert "at most 64000, not 100000" in problem
    assert checks.violations([RANGE], {"max_tokens": 64000}) == []


def test_apply_rules_raises_or_drops_with_one_info_line(caplog: pytest.LogCaptureFixture) -> None:
    params = {"temperature": 0.5, "tool_choice": "required", "max_tokens": 10}
    with pytest.raises(InvalidRequestError) as caught:
        checks.apply_rules("openai", "gpt-6-sol", [GPT6_TEMPERATURE, FORCED], params, drop=False)
    message = str(caught.value)
    assert "gpt-6-sol" in message and "'temperature'" in message and "drop_params=True" in message
    assert "also: 'tool_choice'" in message and caught.value.code == "model_rule"
    with caplog.at_level(logging.INFO, logger="llm_connectors"):
        for _ in range(3):
            kept = checks.apply_rules("openai", "gpt-6-luna", [GPT6_TEMPERATURE, FORCED], params, drop=True)
            assert kept == {"max_tokens": 10}
    lines = [r.getMessage() for r in caplog.records if "drop_params" in r.getMessage()]
    assert len(lines) == 2 and all("gpt-6-luna" in line for line in lines)  # once per option, not per call
    assert params["temperature"] == 0.5, "the caller's dict is not changed"


# -- lifecycle -------------------------------------------------------------------------------------

RETIRING = ModelInfo(id="old", name="old", deprecated=True, deprecated_on="2026-06-01", retires_on="2026-12-11",
                     successor="new")


def test_a_retired_model_is_not_found_before_io() -> None:
    with pytest.raises(NotFoundError) as caught:
        checks.check_lifecycle("openai", "old", RETIRING, datetime.date(2026, 12, 11))
    assert caught.value.code == "model_retired" and "'new'" in str(caught.value) and "2026-12-11" in str(caught.value)


def test_a_deprecated_model_warns_once_per_process() -> None:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for _ in range(3):
            checks.check_lifecycle("openai", "old-once", RETIRING, datetime.date(2026, 12, 10))
        checks.check_lifecycle("openai", "old-once", RETIRING, datetime.date(2026, 5, 1))  # before: silent anyway
    assert len(seen) == 1 and issubclass(seen[0].category, lc.ModelDeprecationWarning)
    assert "2026-12-11" in str(seen[0].message) and "'new'" in str(seen[0].message)
    with warnings.catch_warnings(record=True) as before:
        warnings.simplefilter("always")
        checks.check_lifecycle("openai", "old-early", RETIRING, datetime.date(2026, 5, 1))
    assert before == []


def test_the_shipped_retirements_apply_on_their_dates() -> None:
    gpt5 = catalog.entry("openai", "gpt-5")
    assert gpt5 is not None and gpt5.retires_on == "2026-12-11"
    with pytest.raises(NotFoundError):
        checks.check_lifecycle("openai", "gpt-5", gpt5, datetime.date(2026, 12, 11))
    sonnet45 = catalog.entry("claude", "claude-sonnet-4-5-20250929")
    assert sonnet45 is not None
    with pytest.raises(NotFoundError, match="claude-sonnet-4-5-20250929"):
        checks.check_lifecycle("claude", "claude-sonnet-4-5-20250929", sonnet45, datetime.date(2026, 12, 7))


# -- inputs ----------------------------------------------------------------------------------------

def test_documents_and_prefill_where_the_model_takes_none() -> None:
    text_only = ModelInfo(id="t", name="t", input_modalities=("text",), raw={"assistant_prefill": False})
    with pytest.raises(UnsupportedCapabilityError, match="does not take documents"):
        checks.check_inputs("openai", "t", text_only, [Message(role="user", content="x")], has_documents=True)
    with pytest.raises(InvalidRequestError, match="prefill"):
        checks.check_inputs("claude", "t", text_only,
                            [Message(role="user", content="x"), Message(role="assistant", content="{")],
                            has_documents=False)
    checks.check_inputs("claude", "t", text_only, [Message(role="user", content="x")], has_documents=False)


# -- token estimates -------------------------------------------------------------------------------

def test_estimates_follow_the_models_characters_per_token() -> None:
    from llm_connectors.requests import ChatRequest
    from llm_connectors.resilience.policies import Resilience
    from llm_connectors.tokens import estimate_input_tokens

    messages = (Message(role="user", content="x" * 384),)
    assert estimate_input_tokens(messages, {}) == 101  # (384 + 16) / 4 + 1
    assert estimate_input_tokens(messages, {}, chars_per_token=2.0) == 201
    lc.register_model("acme", "dense-1", chars_per_token=2.0)
    policies = Resilience("acme", "https://acme.test", rate_limit={"tokens_per_minute": 10_000})
    dense = ChatRequest("dense-1", messages, {"max_tokens": 10})
    plain = ChatRequest("other", messages, {"max_tokens": 10})
    assert (policies._reservation(dense), policies._reservation(plain)) == (211, 111)


def test_what_the_provider_reports_wins_over_the_catalog() -> None:
    reported = ModelInfo(id="claude-sonnet-5-5", name="Claude Sonnet 5.5", max_output_tokens=64000,
                         deprecated=True, deprecated_on="2027-01-01", retires_on="2027-06-01")
    merged = catalog.merged("claude", reported)
    assert (merged.max_output_tokens, merged.deprecated, merged.deprecated_on, merged.retires_on) == (
        64000, True, "2027-01-01", "2027-06-01")
    assert merged.rules == catalog.entry("claude", "claude-sonnet-5-5").rules  # type: ignore[union-attr]
