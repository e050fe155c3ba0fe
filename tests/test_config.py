"""Configuration: strict TOML + environment overrides, and secrets that never show themselves."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from gateway.config import ConfigError, Secret, load_config, secret_values, validate
from gateway.logs import RedactingFilter, mask_phone, register_secret

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_run_without_a_file() -> None:
    config = load_config(environ={})
    assert config.database.url.startswith("sqlite+aiosqlite:///")
    assert config.simulator.enabled and config.dashboard.enabled
    assert not config.channels.twilio.enabled
    assert validate(config) == []


def test_example_file_documents_every_key() -> None:
    """config.example.toml parses, and every key of every section appears in it."""
    import dataclasses
    import tomllib

    from gateway.config import Config

    data = tomllib.loads((ROOT / "config.example.toml").read_text())
    load_config(ROOT / "config.example.toml", environ={})

    def keys(cls: type, prefix: str) -> set[str]:
        out: set[str] = set()
        for item in dataclasses.fields(cls):  # type: ignore[arg-type]
            hint = cls.__annotations__[item.name]
            nested = getattr(__import__("gateway.config", fromlist=[hint]), hint, None)
            if isinstance(nested, type) and dataclasses.is_dataclass(nested):
                out |= keys(nested, f"{prefix}{item.name}.")
            else:
                out.add(prefix + item.name)
        return out

    def present(node: dict, prefix: str) -> set[str]:  # type: ignore[type-arg]
        out: set[str] = set()
        for key, value in node.items():
            out |= present(value, f"{prefix}{key}.") if isinstance(value, dict) else {prefix + key}
        return out

    assert keys(Config, "") - present(data, "") == set()


def test_environment_overrides_and_types(tmp_path: Path) -> None:
    path = tmp_path / "lapor.toml"
    path.write_text('[server]\nport = 9000\n[channels.twilio]\naccount_sid = "AC1"\n')
    config = load_config(
        path,
        environ={
            "LAPOR_SERVER__PORT": "9100",
            "LAPOR_CHANNELS__TWILIO__AUTH_TOKEN": "s3cret",
            "LAPOR_INTAKE__KEYWORDS": "LaporHendi, LaporSemar",
            "LAPOR_SIMULATOR__ENABLED": "off",
            "UNRELATED": "x",
        },
    )
    assert config.server.port == 9100
    assert config.channels.twilio.auth_token.reveal() == "s3cret"
    assert config.intake.keywords == ["LaporHendi", "LaporSemar"]
    assert config.simulator.enabled is False


@pytest.mark.parametrize(
    ("toml", "environ", "names"),
    [
        ("[server]\nprot = 1\n", {}, "server.prot"),
        ("[servr]\nport = 1\n", {}, "servr"),
        ('[server]\nport = "eighty"\n', {}, "server.port"),
        ("[server]\nport = 8.5\n", {}, "server.port"),
        ('[intake]\nkeywords = "LaporHendi"\n', {}, "intake.keywords"),
        ("", {"LAPOR_SERVER__PORT": "eighty"}, "server.port"),
        ("", {"LAPOR_SIMULATOR__ENABLED": "maybe"}, "simulator.enabled"),
        ("", {"LAPOR_CHANNELS__TWILIO__AUTHTOKEN": "x"}, "channels.twilio.authtoken"),
        ("server = 1\n", {}, "server"),
        ("", {"LAPOR_INTAKE__WRITERS": "0"}, "intake.writers"),
        ("[server\n", {}, "not valid TOML"),
    ],
)
def test_bad_config_stops_with_the_key_named(
    tmp_path: Path, toml: str, environ: dict[str, str], names: str
) -> None:
    path = tmp_path / "lapor.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=names.replace(".", r"\.")):
        load_config(path, environ=environ)


def test_cross_key_problems_are_reported() -> None:
    config = load_config(
        environ={"LAPOR_CHANNELS__TWILIO__ACCOUNT_SID": "AC1", "LAPOR_DATABASE__URL": "mysql://x"}
    )
    problems = " ".join(validate(config))
    assert "channels.twilio.auth_token" in problems
    assert "database.url" in problems


def test_secrets_never_show_in_repr_or_str() -> None:
    config = load_config(
        environ={
            "LAPOR_CHANNELS__TWILIO__AUTH_TOKEN": "tok-123456",
            "LAPOR_CHANNELS__TWILIO__ACCOUNT_SID": "AC1",
        }
    )
    assert "tok-123456" not in repr(config)
    assert "tok-123456" not in str(config.channels.twilio.auth_token)
    assert secret_values(config) == ["tok-123456"]
    assert Secret("a") == Secret("a") and not Secret("")


def test_logs_mask_secrets_and_phone_numbers_even_in_tracebacks() -> None:
    import io
    import json

    from gateway.logs import REQUEST_ID, JsonFormatter, PlainFormatter

    register_secret("tok-abcdef-999")
    logger = logging.getLogger("lapor.test.redaction")
    logger.propagate = False
    plain, as_json = io.StringIO(), io.StringIO()
    for stream, formatter in ((plain, PlainFormatter()), (as_json, JsonFormatter())):
        handler = logging.StreamHandler(stream)
        handler.addFilter(RedactingFilter())
        handler.setFormatter(formatter)
        logger.addHandler(handler)
    token = REQUEST_ID.set("req-42")
    try:
        logger.warning("auth with %s failed for %s", "tok-abcdef-999", "+6281234567890")
        try:
            raise RuntimeError("token tok-abcdef-999 rejected for 081234567890")
        except RuntimeError:
            logger.exception("send failed")
    finally:
        REQUEST_ID.reset(token)
        logger.handlers.clear()
    text = plain.getvalue()
    assert "auth with *** failed for +628********90" in text and "[req-42]" in text
    assert "tok-abcdef-999" not in text and "081234567890" not in text
    assert "token *** rejected for 0812******90" in text, "the traceback is redacted too"
    records = [json.loads(line) for line in as_json.getvalue().splitlines()]
    assert records[0]["request_id"] == "req-42"
    assert records[0]["message"] == "auth with *** failed for +628********90"
    assert "tok-abcdef-999" not in records[1]["exc"]
    assert mask_phone("call 081234567890 now") == "call 0812******90 now"
