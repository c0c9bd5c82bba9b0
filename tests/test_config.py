"""The configuration model: documented defaults, file and environment precedence."""

from __future__ import annotations

import dataclasses
import re
import tomllib

import pytest

from idp.config import DEFAULT_CONFIG_FILE, ConfigError, Settings, load_settings


def documented_keys() -> dict[str, set[str]]:
    """Commented `# key = value` lines of config/idp.toml, per section."""
    sections: dict[str, set[str]] = {"": set()}
    current = ""
    for line in DEFAULT_CONFIG_FILE.read_text().splitlines():
        if match := re.match(r"^#? ?\[\[?([a-z_]+)\]\]?$", line):
            current = match.group(1)
            sections.setdefault(current, set())
        elif match := re.match(r"^# ([a-z_0-9]+) = ", line):
            sections[current].add(match.group(1))
    return sections


def test_every_setting_is_documented_with_its_default():
    documented = documented_keys()
    defaults = Settings()
    for field in dataclasses.fields(Settings):
        value = getattr(defaults, field.name)
        if field.name == "populations":
            continue
        if dataclasses.is_dataclass(value):
            names = {f.name for f in dataclasses.fields(value)}
            assert names == documented.get(field.name, set()), field.name
        else:
            assert field.name in documented[""], field.name


def test_documented_file_parses_and_loads():
    with DEFAULT_CONFIG_FILE.open("rb") as fh:
        tomllib.load(fh)
    settings = load_settings(environ={})
    assert settings.tokens.authorization_code_ttl == 60
    assert settings.tokens.access_token_ttl == 300


def test_environment_overrides_file_and_sections(tmp_path):
    path = tmp_path / "idp.toml"
    path.write_text('issuer = "https://file.example"\n[tokens]\naccess_token_ttl = 120\n')
    settings = load_settings(environ={"IDP_CONFIG": str(path),
                                      "IDP_ISSUER": "https://env.example",
                                      "IDP_TOKENS__ID_TOKEN_TTL": "90",
                                      "IDP_LOCALES": "fr,en"})
    assert settings.issuer == "https://env.example"
    assert settings.tokens.access_token_ttl == 120
    assert settings.tokens.id_token_ttl == 90
    assert settings.locales == ["fr", "en"]


@pytest.mark.parametrize("overrides", [
    {"unknown_thing": 1},
    {"issuer": "ftp://x"},
    {"issuer": "https://x/"},
    {"passwords": {"min_length": 6}},
    {"tokens": {"access_token_ttl": "soon"}},
    {"verification": {"code_length": 3}},
    {"display_timezone": "Mars/Olympus_Mons"},
])
def test_bad_settings_are_refused_with_a_clear_error(overrides):
    with pytest.raises(ConfigError):
        load_settings(overrides, environ={})


def test_missing_config_file_named_by_env_is_an_error(tmp_path):
    with pytest.raises(ConfigError):
        load_settings(environ={"IDP_CONFIG": str(tmp_path / "nope.toml")})


def test_trusted_proxies_give_the_real_client_address(make_app):
    from flask import request

    for proxies, expected in ((0, "10.0.0.1"), (1, "203.0.113.7")):
        app = make_app(trusted_proxies=proxies)

        @app.get("/_whoami")
        def whoami():
            return request.remote_addr

        client = app.test_client()
        response = client.get("/_whoami", headers={"X-Forwarded-For": "203.0.113.7"},
                              environ_base={"REMOTE_ADDR": "10.0.0.1"})
        assert response.get_data(as_text=True) == expected


def test_times_are_shown_in_the_service_time_zone(make_app):
    import datetime as dt

    from idp.web.common import format_when

    moment = dt.datetime(2026, 11, 23, 13, 5, tzinfo=dt.timezone.utc)
    app = make_app(display_timezone="Pacific/Noumea")
    with app.app_context():
        assert format_when(moment, "fr") == "24/11/2026 à 00:05 (+11)"
        assert format_when(moment, "en", "Europe/Paris") == "23/11/2026 at 14:05 (CET)"
        assert format_when(None) == ""
