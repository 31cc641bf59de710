"""The delivery file: connectors read with every problem at file:line:column, secrets only
from the environment, and a broken file refused at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from callbacks.delivery.settings import load_delivery, parse_delivery
from routing.errors import FlowInvalid

ROOT = Path(__file__).resolve().parents[1]

GOOD = """\
retry: {max_attempts: 5, first_backoff_seconds: 2, max_backoff_seconds: 60}
connectors:
  mail:
    type: email
    smtp_host: 127.0.0.1
    smtp_port: 2525
    username: line@example.test
    password_env: TEST_SMTP_PASSWORD
    from: "Phone line <line@example.test>"
    to: [desk@example.test, copy@example.test]
  hook:
    type: webhook
    url: http://127.0.0.1:9/hooks
    secret_env: TEST_HOOK_SECRET
    events: [created, status]
  zammad:
    type: zammad
    enabled: false
    url: https://zammad.example.test/api/v1
    token_env: TEST_ZAMMAD_TOKEN
    group: Users
"""
ENVIRON = {"TEST_SMTP_PASSWORD": "pw", "TEST_HOOK_SECRET": "s3cret"}


def problems(text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(FlowInvalid) as caught:
        parse_delivery(text, "flows/delivery.yaml", ENVIRON if environ is None else environ)
    return [str(error) for error in caught.value.errors]


def test_a_valid_file_gives_each_connector_its_settings_and_secrets_from_the_environment(
        ) -> None:
    settings = parse_delivery(GOOD, "flows/delivery.yaml", ENVIRON)
    assert [c.name for c in settings.enabled] == ["mail", "hook"]
    mail = settings.connector("mail")
    assert mail is not None and mail.email is not None
    assert mail.email.password == "pw"
    assert mail.email.recipients == ("desk@example.test", "copy@example.test")
    assert mail.email.message_id_domain == "example.test"
    hook = settings.connector("hook")
    assert hook is not None and hook.webhook is not None and hook.webhook.secret == "s3cret"
    assert hook.wants("status") and not hook.wants("transcribed")
    assert settings.retry.intervals() == [2, 4, 8, 16]
    off = settings.connector("zammad")
    assert off is not None and not off.enabled  # its token need not be set while it is off


def test_the_shipped_file_is_valid_and_delivers_nowhere() -> None:
    settings = load_delivery(ROOT / "flows" / "delivery.yaml", environ={})
    assert len(settings.connectors) == 3
    assert settings.enabled == ()


def test_a_mistyped_connector_type_is_named_with_its_line_column_and_a_suggestion() -> None:
    found = problems(GOOD.replace("type: email", "type: emial"))
    assert found == ["flows/delivery.yaml:4:11: unknown connector type 'emial' (did you mean "
                     "'email'?); expected one of: email, webhook, zammad"]


def test_an_enabled_connector_whose_secret_is_not_set_is_refused() -> None:
    found = problems(GOOD, {"TEST_SMTP_PASSWORD": "pw"})
    assert found == ["flows/delivery.yaml:14:17: environment variable TEST_HOOK_SECRET is not "
                     "set (connector 'hook' is enabled and needs it)"]


def test_a_secret_written_into_the_file_is_refused() -> None:
    found = problems(GOOD.replace("secret_env: TEST_HOOK_SECRET", "secret: hunter2"))
    assert any(":14:5: 'secret' does not belong in this file: put the value in an environment "
               "variable and name it with 'secret_env'" in problem for problem in found)
    assert not any("hunter2" in problem for problem in found)


def test_every_problem_is_reported_at_once() -> None:
    broken = (GOOD.replace("smtp_port: 2525", "smtp_port: 99999")
              .replace("url: http://127.0.0.1:9/hooks", "url: ftp://example.test")
              .replace("max_attempts: 5", "max_attemps: 5")
              .replace("https://zammad.example.test/api/v1", "https://zammad.example.test"))
    found = problems(broken)
    assert [problem.split(": ", 1)[0] for problem in found] == [
        "flows/delivery.yaml:1:9", "flows/delivery.yaml:6:16", "flows/delivery.yaml:13:10",
        "flows/delivery.yaml:19:10"]
    assert "unknown key 'max_attemps' in retry (did you mean 'max_attempts'?)" in found[0]
    assert "smtp_port must be a whole number from 1 to 65535, got 99999" in found[1]
    assert "url must be an http:// or https:// URL" in found[2]
    assert "ending in /api/v1" in found[3]


def test_the_app_refuses_to_start_with_a_broken_delivery_file(tmp_path: Path,
                                                              database_url: str) -> None:
    from ivr import create_app
    from tests.conftest import app_config

    path = tmp_path / "delivery.yaml"
    path.write_text(GOOD.replace("type: webhook", "type: webhok"), encoding="utf-8")
    with pytest.raises(FlowInvalid) as refused:
        create_app(app_config(database_url, DELIVERY_FILE=str(path)))
    assert f"{path}:12:11: unknown connector type 'webhok' (did you mean 'webhook'?)" in str(
        refused.value)
