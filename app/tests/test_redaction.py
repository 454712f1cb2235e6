"""The redaction processor on its own: every shape of leak it must stop."""

from __future__ import annotations

from velocity_app.logs import REDACTED, Redactor

SECRET = "s3cr3t-canary-value"


def run(event: dict, values=(SECRET,)) -> dict:
    return Redactor(values)(None, "info", dict(event))


def test_value_anywhere_in_a_string_field_is_replaced():
    out = run({"event": f"connecting with {SECRET} now", "other": "fine"})
    assert out == {"event": f"connecting with {REDACTED} now", "other": "fine"}


def test_secret_named_keys_are_hidden_whatever_their_value_or_case():
    out = run({"password": "anything", "Authorization": "Bearer x", "TOKEN": 1, "user": "bob"}, values=())
    assert out == {"password": REDACTED, "Authorization": REDACTED, "TOKEN": REDACTED, "user": "bob"}


def test_longest_value_wins_so_a_url_is_hidden_whole():
    url = f"postgresql://u:{SECRET}@db/x"
    out = run({"event": f"dsn={url}"}, values=(SECRET, url))
    assert out["event"] == f"dsn={REDACTED}"


def test_clean_events_are_untouched():
    event = {"event": "request", "status": 200, "path": "/healthz", "duration_ms": 1.5}
    assert run(event) == event


def test_no_match_across_two_fields():
    half = len(SECRET) // 2
    out = run({"a": SECRET[:half], "b": SECRET[half:]})
    assert out == {"a": SECRET[:half], "b": SECRET[half:]}
