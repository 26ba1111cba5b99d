from __future__ import annotations

import json

import pytest

from airflow_selfheal.core.redaction import (
    MIN_EXTRA_SECRET_LENGTH,
    REDACTED,
    is_secret_key,
    redact,
    redact_obj,
    truncate,
)

SLACK_WEBHOOK = "https://hooks.slack.com/services/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"
PD_ROUTING_KEY = "0123456789abcdef0123456789abcdef"
PEM_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7"
PEM = f"-----BEGIN PRIVATE KEY-----\n{PEM_BODY}\nZm9vYmFyYmF6cXV4\n-----END PRIVATE KEY-----"
ENCRYPTED_PEM = (
    "-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
    "Proc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,0A1B2C3D\n"
    f"{PEM_BODY}\n-----END ENCRYPTED PRIVATE KEY-----"
)
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJldGwifQ.c2lnbmF0dXJlX2J5dGVz"
AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
GITHUB_TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
OPENAI_KEY = "sk-proj-" + "Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe"
ANTHROPIC_KEY = "sk-ant-api03-" + "abcDEF123_ghiJKL456-mnoPQR789"


class TestRedact:
    @pytest.mark.parametrize(
        ("text", "secret", "kept"),
        [
            # Labelled values, short secrets included.
            pytest.param("password=pw1 user=etl", "pw1", "user=etl", id="password-equals-short"),
            pytest.param("password: pw1\nuser: etl", "pw1", "user: etl", id="password-yaml"),
            pytest.param('{"password": "pw1", "user": "etl"}', "pw1", '"user": "etl"', id="password-json"),
            pytest.param(
                '{"password":"p\\"w1","user":"etl"}', 'w1"', '"user":"etl"', id="password-json-escaped-quote"
            ),
            pytest.param("PASSWORD='pw1' USER=etl", "pw1", "USER=etl", id="password-env-single-quoted"),
            pytest.param(
                'export DB_PASSWORD="pw1"', "pw1", "export DB_PASSWORD=", id="password-env-double-quoted"
            ),
            pytest.param("SNOWFLAKE_PASSWORD=pw1", "pw1", "SNOWFLAKE_PASSWORD=", id="env-var-suffix"),
            pytest.param("passwd = pw1;", "pw1", "passwd = ", id="passwd"),
            pytest.param("pwd=pw1 host=x", "pw1", "host=x", id="pwd"),
            pytest.param("private_key_passphrase: pp9", "pp9", "private_key_passphrase: ", id="passphrase"),
            pytest.param("secret=s3c", "s3c", "secret=", id="secret-short"),
            pytest.param("client_secret: 'cs1'", "cs1", "client_secret: '", id="client-secret"),
            pytest.param("token=t0k", "t0k", "token=", id="token-short"),
            pytest.param("GITHUB_TOKEN=t0k", "t0k", "GITHUB_TOKEN=", id="token-env"),
            pytest.param("api_key=ak1", "ak1", "api_key=", id="api-key-short"),
            pytest.param("x-api-key: ak1", "ak1", "x-api-key: ", id="api-key-header"),
            pytest.param(
                "aws_secret_access_key = wJalrXUtnFEMI",
                "wJalrXUtnFEMI",
                "aws_secret_access_key",
                id="aws-secret",
            ),
            pytest.param(
                "https://acct.example.com/api?user=etl&password=pw1&token=t0k&db=prod",
                "pw1",
                "user=etl&password=***REDACTED***&token=***REDACTED***&db=prod",
                id="url-query",
            ),
            pytest.param(
                "api_key=ak1&token=t0k", "t0k", "api_key=***REDACTED***&", id="url-query-second-value"
            ),
            pytest.param(
                f"routing_key={PD_ROUTING_KEY}", PD_ROUTING_KEY, "routing_key=", id="pagerduty-routing-key"
            ),
            pytest.param(
                f'"integration_key": "{PD_ROUTING_KEY}"',
                PD_ROUTING_KEY,
                '"integration_key": "',
                id="pagerduty-integration-key",
            ),
            pytest.param(
                'password: "unclosed value runs to the end of the line\nnext: line',
                "unclosed value",
                "next: line",
                id="unclosed-quote",
            ),
            # Credentials in URLs keep scheme, user and host.
            pytest.param(
                "AIRFLOW_CONN_SF=snowflake://etl:pass@acct/db?warehouse=wh",
                "pass@",
                "AIRFLOW_CONN_SF=snowflake://etl:***REDACTED***@acct/db?warehouse=wh",
                id="airflow-conn-uri",
            ),
            pytest.param(
                "snowflake://user:pw1@host",
                "pw1",
                "snowflake://user:***REDACTED***@host",
                id="url-short-password",
            ),
            pytest.param(
                "postgresql://etl:p@ss:w0rd@db:5432/x",
                "w0rd",
                "postgresql://etl:***REDACTED***@db:5432/x",
                id="url-at-in-password",
            ),
            # Authorization headers keep the scheme.
            pytest.param(
                "Authorization: Bearer xxx", "xxx", "Authorization: Bearer ", id="bearer-header-short"
            ),
            pytest.param(
                "Authorization: Basic dXNlcjpwYXNz",
                "dXNlcjpwYXNz",
                "Authorization: Basic ",
                id="basic-header",
            ),
            pytest.param(
                '{"authorization": "Token t0k"}', "t0k", '{"authorization": "Token ', id="authorization-json"
            ),
            pytest.param("curl -H 'Bearer abc.def-123'", "abc.def-123", "curl -H 'Bearer ", id="bare-bearer"),
            pytest.param(
                "sent Basic dXNlcjpwYXNz to the proxy", "dXNlcjpwYXNz", "to the proxy", id="bare-basic"
            ),
            # Shapes.
            pytest.param(
                f"posting to {SLACK_WEBHOOK} failed",
                "q1w2e3r4t5y6u7i8o9p0abcd",
                "https://hooks.slack.com/services/***REDACTED:slack_webhook*** failed",
                id="slack-webhook",
            ),
            pytest.param(
                "token xoxb-1234-5678-AbCdEf ok",
                "xoxb-1234",
                "***REDACTED:slack_token*** ok",
                id="slack-bot-token",
            ),
            pytest.param("xoxp-1-2-3", "xoxp-1-2-3", "***REDACTED:slack_token***", id="slack-user-token"),
            pytest.param(
                f"key {PEM} end", PEM_BODY, "key ***REDACTED:private_key*** end", id="pem-private-key"
            ),
            pytest.param(
                f"private_key: {ENCRYPTED_PEM}\nuser: etl",
                "DEK-Info",
                "private_key: ***REDACTED:private_key***\nuser: etl",
                id="pem-encrypted",
            ),
            pytest.param(
                '{"private_key": "-----BEGIN RSA PRIVATE KEY-----\\nMIIBOgIBAAJBAK\\n-----END RSA PRIVATE KEY-----\\n"}',
                "MIIBOgIBAAJBAK",
                '{"private_key": "***REDACTED',
                id="pem-json-escaped",
            ),
            pytest.param(
                "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAA (log cut here)",
                "b3BlbnNzaC1rZXktdjEAAAA",
                "***REDACTED:private_key***",
                id="pem-unterminated",
            ),
            pytest.param(
                f"id {AWS_KEY} used", AWS_KEY, "id ***REDACTED:aws_access_key*** used", id="aws-access-key"
            ),
            pytest.param(
                f"push with {GITHUB_TOKEN}",
                GITHUB_TOKEN,
                "push with ***REDACTED:github_token***",
                id="github",
            ),
            pytest.param(
                f"OPENAI={OPENAI_KEY}", OPENAI_KEY, "OPENAI=***REDACTED:api_key***", id="openai-key"
            ),
            pytest.param(
                f"key {ANTHROPIC_KEY}.", ANTHROPIC_KEY, "key ***REDACTED:api_key***.", id="anthropic-key"
            ),
            pytest.param(f"cookie {JWT}; path=/", JWT, "cookie ***REDACTED:jwt***; path=/", id="jwt"),
        ],
    )
    def test_secret_is_gone_and_context_kept(self, text: str, secret: str, kept: str) -> None:
        redacted = redact(text)
        assert secret not in redacted
        assert kept in redacted
        assert "REDACTED" in redacted

    @pytest.mark.parametrize(
        "text",
        [
            pytest.param("Incorrect username or password was specified.", id="password-in-prose"),
            pytest.param("Basic authentication failed for user ETL", id="basic-in-prose"),
            pytest.param("select token_count, max_tokens from usage", id="token-column-names"),
            pytest.param(
                "Database Error: 000904 (42000): invalid identifier 'CUSTOMER_EMAIL'", id="dbt-error"
            ),
            pytest.param("http://localhost:8080/api/v2/dags", id="url-with-port-no-credentials"),
            pytest.param("task-sk-abcdefghijklmnopqrstuvwxyz", id="sk-inside-a-word"),
        ],
    )
    def test_text_without_secrets_is_unchanged(self, text: str) -> None:
        assert redact(text) == text

    def test_extra_secrets_are_replaced_everywhere_even_inside_words(self) -> None:
        text = "user etl logged in with pw1; xpw1y; url snowflake://etl:pw1@acct; quoted 'pw1'"
        redacted = redact(text, extra_secrets=["pw1"])
        assert "pw1" not in redacted
        assert redacted.count(REDACTED) == 4
        assert "x***REDACTED***y" in redacted

    def test_extra_secrets_cover_url_encoded_and_json_escaped_forms(self) -> None:
        secret = 'p@ss"w/rd'
        text = f"uri=snowflake://etl:p%40ss%22w%2Frd@acct json={json.dumps({'pw': secret})}"
        redacted = redact(text, extra_secrets=[secret])
        assert "p%40ss" not in redacted
        assert 'p@ss\\"w' not in redacted

    def test_longer_extra_secret_wins_over_its_prefix(self) -> None:
        assert redact("value abcdef here", extra_secrets=["abc", "abcdef"]) == f"value {REDACTED} here"

    @pytest.mark.parametrize("short", [pytest.param("a", id="one-char"), pytest.param("42", id="two-chars")])
    def test_extra_secrets_shorter_than_three_characters_are_skipped(self, short: str) -> None:
        assert len(short) < MIN_EXTRA_SECRET_LENGTH
        text = "a table of 42 rows and a view"
        assert redact(text, extra_secrets=[short, ""]) == text

    def test_extra_secret_of_three_characters_is_replaced(self) -> None:
        assert redact("code xyz here", extra_secrets=["xyz"]) == f"code {REDACTED} here"

    def test_extra_secret_matching_marker_text_does_not_shred_markers(self) -> None:
        once = redact("password=pw1 and RED", extra_secrets=["RED"])
        assert once == f"password={REDACTED} and {REDACTED}"
        assert redact(once, extra_secrets=["RED"]) == once

    def test_non_ascii_text_that_changes_length_when_lowered(self) -> None:
        redacted = redact("İstanbul office PASSWORD=pw1 ok")
        assert redacted == f"İstanbul office PASSWORD={REDACTED} ok"


