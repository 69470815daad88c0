"""The secret redactor that every hook and MCP write passes through before anything is stored."""

from __future__ import annotations

import importlib.util
import string
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hivemind_app.trust.redact import redact, redact_value

ALNUM = string.ascii_letters + string.digits

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
        (
            "hivemind-app hive join hive-loe2c-klhcj-76tns-56l63-jcdod-zef2o-v26st-q5urm-2tlmy-ns533-wfxdh-2eq",
            "loe2c-klhcj",
            "hive-key",
        ),
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


# --- issue 17, "Secrets get through": each case leaked through the previous redactor -------------------

_B64_LINES = [
    "MIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi4pQ9wHk3JXz0rQ2WxYlnN4bGk",
    "q1ZpVt8sX0bE8nQm4r6yLwT2aHc5dJf7gKi9uOp3sRv1wXz0yBc2dEf4gHj6kLm",
]
CLIPPED_KEY = "$ head -3 ~/.ssh/id_rsa\n-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(_B64_LINES) + "\n"
PGP_BLOCK = (
    "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n" + "\n".join(_B64_LINES) + "\n=J8kP\n-----END PGP PRIVATE KEY BLOCK-----"
)
LONG_VALUE = "Zx9" * 300  # 900 characters

FINDINGS = [
    pytest.param(CLIPPED_KEY, _B64_LINES[1], "private-key", id="private key without its END line (clipped)"),
    pytest.param(PGP_BLOCK, _B64_LINES[0], "private-key", id="PGP private key block"),
    pytest.param("SECRET_KEY=8f2c1e0d9b7a6f5e4d3c2b1a0f9e8d7c", "8f2c1e0d9b7a", "secret", id="SECRET_KEY="),
    pytest.param("DJANGO_SECRET_KEY='k#9x!vq2-m@l7z$w'", "k#9x!vq2-m@l7z$w", "secret", id="*_SECRET_KEY"),
    pytest.param("ENCRYPTION_KEY=base64:q8Jm2Lx0v9Zt4Rw6", "q8Jm2Lx0v9Zt4Rw6", "secret", id="ENCRYPTION_KEY"),
    pytest.param(f"CI_DEPLOY_TOKEN={LONG_VALUE}", LONG_VALUE[-30:], "secret", id="*_TOKEN with a long value"),
    pytest.param(f'CLIENT_SECRET="{LONG_VALUE}"', LONG_VALUE[:30], "secret", id="long quoted value"),
    pytest.param('"{\\"password\\": \\"s3cret-horse\\"}"', "s3cret-horse", "secret", id="quoted inside JSON"),
    pytest.param("postgres://app:p@ss/w0rd@db:5432/app", "ss/w0rd", "url-password", id="URL password with @ and /"),
    pytest.param("curl -u admin:Tr0ub4dor3 https://nexus.local/x", "Tr0ub4dor3", "secret", id="curl -u user:pw"),
    pytest.param("mysql -u root -pHunt3r22 -h 127.0.0.1 app", "Hunt3r22", "secret", id="mysql -pPW"),
    pytest.param("mongosh --username admin --password Sw0rdf1sh", "Sw0rdf1sh", "secret", id="--password X"),
    pytest.param("docker login -u acme -p Qw3rty99x registry.example.com", "Qw3rty99x", "secret", id="docker login -p"),
    pytest.param("GITLAB=glpat-aBcD1234eFgH5678iJkL", "aBcD1234eFgH", "gitlab-token", id="GitLab token"),
    pytest.param("hf_AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEfGh", "AbCdEfGhIjKlMnOp", "huggingface-token", id="Hugging Face"),
    pytest.param(
        "app token xapp-1-A0123ABCDEF-4567890123456-0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d",
        "0a1b2c3d4e5f6071",
        "slack-token",
        id="Slack app token",
    ),
    pytest.param(
        "https://hooks.slack.com/services/T0ABCDEFG/B0ABCDEFGHI/aBcDeFgHiJkLmNoPqRsTuVwX",
        "aBcDeFgHiJkLmNoPqRsTuVwX",
        "slack-webhook",
        id="Slack webhook URL",
    ),
    pytest.param(
        "POST https://discord.com/api/webhooks/1234567890123456789/" + "Ab-Cd_Ef12" * 6 + "Gh",
        "Ab-Cd_Ef12Ab-Cd_Ef12",
        "discord-webhook",
        id="Discord webhook URL",
    ),
]


@pytest.mark.parametrize(("text", "secret", "kind"), FINDINGS)
def test_each_secret_the_issue_found_getting_through_is_removed(text: str, secret: str, kind: str) -> None:
    cleaned = redact(text)
    assert secret not in cleaned
    assert f"[REDACTED:{kind}]" in cleaned


