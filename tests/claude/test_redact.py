"""The secret redactor that every hook and MCP write passes through before anything is stored."""

from __future__ import annotations

import pytest

from hivemind_app.redact import redact, redact_value

PRIVATE_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    "-----END OPENSSH PRIVATE KEY-----"
)


@pytest.mark.parametrize(
    ("text", "secret", "kind"),
    [
        ("export OPENAI_API_KEY=sk-proj-abcdefghijklmnopqrstuvwxyz012345", "sk-proj-abcdef", "api-key"),
        ("ANTHROPIC_API_KEY=sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789", "sk-ant-api03", "api-key"),
        ("curl -H 'Authorization: Bearer abcdef0123456789abcdef' https://api", "abcdef0123456789", "bearer"),
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA", "basic-auth"),
        ("git remote add origin https://me:s3cr3tpass@github.com/me/repo.git", "s3cr3tpass", "url-password"),
        ("REDIS_URL=redis://:hunter22@nas.local:6379/0 pytest", "hunter22", "url-password"),
        (f"cat ~/.ssh/id_ed25519\n{PRIVATE_KEY}\n", "b3BlbnNzaC1rZXkt", "private-key"),
        ("aws_access_key_id = AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE", "aws-key"),
        ("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI", "secret"),
        ("the CI token is ghp_abcdefghijklmnopqrstuvwxyz0123456789AB", "ghp_abcdef", "github-token"),
        ("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP", "github_pat_11", "github-token"),
        ('{"password": "correct horse battery"}', "correct horse", "secret"),
        ('DB_PASSWORD="hunter2hunter2"', "hunter2hunter2", "secret"),
        ("SLACK=xoxb-123456789012-abcdefghijkl", "xoxb-1234", "slack-token"),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abcdefghijklmnop", "eyJzdWIi", "jwt"),
    ],
)
def test_each_kind_of_secret_is_replaced_by_a_labelled_marker(text: str, secret: str, kind: str) -> None:
    cleaned = redact(text)
    assert secret not in cleaned
    assert f"[REDACTED:{kind}]" in cleaned


@pytest.mark.parametrize(
    "text",
    [
        "max_tokens=4096",
        "tokenizer: bert-base-uncased",
        "def check_password(password: str) -> bool:",
        "commit 3f2a1b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a",
        "session 9f1c2a7e-3b4d-4e5f-8a9b-0c1d2e3f4a5b",
        "The staging DB listens on port 5433",
        "git clone https://github.com/me/repo.git && ssh me@host.example.com",
        "a basic implementation of the bearer of bad news",
    ],
)
def test_ordinary_coding_text_is_left_alone(text: str) -> None:
    assert redact(text) == text


def test_redaction_keeps_the_shape_of_the_text_around_the_secret() -> None:
    assert redact("postgres://app:Pa55word!@db:5432/app") == "postgres://app:[REDACTED:url-password]@db:5432/app"
    assert redact('DB_PASSWORD="hunter2hunter2" ./run') == 'DB_PASSWORD="[REDACTED:secret]" ./run'


def test_nested_json_data_is_redacted_in_every_string_and_keeps_other_values() -> None:
    data = {"command": "curl -u x https://u:pw123456@h/", "env": ["GITHUB_TOKEN=abcd1234efgh"], "n": 3, "ok": True}
    cleaned = redact_value(data)
    assert cleaned == {
        "command": "curl -u x https://u:[REDACTED:url-password]@h/",
        "env": ["GITHUB_TOKEN=[REDACTED:secret]"],
        "n": 3,
        "ok": True,
    }