class TestIdempotence:
    @pytest.mark.parametrize(
        "text",
        [
            pytest.param("password=pw1 token=t0k", id="labels"),
            pytest.param('{"password": "pw1", "authorization": "Bearer t0k"}', id="json"),
            pytest.param("Authorization: Bearer xxx", id="bearer"),
            pytest.param("AIRFLOW_CONN_X=snowflake://user:pass@host", id="url"),
            pytest.param(f"webhook_url: {SLACK_WEBHOOK}\nraw {SLACK_WEBHOOK}", id="webhook"),
            pytest.param(f"private_key: {PEM}\n{ENCRYPTED_PEM}", id="pem"),
            pytest.param(f"token={JWT} {JWT} {AWS_KEY} {GITHUB_TOKEN} {OPENAI_KEY}", id="shapes"),
            pytest.param("xoxb-1-2 Basic dXNlcjpwYXNz pwd=x&secret='y'", id="mixed"),
            pytest.param(f"s3://{AWS_KEY}:wJalrXUtnFEMI@bucket/key", id="aws-key-as-url-user"),
            # A labelled value swallowing the "/" that kept the URL rule from matching in the first pass.
            pytest.param("://x:api-key=s3://,tokendXNlcjpwYXNz@", id="rules-exposing-each-other"),
        ],
    )
    def test_redacting_twice_changes_nothing(self, text: str) -> None:
        once = redact(text, extra_secrets=["pw1", "ACT"])
        assert once != text
        assert redact(once, extra_secrets=["pw1", "ACT"]) == once