def test_a_webhook_keeps_its_host_and_a_command_its_flags() -> None:
    assert redact("https://hooks.slack.com/services/T0ABCDEFG/B0ABCDEFGHI/aBcDeFgHiJkLmNoPqRsTuVwX") == (
        "https://hooks.slack.com/[REDACTED:slack-webhook]"
    )
    assert redact("mysql -u root -pHunt3r22 app") == "mysql -u root -p[REDACTED:secret] app"
    assert redact("curl -u admin:Tr0ub4dor3 https://h/") == "curl -u admin:[REDACTED:secret] https://h/"
    assert redact("DJANGO_SECRET_KEY='k#9x!vq2-m@l7z$w'") == "DJANGO_SECRET_KEY='[REDACTED:secret]'"


@pytest.mark.parametrize(
    "text",
    [
        "docker run --rm -p 8080:80 -u 1000:1000 nginx",
        "git push -u origin main && mkdir -p build && ssh -p 2222 me@nas",
        "mysql -h db -u app -p app_production",
        'echo "$TOKEN" | docker login ghcr.io -u acme --password-stdin',
        "      GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}",
        "password = getpass.getpass('Password: ')",
        'token = os.environ["GITHUB_TOKEN"]',
        "SECRET_KEY = os.environ.get('SECRET_KEY')",
        "tokenizer.pad_token = tokenizer.eos_token",
        "open http://localhost:5173/@vite/client",
        "export PWD=/home/me/src/app",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGtQUPmTdH5fJ2C8fM0TxK7Cn7dRzKqH3rEk6w2tNq1b ada@laptop",
        "image: python@sha256:" + "0123456789abcdef" * 4,
    ],
)
def test_commands_and_code_that_only_look_like_credentials_are_left_alone(text: str) -> None:
    assert redact(text) == text


# --- the corpus of bench/redact.py, seeded and smaller -----------------------------------------------


