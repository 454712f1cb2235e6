"""config.py reads only the environment, requires the secrets and never invents them."""

from __future__ import annotations

import pytest

from velocity_app import create_app
from velocity_app.config import SETTINGS, ConfigError, load_settings

GOOD = {"SECRET_KEY": "k" * 32, "DATABASE_URL": "postgresql://u:p4ssw0rd-canary@db:5432/velocity"}


@pytest.mark.parametrize("missing", ["SECRET_KEY", "DATABASE_URL"])
def test_missing_required_variable_refuses_to_start_and_names_it(missing):
    env = {k: v for k, v in GOOD.items() if k != missing}
    with pytest.raises(ConfigError, match=missing):
        load_settings(env)
    with pytest.raises(ConfigError, match=missing):
        create_app(env)


def test_both_missing_names_both():
    with pytest.raises(ConfigError) as err:
        load_settings({})
    assert "SECRET_KEY" in str(err.value) and "DATABASE_URL" in str(err.value)


def test_blank_secret_counts_as_missing():
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_settings({**GOOD, "SECRET_KEY": "   "})


def test_short_secret_key_is_rejected_without_echoing_it():
    with pytest.raises(ConfigError, match="too short") as err:
        load_settings({**GOOD, "SECRET_KEY": "shortcanary"})
    assert "shortcanary" not in str(err.value)


def test_secret_key_is_taken_verbatim_never_generated():
    first = load_settings(GOOD)
    second = load_settings(GOOD)
    assert first.secret_key == second.secret_key == GOOD["SECRET_KEY"]


def test_non_postgres_url_is_rejected_without_leaking_the_password():
    with pytest.raises(ConfigError, match="DATABASE_URL") as err:
        load_settings({**GOOD, "DATABASE_URL": "mysql://u:p4ssw0rd-canary@db/x"})
    assert "p4ssw0rd-canary" not in str(err.value)


def test_url_without_database_name_is_rejected():
    with pytest.raises(ConfigError, match="name a database"):
        load_settings({**GOOD, "DATABASE_URL": "postgresql://u:p@db:5432/"})


def test_defaults_for_non_secret_settings_match_the_documented_table():
    s = load_settings(GOOD)
    assert s.log_level == SETTINGS["LOG_LEVEL"][0]
    assert s.db_pool_size == int(SETTINGS["DB_POOL_SIZE"][0])
    assert s.log_requests is True
    assert s.otel_endpoint == ""


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DB_POOL_SIZE", "many", "whole number"),
        ("DB_POOL_SIZE", "0", "between"),
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL"),
        ("LOG_REQUESTS", "maybe", "true or false"),
    ],
)
def test_bad_optional_setting_names_the_variable(name, value, message):
    with pytest.raises(ConfigError, match=message) as err:
        load_settings({**GOOD, name: value})
    assert name in str(err.value)


def test_secrets_are_not_in_the_settings_repr():
    text = repr(load_settings(GOOD))
    assert GOOD["SECRET_KEY"] not in text and "p4ssw0rd-canary" not in text


def test_sqlalchemy_url_names_the_psycopg_driver():
    assert load_settings(GOOD).sqlalchemy_url.startswith("postgresql+psycopg://")


def test_env_example_lists_every_setting():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / ".env.example").read_text()
    for name in ("SECRET_KEY", "DATABASE_URL", *SETTINGS):
        assert f"\n{name}=" in text, f"{name} missing from .env.example"


def test_previous_keys_are_accepted_during_a_rotation_and_kept_out_of_logs():
    old = "o" * 24
    settings = load_settings({**GOOD, "SECRET_KEY_FALLBACKS": f" {old} , "})
    assert settings.secret_key_fallbacks == (old,)
    assert old in settings.secret_values() and old not in repr(settings)
    with pytest.raises(ConfigError, match="SECRET_KEY_FALLBACKS"):
        load_settings({**GOOD, "SECRET_KEY_FALLBACKS": "short"})