class TestLargeInput:
    def test_five_megabytes_are_redacted(self) -> None:
        line = "10:11:12  1 of 5 START sql table model demo.orders ....... [RUN] Basic auth ok sk-1\n"
        filler = line * (2_600_000 // len(line))
        text = f"password=pw1\n{filler}Authorization: Bearer t0k\n{filler}{SLACK_WEBHOOK}\n"
        redacted = redact(text)
        assert len(text) > 5_000_000
        assert "pw1" not in redacted
        assert "t0k" not in redacted
        assert "q1w2e3r4t5y6u7i8o9p0abcd" not in redacted
        assert redacted.count("START sql table model demo.orders") == 2 * filler.count("START")

    @pytest.mark.parametrize(
        "text",
        [
            pytest.param('token="' + "a" * 2_000_000, id="unclosed-quote"),
            pytest.param("://" * 700_000, id="url-separators"),
            pytest.param("-----BEGIN PRIVATE KEY-----" * 80_000, id="pem-headers"),
            pytest.param("-" * 2_000_000, id="dashes"),
            pytest.param("eyJ" * 700_000, id="jwt-prefixes"),
        ],
    )
    def test_pathological_input_completes(self, text: str) -> None:
        redacted = redact(text)
        assert redact(redacted) == redacted


class TestRedactObj:
    def test_nested_structures(self) -> None:
        conn = {
            "login": "etl",
            "password": "pw1",
            "extra": {"private_key_passphrase": "pp9", "warehouse": "wh", "apiKey": ["a", "b"]},
        }
        value = {
            "conn": conn,
            "urls": ["snowflake://etl:pw1@acct", ("Authorization: Bearer t0k",)],
            "Authorization": "Basic dXNlcjpwYXNz",
            "routing_key": PD_ROUTING_KEY,
            "webhook_url": SLACK_WEBHOOK,
            "rows": 3,
            "ok": True,
            "token": None,
        }
        redacted = redact_obj(value)
        assert redacted == {
            "conn": {
                "login": "etl",
                "password": REDACTED,
                "extra": {"private_key_passphrase": REDACTED, "warehouse": "wh", "apiKey": REDACTED},
            },
            "urls": ["snowflake://etl:***REDACTED***@acct", ("Authorization: Bearer ***REDACTED***",)],
            "Authorization": REDACTED,
            "routing_key": REDACTED,
            "webhook_url": REDACTED,
            "rows": 3,
            "ok": True,
            "token": None,
        }
        assert conn["password"] == "pw1"

    def test_extra_secrets_reach_nested_strings(self) -> None:
        assert redact_obj({"log": ["connected with hunter2"]}, extra_secrets=["hunter2"]) == {
            "log": [f"connected with {REDACTED}"]
        }

    def test_is_idempotent(self) -> None:
        once = redact_obj({"password": "pw1", "msg": "token=t0k"})
        assert redact_obj(once) == once

    @pytest.mark.parametrize(
        ("key", "expected"),
        [
            pytest.param("password", True, id="password"),
            pytest.param("SNOWFLAKE_PASSWORD", True, id="env-var"),
            pytest.param("apiKey", True, id="camel-case"),
            pytest.param("x-api-key", True, id="dashed"),
            pytest.param("aws_secret_access_key", True, id="aws-secret"),
            pytest.param("client_secret", True, id="client-secret"),
            pytest.param("private_key_passphrase", True, id="passphrase"),
            pytest.param("integration_key", True, id="integration-key"),
            pytest.param("private_key_path", False, id="key-path"),
            pytest.param("token_count", False, id="token-count"),
            pytest.param("warehouse", False, id="warehouse"),
        ],
    )
    def test_is_secret_key(self, key: str, expected: bool) -> None:
        assert is_secret_key(key) is expected


class TestTruncate:
    def test_text_within_limit_is_unchanged(self) -> None:
        assert truncate("short", 5) == "short"

    def test_keeps_head_and_tail_and_says_how_much_was_cut(self) -> None:
        text = "H" * 1000 + "M" * 8000 + "T" * 1000
        result = truncate(text, 500)
        assert len(result) <= 500
        marker_start = result.index("\n…[truncated ")
        head, tail = result[:marker_start], result[result.rindex("…\n") + 2 :]
        assert set(head) == {"H"}
        assert set(tail) == {"T"}
        assert len(tail) > len(head)
        assert f"[truncated {len(text) - len(head) - len(tail)} characters]" in result

    def test_custom_marker(self) -> None:
        assert truncate("abcdefghij" * 10, 20, marker_fmt="<{n}>") == "abcdef<85>bcdefghij"

    def test_limit_smaller_than_marker_cuts_hard(self) -> None:
        assert truncate("abcdefghij", 3) == "abc"

    def test_negative_limit_is_rejected(self) -> None:
        with pytest.raises(ValueError, match="limit"):
            truncate("abc", -1)
