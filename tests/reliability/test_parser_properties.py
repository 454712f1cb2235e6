"""Property-based tests (hypothesis) for the parsers that take operator input.

Whatever the input, each parser either returns a well-formed value or raises its own
error type with a message naming the field; it never crashes with another exception
and never echoes a secret value.
"""

from __future__ import annotations

import json
import string

from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.velocity.platform.plugins.module_utils.metrics.dora import DoraError, read_events
from ansible_collections.velocity.platform.plugins.module_utils.vault.client import VaultError
from ansible_collections.velocity.platform.plugins.module_utils.vault.kv import SecretRef, parse_refs
from velocity_app.config import ConfigError, load_settings

# "." and ".." are refused as KV path segments (no traversal), so a valid reference never has them.
SEGMENT = st.text(alphabet=string.ascii_letters + string.digits + "-_.", min_size=1, max_size=12).filter(
    lambda s: s not in (".", ".."))
ENV = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True)


@given(env=ENV, parts=st.lists(SEGMENT, min_size=1, max_size=4), key=SEGMENT,
       version=st.one_of(st.none(), st.integers(min_value=1, max_value=10**6)))
def test_a_valid_reference_round_trips(env, parts, key, version):
    ref = SecretRef(env=env, path="/".join(parts), key=key, version=version)
    assert SecretRef.parse(env, str(ref)) == ref


@given(env=st.text(max_size=20), ref=st.one_of(st.text(max_size=40), st.integers(), st.none()))
def test_any_reference_parses_or_fails_naming_the_field(env, ref):
    try:
        parsed = SecretRef.parse(env, ref)
    except VaultError as exc:
        assert str(exc).startswith("secrets")
    else:
        assert "#" not in parsed.path + parsed.key and "@" not in parsed.path + parsed.key
        assert parsed.version is None or parsed.version >= 0


def test_an_empty_mapping_is_refused():
    try:
        parse_refs({})
    except VaultError as exc:
        assert "at least one" in str(exc)
    else:
        raise AssertionError("an empty mapping was accepted")


EVENT_VALUES = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=30),
                         st.sampled_from(["deploy", "rollback", "success", "failure", "2026-01-01T00:00:00Z"]))
EVENTS = st.lists(st.dictionaries(
    st.sampled_from(["type", "stage", "result", "started_at", "finished_at", "commit_time", "rollback", "x"]),
    EVENT_VALUES, max_size=8), max_size=5)


@given(events=EVENTS)
def test_the_dora_reader_accepts_or_names_the_line(events):
    lines = [json.dumps(e) for e in events]
    try:
        parsed = read_events(lines, source="sink")
    except DoraError as exc:
        assert str(exc).startswith("sink line ")
    else:
        assert len(parsed) == len(events)


@given(lines=st.lists(st.text(max_size=40), max_size=4))
def test_the_dora_reader_survives_any_text(lines):
    try:
        read_events(lines, source="sink")
    except DoraError:
        pass


CANARY = "canary-secret-value-0123456789"


@settings(max_examples=200)
@given(env=st.dictionaries(
    st.sampled_from(["SECRET_KEY", "DATABASE_URL", "LOG_LEVEL", "DB_POOL_SIZE", "LOG_REQUESTS", "SECRET_KEY_FALLBACKS",
                     "API_MAX_PAGE_SIZE"]),
    st.one_of(st.text(max_size=30), st.just(CANARY), st.just(f"postgresql://u:{CANARY}@h:5432/db"),
              st.just(f"mysql://u:{CANARY}@h/db")),
    max_size=7))
def test_the_app_config_loads_or_names_the_variable_without_echoing_secrets(env):
    try:
        settings_ = load_settings(env)
    except ConfigError as exc:
        message = str(exc)
        assert CANARY not in message
        assert any(name in message for name in ("SECRET_KEY", "DATABASE_URL", "LOG_LEVEL", "DB_POOL_SIZE",
                                                "LOG_REQUESTS", "SECRET_KEY_FALLBACKS", "API_MAX_PAGE_SIZE"))
    else:
        assert settings_.secret_key and settings_.database_url
        assert CANARY not in repr(settings_)