def test_a_session_signed_with_the_previous_key_still_verifies():
    from flask import Flask, session
    from flask.sessions import SecureCookieSessionInterface

    old, new = "old-key-" + "a" * 20, "new-key-" + "b" * 20
    before = Flask("before")
    before.config["SECRET_KEY"] = old
    with before.test_request_context():
        session["user"] = "ada"
        cookie = SecureCookieSessionInterface().get_signing_serializer(before).dumps(dict(session))

    after = create_app({**GOOD, "SECRET_KEY": new, "SECRET_KEY_FALLBACKS": old})
    serializer = SecureCookieSessionInterface().get_signing_serializer(after)
    assert serializer.loads(cookie) == {"user": "ada"}
    without = create_app({**GOOD, "SECRET_KEY": new})
    with pytest.raises(Exception, match="Signature"):
        SecureCookieSessionInterface().get_signing_serializer(without).loads(cookie)


def test_a_secret_put_in_the_wrong_variable_is_not_echoed():
    """Found by the property test: a swapped variable must not print the secret in the error."""
    for name in ("DB_POOL_SIZE", "LOG_LEVEL", "LOG_REQUESTS"):
        with pytest.raises(ConfigError, match=name) as err:
            load_settings({**GOOD, name: GOOD["SECRET_KEY"]})
        assert GOOD["SECRET_KEY"] not in str(err.value) and "not shown" in str(err.value)
    with pytest.raises(ConfigError, match="LOG_LEVEL") as err:
        load_settings({**GOOD, "LOG_LEVEL": "loud"})
    assert "'loud'" in str(err.value)  # an ordinary mistake is still shown


# --- VELOCITY_SECRETS_DIR: the mounted Kubernetes Secret, one file per variable ---

def _secret_volume(root, values: dict[str, str]):
    """The layout the kubelet writes: files in a timestamped dir, ..data -> it, and a symlink per key."""
    stamped = root / "..2026_12_03_00_00_00.000000001"
    stamped.mkdir(parents=True)
    for name, value in values.items():
        (stamped / name).write_text(value)
    (root / "..data").symlink_to(stamped.name)
    for name in values:
        (root / name).symlink_to(f"..data/{name}")
    return root


def test_secrets_dir_is_read_into_the_environment(tmp_path):
    from velocity_app.config import load_secrets_dir

    root = _secret_volume(tmp_path / "secrets", {"SECRET_KEY": GOOD["SECRET_KEY"], "DATABASE_URL": GOOD["DATABASE_URL"] + "\n"})
    env = {"VELOCITY_SECRETS_DIR": str(root)}
    assert load_secrets_dir(env) == ("DATABASE_URL", "SECRET_KEY")  # ..data and the stamped dir are skipped
    assert env["DATABASE_URL"] == GOOD["DATABASE_URL"]  # one trailing newline dropped
    assert load_settings(env).secret_key == GOOD["SECRET_KEY"]


def test_no_secrets_dir_changes_nothing():
    from velocity_app.config import load_secrets_dir

    env = dict(GOOD)
    assert load_secrets_dir(env) == () and env == GOOD


def test_secrets_dir_conflicting_with_the_environment_is_refused_without_values(tmp_path):
    from velocity_app.config import load_secrets_dir

    root = _secret_volume(tmp_path / "secrets", {"SECRET_KEY": "file-canary-value-0123456789"})
    env = {"VELOCITY_SECRETS_DIR": str(root), "SECRET_KEY": "env-canary-value-0123456789"}
    with pytest.raises(ConfigError, match="SECRET_KEY is set in the environment and differs") as err:
        load_secrets_dir(env)
    assert "canary" not in str(err.value)
    assert env["SECRET_KEY"] == "env-canary-value-0123456789"
    # The same value from both sources is fine.
    env["SECRET_KEY"] = "file-canary-value-0123456789"
    assert load_secrets_dir(env) == ("SECRET_KEY",)


def test_secrets_dir_missing_or_badly_named_files_name_the_problem(tmp_path):
    from velocity_app.config import load_secrets_dir

    with pytest.raises(ConfigError, match="is not a directory"):
        load_secrets_dir({"VELOCITY_SECRETS_DIR": str(tmp_path / "absent")})
    root = tmp_path / "bad"
    root.mkdir()
    (root / "secret-key").write_text("x" * 20)
    with pytest.raises(ConfigError, match="'secret-key' is not a variable name"):
        load_secrets_dir({"VELOCITY_SECRETS_DIR": str(root)})