def _bench() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "bench" / "redact.py"
    spec = importlib.util.spec_from_file_location("bench_redact", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_redact"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return _bench()


def test_no_fake_secret_of_a_known_format_leaks_from_the_corpus(bench: ModuleType) -> None:
    samples = bench.secret_samples(seed=17, per_kind=4)
    assert len({s.kind for s in samples}) >= 25
    leaks = {kind: examples for kind, (_, bad, examples) in bench.leak_report(redact, samples).items() if bad}
    assert leaks == {}


def test_under_one_percent_of_clean_notes_are_altered(bench: ModuleType) -> None:
    notes = bench.clean_notes(seed=17, n=400)
    altered = bench.false_positives(redact, notes)
    assert len(altered) / len(notes) < 0.01, altered[:5]


def test_redacting_twice_changes_nothing_more(bench: ModuleType) -> None:
    for sample in bench.secret_samples(seed=18, per_kind=2):
        once = redact(sample.text)
        assert redact(once) == once


@settings(max_examples=150, deadline=None)
@given(before=st.text(max_size=80), after=st.text(max_size=80), body=st.text(ALNUM, min_size=36, max_size=36))
def test_a_token_is_removed_whatever_surrounds_it(before: str, after: str, body: str) -> None:
    token = f"ghp_{body}"
    cleaned = redact(f"{before} {token} {after}")
    assert token not in cleaned and "[REDACTED:github-token]" in cleaned


# --- linear time: every pattern bounded, no rescan after a failure -------------------------------------

HOSTILE = [
    "a",
    "=",
    "x=",
    "= ",
    "password=",
    'password="',
    "password: ",
    "token=a&",
    "key=1 ",
    '{"password": "',
    "-----BEGIN RSA PRIVATE KEY-----\n",
    "-",
    "a://b:",
    "a://b:c@",
    "mysql ",
    "docker login ",
    "eyJ",
    "eyJaaaaaaaaaaaa.",
    "sk-",
    "xoxb-",
    "Bearer ",
    "Authorization: ",
    "-u a:",
    "--password ",
    "--a-",
    '\\"',
    "-us1 ",
    "12345678:",
    "1Q~",
    "/webhooks/",
    "&key=",
    "<password>",
    "PuTTY-User-Key-File-2: x\n",
    "7",
    "password=hunter2 https://u:p@h/ -u a:b mysql -pX eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abc ",
]


@pytest.mark.parametrize("unit", HOSTILE)
def test_a_hostile_megabyte_is_redacted_in_linear_time(unit: str) -> None:
    text = (unit * ((1 << 20) // len(unit) + 1))[: 1 << 20]
    start = time.perf_counter()
    redact(text)
    # about a second at worst on a busy 2-core machine; a quadratic pattern takes minutes
    assert time.perf_counter() - start < 8


def test_a_key_glued_to_a_name_by_a_dash_or_underscore_is_still_redacted() -> None:
    token = "ghp_1234567890abcdefghijABCDEFGHIJ123456"
    for glued in (f"token-{token}", f"my_{token}", f"GITHUB_TOKEN_{token}"):
        assert token not in redact(glued), glued


def test_a_join_code_is_redacted_in_every_form_join_takes() -> None:
    from hivemind_app.trust.hivekey import HiveKey, parse_join_code

    code = HiveKey.generate().join_code()
    body = code.removeprefix("hive-")
    forms = [code, code.upper(), "hive-" + body.replace("-", ""), "HIVE-" + body.replace("-", "").upper(), body]
    bare = body.replace("-", "")
    forms += [bare, bare.upper(), bare[:29] + "-" + bare[29:]]
    for form in forms:
        parse_join_code(form)  # a form join takes
        cleaned = redact(f"ran `hivemind-app hive join {form}` on the desk")
        assert cleaned == "ran `hivemind-app hive join [REDACTED:hive-key]` on the desk", form
    # a bare run of 58 letters is redacted only when its checksum holds: a long word is left alone
    word = "a" * 57 + "b"
    assert redact(f"id {word} here") == f"id {word} here"


def test_a_join_code_with_whitespace_inside_is_redacted_however_it_was_pasted() -> None:
    from hivemind_app.trust.hivekey import HiveKey, parse_join_code

    code = HiveKey.generate().join_code()
    other = HiveKey.generate().join_code()
    body = code.removeprefix("hive-")
    forms = [
        code[:33] + "\n" + code[33:],  # wrapped by the terminal
        code[:20] + "\n  " + code[20:50] + "\r\n  " + code[50:],  # copied from `init`'s indented line, twice wrapped
        code.replace("-", " "),  # spaces for dashes, its prefix too
        "hive-\n" + body,
        body.replace("-", " ").upper(),
        body[:7] + "\t" + body[7:],
        code[:25] + "\u00a0" + code[25:],  # a no-break space from a web page or chat
    ]
    for form in forms:
        parse_join_code(form)  # a form join takes
        cleaned = redact(f"the code is {form}\nkeep it safe")
        assert cleaned == "the code is [REDACTED:hive-key]\nkeep it safe", form
    both = redact(f"one: {code.replace('-', ' ')} two: {other[:40]}\n{other[40:]}.")
    assert both == "one: [REDACTED:hive-key] two: [REDACTED:hive-key].", both
    # words in front of a code do not hide it, and 58 letters of prose are left alone (no checksum)
    assert redact(f"join using {body.replace('-', ' ')}") == "join using [REDACTED:hive-key]"
    assert redact(f"port 8 {body.replace('-', ' ')}") == "port 8 [REDACTED:hive-key]"  # after a digit and a blank
    prose = "make sure the hive is ready before you join the other machines to it and then restart them all"
    assert redact(prose) == prose


def test_a_spaced_join_code_followed_by_a_dash_or_an_underscore_is_redacted() -> None:
    from hivemind_app.trust.hivekey import HiveKey

    code = HiveKey.generate().join_code()
    for after in ("-", "_", "--", "_backup", "-- end"):
        for form in (code[:33] + "\n" + code[33:], code.replace("-", " ")):
            cleaned = redact(f"the code is {form}{after} keep it safe")
            assert cleaned == f"the code is [REDACTED:hive-key]{after} keep it safe", (form, after)


def test_a_join_code_past_the_first_mebibyte_of_one_run_of_code_characters_is_redacted() -> None:
    from hivemind_app.trust.hivekey import HiveKey

    code = HiveKey.generate().join_code().replace("-", " ")
    filler = "ab cd " * (1 << 18)  # 1.5 MiB of code characters and blanks, no code in it
    for text in (filler + code + " done", filler[:-13] + code):  # past the first MiB, and across its end
        cleaned = redact(text)
        assert code not in cleaned and cleaned.count("[REDACTED:hive-key]") == 1


def test_prose_of_58_letters_without_a_digit_never_reaches_the_checksum(monkeypatch: pytest.MonkeyPatch) -> None:
    """The search for pasted codes asks the checksum only of windows holding a digit 2-7 (as every new code
    does): a megabyte of prose costs lookups, not SHA-256s."""
    from hivemind_app.trust import joincode
    from hivemind_app.trust.hivekey import HiveKey

    asked: list[bytes] = []
    real = joincode.checksum_holds
    monkeypatch.setattr(joincode, "checksum_holds", lambda code: asked.append(code) or real(code))
    prose = "make sure the hive is ready before you join the other machines to it and then restart them all "
    assert redact(prose * 200) == prose * 200
    assert asked == []
    code = HiveKey.generate().join_code().replace("-", " ")
    assert redact(prose + code) == prose + "[REDACTED:hive-key]" and asked
