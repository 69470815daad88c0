"""The redactor measured: leak rate per kind of secret, false-positive rate on clean notes, time per MB.

    python bench/redact.py [--seed 7] [--per-kind 10] [--clean 600] [--show]

What it does:

1. Secrets: for each kind (AWS, GitHub, GitLab, Hugging Face, Slack, OpenAI, Anthropic, Stripe, JWT, clipped
   PEM and PGP key blocks, webhook URLs, URL passwords with '@' and '/', `curl -u`, `mysql -p`, `--password`,
   `docker login -p`, `SECRET_KEY=`-style lines, long and quoted values, ...), `--per-kind` fake secrets
   generated now from the format (random body of the right alphabet and length), each embedded in a line a
   coding session would show: env dumps, curl commands, config files, git remotes, CI logs, command lines.
   A secret leaks when it, or any 10 characters of it, survives redaction.
2. Clean notes, written by nobody here: docstrings of Python's standard library read with `inspect` now, the
   paragraphs of this repository's README and docs, and code lines full of hashes, UUIDs, git SHAs, base64
   test data, public keys and placeholders (`${{ secrets.X }}`, `$DB_PASSWORD`). A note is a false positive
   when redaction changes it.
3. Speed: a 1 MB blob of both, redacted `--repeat` times; plus the cost of importing the redactor (a fresh
   interpreter, median of 5, the interpreter's own start-up subtracted).

The same run measures the previous redactor (`hivemind_app/redact.py` from the last commit that had it,
loaded from git history into a temporary module) as the baseline. Each line is one JSON object.
"""

from __future__ import annotations

import argparse
import base64
import importlib.util
import inspect
import json
import os
import random
import statistics
import string
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import emit_line  # noqa: E402

Redactor = Callable[[str], str]

ALNUM = string.ascii_letters + string.digits
LOWER_ALNUM = string.ascii_lowercase + string.digits
UPPER_ALNUM = string.ascii_uppercase + string.digits
HEX = "0123456789abcdef"
B64 = ALNUM + "+/"
B64URL = ALNUM + "-_"


@dataclass(frozen=True)
class Sample:
    kind: str
    text: str
    secrets: tuple[str, ...]


# --- secrets ------------------------------------------------------------------------------------------


class _Gen:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def s(self, alphabet: str, n: int) -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(n))

    def pick(self, options: list[str]) -> str:
        return self.rng.choice(options)

    def password(self, symbols: str = "!#%^*-_=+.") -> str:
        """A password a person picks: mixed letters, digits and a symbol or two; sometimes a passphrase."""
        rng = self.rng
        if rng.random() < 0.25:
            words = ["correct", "horse", "battery", "staple", "orange", "tiger", "violin", "maple", "rocket"]
            return "-".join(rng.sample(words, 3)) + str(rng.randint(10, 99))
        body = self.s(ALNUM, rng.randint(9, 18))
        cut = rng.randint(1, len(body) - 1)
        return body[:cut] + self.s(symbols, rng.randint(1, 2)) + body[cut:] + str(rng.randint(0, 9))

    def host(self) -> str:
        return self.pick(["db.internal", "10.0.3.12", "nas.local", "prod-db-1.example.com", "localhost"])

    def jwt(self) -> str:
        def b64(obj: dict[str, object]) -> str:
            return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

        header = b64({"alg": self.pick(["HS256", "RS256"]), "typ": "JWT"})
        payload = b64(
            {"sub": str(self.rng.randint(10**6, 10**9)), "name": "Ada", "iat": 1760000000 + self.rng.randint(0, 10**6)}
        )
        return f"{header}.{payload}.{self.s(B64URL, 43)}"

    def pem_lines(self, n: int) -> list[str]:
        return [self.s(B64, 64) for _ in range(n)]


def _kinds(g: _Gen) -> dict[str, Callable[[], Sample]]:
    """Each kind: a function that makes one sample (the text and the secrets in it)."""
    k: dict[str, Callable[[], Sample]] = {}

    def add(kind: str) -> Callable[[Callable[[], tuple[str, tuple[str, ...]]]], None]:
        def wrap(fn: Callable[[], tuple[str, tuple[str, ...]]]) -> None:
            k[kind] = lambda: Sample(kind, *fn())

        return wrap

    @add("aws-access-key")
    def _() -> tuple[str, tuple[str, ...]]:
        key = g.pick(["AKIA", "ASIA"]) + g.s("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)
        line = g.pick(
            [
                f"aws_access_key_id = {key}",
                f"export AWS_ACCESS_KEY_ID={key}",
                f'    "AccessKeyId": "{key}",',
                f"2026-11-02T10:14:03Z botocore.credentials using key {key} from env",
            ]
        )
        return line, (key,)

    @add("aws-secret-key")
    def _() -> tuple[str, tuple[str, ...]]:
        secret = g.s(ALNUM + "/+", 40)
        line = g.pick(
            [
                f"aws_secret_access_key = {secret}",
                f"export AWS_SECRET_ACCESS_KEY={secret}",
                f'    "SecretAccessKey": "{secret}",',
                f"AWS_SECRET_ACCESS_KEY='{secret}' aws s3 ls s3://backups",
            ]
        )
        return line, (secret,)

    @add("github-token")
    def _() -> tuple[str, tuple[str, ...]]:
        token = g.pick(
            [
                "ghp_" + g.s(ALNUM, 36),
                "gho_" + g.s(ALNUM, 36),
                "ghs_" + g.s(ALNUM, 36),
                "github_pat_11" + g.s(UPPER_ALNUM, 20) + "_" + g.s(ALNUM, 59),
            ]
        )
        line = g.pick(
            [
                f"GITHUB_TOKEN={token}",
                f"git remote set-url origin https://x-access-token:{token}@github.com/acme/api.git",
                f'curl -H "Authorization: token {token}" https://api.github.com/user',
                f"echo {token} | gh auth login --with-token",
            ]
        )
        return line, (token,)

    @add("gitlab-token")
    def _() -> tuple[str, tuple[str, ...]]:
        token = g.pick(["glpat-", "gldt-", "glrt-", "glcbt-"]) + g.s(B64URL, 20)
        line = g.pick(
            [
                f'curl --header "PRIVATE-TOKEN: {token}" https://gitlab.example.com/api/v4/projects',
                f"git clone https://oauth2:{token}@gitlab.com/acme/infra.git",
                f"GITLAB_TOKEN={token} glab mr list",
                f"  token: {token}",
            ]
        )
        return line, (token,)

    @add("huggingface-token")
    def _() -> tuple[str, tuple[str, ...]]:
        token = "hf_" + g.s(string.ascii_letters, 34)
        line = g.pick(
            [
                f"HF_TOKEN={token} python train.py",
                f"huggingface-cli login --token {token}",
                f"from huggingface_hub import login; login('{token}')",
                f'headers = {{"Authorization": "Bearer {token}"}}',
            ]
        )
        return line, (token,)

    @add("slack-token")
    def _() -> tuple[str, tuple[str, ...]]:
        token = g.pick(
            [
                f"xoxb-{g.s(string.digits, 12)}-{g.s(string.digits, 13)}-{g.s(ALNUM, 24)}",
                f"xoxp-{g.s(string.digits, 12)}-{g.s(string.digits, 12)}-{g.s(string.digits, 13)}-{g.s(HEX, 32)}",
                f"xapp-1-A{g.s(UPPER_ALNUM, 10)}-{g.s(string.digits, 13)}-{g.s(HEX, 64)}",
            ]
        )
        line = g.pick([f"SLACK_BOT_TOKEN={token}", f"slack_app_token: {token}", f"client = WebClient(token='{token}')"])
        return line, (token,)

    @add("webhook-url")
    def _() -> tuple[str, tuple[str, ...]]:
        if g.rng.random() < 0.5:
            secret = g.s(ALNUM, 24)
            url = f"https://hooks.slack.com/services/T{g.s(UPPER_ALNUM, 9)}/B{g.s(UPPER_ALNUM, 10)}/{secret}"
        else:
            secret = g.s(B64URL, 68)
            url = f"https://discord.com/api/webhooks/{g.s(string.digits, 19)}/{secret}"
        line = g.pick(
            [
                f"WEBHOOK_URL={url}",
                f"curl -X POST -H 'Content-type: application/json' --data '{{\"text\":\"deploy done\"}}' {url}",
                f'  notify_url: "{url}"',
            ]
        )
        return line, (secret,)

    @add("openai-key")
    def _() -> tuple[str, tuple[str, ...]]:
        key = g.pick(
            [
                "sk-proj-" + g.s(B64URL, 156),
                "sk-" + g.s(ALNUM, 20) + "T3BlbkFJ" + g.s(ALNUM, 20),
                "sk-svcacct-" + g.s(B64URL, 120),
            ]
        )
        line = g.pick([f"export OPENAI_API_KEY={key}", f'client = OpenAI(api_key="{key}")', f"OPENAI_API_KEY: {key}"])
        return line, (key,)

    @add("anthropic-key")
    def _() -> tuple[str, tuple[str, ...]]:
        key = "sk-ant-" + g.pick(["api03-", "admin01-"]) + g.s(B64URL, 93) + "AA"
        line = g.pick(
            [
                f"ANTHROPIC_API_KEY={key}",
                f"curl https://api.anthropic.com/v1/messages -H 'x-api-key: {key}'",
                f'anthropic.Anthropic(api_key="{key}")',
            ]
        )
        return line, (key,)

    @add("stripe-key")
    def _() -> tuple[str, tuple[str, ...]]:
        key = g.pick(["sk_live_", "rk_live_", "sk_test_"]) + g.s(ALNUM, g.rng.choice([24, 99]))
        line = g.pick(
            [
                f"STRIPE_SECRET_KEY={key}",
                f"stripe.api_key = '{key}'",
                f"curl https://api.stripe.com/v1/charges -u {key}:",
            ]
        )
        return line, (key,)

    @add("google-key")
    def _() -> tuple[str, tuple[str, ...]]:
        key = g.pick(["AIza" + g.s(B64URL, 35), "GOCSPX-" + g.s(B64URL, 28), "ya29." + g.s(B64URL, 120)])
        line = g.pick(
            [
                f"GOOGLE_API_KEY={key}",
                f"https://maps.googleapis.com/maps/api/geocode/json?address=Paris&key={key}",
                f'  "client_secret": "{key}",',
            ]
        )
        return line, (key,)

    @add("jwt")
    def _() -> tuple[str, tuple[str, ...]]:
        token = g.jwt()
        line = g.pick(
            [
                f"Authorization: Bearer {token}",
                f"set-cookie: session={token}; HttpOnly; Path=/",
                f"id_token={token}",
                f"decoded {token} -> sub=42",
            ]
        )
        return line, tuple(token.split("."))

    @add("bearer-opaque")
    def _() -> tuple[str, tuple[str, ...]]:
        token = g.s(ALNUM + "._-", g.rng.randint(24, 64))
        line = g.pick(
            [
                f"curl -H 'Authorization: Bearer {token}' https://api.internal/v1/jobs",
                f"> Authorization: Bearer {token}",
                f'requests.get(url, headers={{"Authorization": "Bearer {token}"}})',
            ]
        )
        return line, (token,)

    @add("basic-auth")
    def _() -> tuple[str, tuple[str, ...]]:
        creds = base64.b64encode(f"deploy:{g.password()}".encode()).decode()
        line = g.pick(
            [f"Authorization: Basic {creds}", f"> authorization: basic {creds}", f'-H "Authorization: Basic {creds}"']
        )
        return line, (creds.rstrip("="),)

    @add("private-key-clipped")
    def _() -> tuple[str, tuple[str, ...]]:
        kind = g.pick(["RSA ", "OPENSSH ", "EC ", "", "ENCRYPTED "])
        lines = g.pem_lines(g.rng.randint(3, 8))
        tail = g.pick(["", "\n... (output truncated)", "\n[... 1843 more characters]"])
        text = f"$ cat ~/.ssh/id_rsa\n-----BEGIN {kind}PRIVATE KEY-----\n" + "\n".join(lines) + tail
        return text, tuple(lines)

    @add("private-key-json")
    def _() -> tuple[str, tuple[str, ...]]:
        lines = g.pem_lines(4)
        body = "\\n".join(lines)
        text = (
            '{"type": "service_account", "project_id": "acme-prod", "private_key": '
            f'"-----BEGIN PRIVATE KEY-----\\n{body}\\n-----END PRIVATE KEY-----\\n", "client_email": "ci@acme.iam"}}'
        )
        return text, tuple(lines)

    @add("pgp-private-key")
    def _() -> tuple[str, tuple[str, ...]]:
        lines = g.pem_lines(g.rng.randint(4, 9))
        end = g.pick(["\n=" + g.s(B64, 4) + "\n-----END PGP PRIVATE KEY BLOCK-----", ""])
        text = (
            "gpg --export-secret-keys --armor me@example.com\n-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n"
            + "\n".join(lines)
            + end
        )
        return text, tuple(lines)

    @add("url-password")
    def _() -> tuple[str, tuple[str, ...]]:
        pw = g.password(symbols="!#%^*-_=+.@/")
        user = g.pick(["app", "admin", "deploy", "postgres", ""])
        url = g.pick(
            [
                f"postgres://{user}:{pw}@{g.host()}:5432/app",
                f"redis://:{pw}@{g.host()}:6379/0",
                f"mongodb+srv://{user}:{pw}@cluster0.ab1cd.mongodb.net/test?retryWrites=true",
                f"amqp://{user}:{pw}@{g.host()}:5672/%2F",
                f"https://{user}:{pw}@git.example.com/acme/repo.git",
            ]
        )
        line = g.pick(
            [f"DATABASE_URL={url}", f"git remote add backup {url}", f"connecting to {url} ... ok", f'  url: "{url}"']
        )
        return line, (pw,)

    @add("curl-user")
    def _() -> tuple[str, tuple[str, ...]]:
        pw = g.password()
        line = g.pick(
            [
                f"curl -u admin:{pw} https://nexus.example.com/service/rest/v1/repositories",
                f"curl -sS --user deploy:{pw} -X PUT --data-binary @build.tgz https://artifacts.local/upload",
                f"curl -fsSL -u 'ci-bot:{pw}' https://jenkins.local/job/build/api/json",
            ]
        )
        return line, (pw,)

    @add("mysql-p")
    def _() -> tuple[str, tuple[str, ...]]:
        pw = g.password(symbols="!#%^*-_=+.")
        line = g.pick(
            [
                f"mysql -u root -p{pw} -h 127.0.0.1 app",
                f"mysqldump --single-transaction -uroot -p{pw} shop > shop.sql",
                f"docker exec -it db mysql -uapp -p{pw} -e 'SHOW TABLES' app",
                f"mysqladmin -u root -p'{pw}' status",
            ]
        )
        return line, (pw,)

    @add("password-flag")
    def _() -> tuple[str, tuple[str, ...]]:
        pw = g.password()
        line = g.pick(
            [
                f"mongosh --username admin --password {pw} --authenticationDatabase admin",
                f"az login --username me@example.com --password {pw}",
                f"keytool -importkeystore -srckeystore a.p12 -storepass {pw}",
                f"influx auth create --org acme --token {pw}",
                f"./manage.py createsuperuser --password={pw}",
                f"openssl pkcs12 -in cert.p12 -passin pass:{pw} -nokeys",
                f"sshpass -p {pw} ssh deploy@{g.host()}",
                f"redis-cli -h {g.host()} -a {pw} PING",
            ]
        )
        return line, (pw,)

    @add("docker-login")
    def _() -> tuple[str, tuple[str, ...]]:
        pw = g.pick([g.password(), "dckr_pat_" + g.s(B64URL, 27)])
        line = g.pick(
            [
                f"docker login -u acme -p {pw} registry.example.com",
                f"docker login registry.gitlab.com --username ci --password {pw}",
                f"podman login -u me -p {pw} quay.io",
            ]
        )
        return line, (pw,)

    @add("secret-key-env")
    def _() -> tuple[str, tuple[str, ...]]:
        value = g.pick([g.s(ALNUM + "!@#$%^&*(-_=+)", 50), g.s(HEX, 64), g.s(B64, 44)])
        name = g.pick(
            [
                "SECRET_KEY",
                "DJANGO_SECRET_KEY",
                "FLASK_SECRET_KEY",
                "SECRET_KEY_BASE",
                "APP_SECRET_KEY",
                "AWS_SECRET_KEY",
            ]
        )
        line = g.pick([f"{name}={value}", f"export {name}='{value}'", f'{name} = "{value}"', f"  {name}: {value}"])
        return line, (value,)

    @add("encryption-key")
    def _() -> tuple[str, tuple[str, ...]]:
        value = g.pick([g.s(HEX, 64), g.s(B64, 44), "base64:" + g.s(B64, 44)])
        name = g.pick(["ENCRYPTION_KEY", "DB_ENCRYPTION_KEY", "MASTER_KEY", "APP_KEY", "SIGNING_KEY", "JWT_SECRET"])
        line = g.pick([f"{name}={value}", f"{name.lower()}: {value}", f'"{name.lower()}": "{value}"'])
        return line, (value.removeprefix("base64:"),)

    @add("token-env")
    def _() -> tuple[str, tuple[str, ...]]:
        value = g.s(ALNUM + "-_", g.rng.randint(24, 48))
        name = g.pick(
            [
                "NPM_TOKEN",
                "CI_DEPLOY_TOKEN",
                "SENTRY_AUTH_TOKEN",
                "VAULT_TOKEN",
                "CLOUDFLARE_API_TOKEN",
                "DISCORD_BOT_TOKEN",
            ]
        )
        line = g.pick([f"{name}={value}", f"env: {name}={value}", f"  - {name}={value}", f'{name}: "{value}"'])
        return line, (value,)

    @add("password-assignment")
    def _() -> tuple[str, tuple[str, ...]]:
        pw = g.password()
        line = g.pick(
            [
                f"DB_PASSWORD={pw}",
                f"  password: {pw}",
                f'"password": "{pw}",',
                f"spring.datasource.password={pw}",
                f"POSTGRES_PASSWORD: '{pw}'",
                f"<password>{pw}</password>",
                f"$dbPassword = '{pw}';",
                f'smtp_pass = "{pw}"',
            ]
        )
        return line, (pw,)

    @add("long-value")
    def _() -> tuple[str, tuple[str, ...]]:
        value = g.s(B64, g.rng.randint(600, 6000))
        name = g.pick(["GOOGLE_CREDENTIALS_B64", "KUBE_TOKEN", "CLIENT_SECRET", "SSH_PRIVATE_KEY_B64"])
        line = g.pick([f"{name}={value}", f'{name}="{value}"'])
        return line, (value,)

    @add("quoted-value")
    def _() -> tuple[str, tuple[str, ...]]:
        value = " ".join(g.s(string.ascii_lowercase, g.rng.randint(4, 8)) for _ in range(4)) + g.s(string.digits, 2)
        line = g.pick(
            [
                f'WIFI_PASSWORD="{value}"',
                f"passphrase: '{value}'",
                f'{{"secret": "{value}", "user": "ada"}}',
                f'"{{\\"password\\": \\"{value}\\"}}"',
            ]
        )
        return line, (value,)

    @add("other-vendor-token")
    def _() -> tuple[str, tuple[str, ...]]:
        token = g.pick(
            [
                "npm_" + g.s(ALNUM, 36),
                "pypi-AgEIcHlwaS5vcmc" + g.s(B64URL, 120),
                "SG." + g.s(B64URL, 22) + "." + g.s(B64URL, 43),
                "AC" + g.s(HEX, 32),
                "dop_v1_" + g.s(HEX, 64),
                "hvs." + g.s(B64URL, 90),
                "dckr_pat_" + g.s(B64URL, 27),
                f"{g.s(string.digits, 10)}:AA{g.s(B64URL, 33)}",
                "AGE-SECRET-KEY-1" + g.s("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", 58),
                "shpat_" + g.s(HEX, 32),
                "dapi" + g.s(HEX, 32),
                "sntrys_" + g.s(B64URL, 80),
                "gsk_" + g.s(ALNUM, 52),
                g.s(LOWER_ALNUM, 32) + "-us" + str(g.rng.randint(1, 21)),
            ]
        )
        line = g.pick(
            [f"found {token} in .env.backup", f"token={token}", f"  - value: {token}", f"Using credentials {token}"]
        )
        return line, (token,)

    @add("hive-join-code-pasted")
    def _() -> tuple[str, tuple[str, ...]]:
        from hivemind_app.trust.hivekey import HiveKey

        code = HiveKey(bytes(g.rng.getrandbits(8) for _ in range(32))).join_code()
        cut = g.rng.randint(6, len(code) - 6)
        pasted = g.pick(
            [
                code,
                code[:cut] + "\n" + code[cut:],  # wrapped by the terminal
                code[:cut] + "\n  " + code[cut:],  # copied from `hive init`'s indented line
                code.replace("-", " "),  # spaces for the dashes
                code.removeprefix("hive-").upper(),
            ]
        )
        line = g.pick([f"join code: {pasted}", f"$ hivemind-app hive join\njoin code:\n  {pasted}", f"{pasted}\n"])
        return line, tuple(part for part in pasted.split() if len(part) >= 10) or (pasted,)

    return k


def secret_samples(seed: int, per_kind: int) -> list[Sample]:
    g = _Gen(random.Random(seed))
    kinds = _kinds(g)
    return [make() for make in kinds.values() for _ in range(per_kind)]


# --- clean notes --------------------------------------------------------------------------------------

STDLIB_MODULES = (
    "json",
    "os",
    "os.path",
    "re",
    "pathlib",
    "subprocess",
    "collections",
    "itertools",
    "functools",
    "typing",
    "asyncio",
    "http.client",
    "urllib.parse",
    "urllib.request",
    "smtplib",
    "ftplib",
    "getpass",
    "hashlib",
    "hmac",
    "secrets",
    "ssl",
    "base64",
    "logging",
    "argparse",
    "shutil",
    "tempfile",
    "sqlite3",
    "email.message",
    "csv",
    "datetime",
    "uuid",
    "random",
    "string",
    "textwrap",
    "zipfile",
    "tarfile",
    "unittest",
    "inspect",
    "dataclasses",
    "enum",
    "contextlib",
    "socket",
    "threading",
    "configparser",
    "netrc",
    "imaplib",
    "poplib",
    "xmlrpc.client",
    "http.cookies",
    "http.cookiejar",
    "wsgiref.util",
    "binascii",
    "codecs",
    "pickle",
    "shelve",
    "gzip",
    "io",
    "struct",
    "time",
    "calendar",
)


def stdlib_docstrings() -> list[str]:
    """Paragraphs of docstrings of the standard library's public functions and classes."""
    import importlib

    notes: list[str] = []
    for name in STDLIB_MODULES:
        module = importlib.import_module(name)
        with warnings.catch_warnings():  # typing.io and typing.re say they are deprecated when looked at
            warnings.simplefilter("ignore", DeprecationWarning)
            members = sorted(vars(module).items())
            docs = [
                inspect.getdoc(obj)
                for attr, obj in members
                if not attr.startswith("_")
                and (inspect.isfunction(obj) or inspect.isclass(obj) or inspect.isbuiltin(obj))
            ]
        for doc in docs:
            if not doc:
                continue
            for para in doc.split("\n\n"):
                para = para.strip()
                if 40 <= len(para) <= 1500:
                    notes.append(para)
    return list(dict.fromkeys(notes))


def repo_paragraphs() -> list[str]:
    """Paragraphs of this repository's README and docs, minus those about the redactor itself."""
    notes: list[str] = []
    for path in [ROOT / "README.md", ROOT / "bench" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        if not path.exists():
            continue
        for para in path.read_text().split("\n\n"):
            para = para.strip()
            if 40 <= len(para) <= 1500 and not any(w in para for w in ("REDACTED", "Redaction", "redactor")):
                notes.append(para)
    return notes


def code_notes(rng: random.Random, n: int) -> list[str]:
    """Lines a session shows that carry hashes, ids and base64 but no secret, and must come through as is."""

    def h(k: int) -> str:
        return "".join(rng.choice(HEX) for _ in range(k))

    def b64(k: int) -> str:
        return base64.b64encode(rng.randbytes(k)).decode()

    templates: list[Callable[[], str]] = [
        lambda: f"commit {h(40)}\nAuthor: Ada <ada@example.com>\n\n    Fix the flaky reconnect test",
        lambda: f"git checkout -b fix/retry {h(7)} && git cherry-pick {h(12)}",
        lambda: f"https://github.com/acme/api/commit/{h(40)}",
        lambda: f"session_id = '{uuid.UUID(int=rng.getrandbits(128), version=4)}'",
        lambda: f'{{"id": "{uuid.UUID(int=rng.getrandbits(128), version=4)}", "status": "done", "attempts": 3}}',
        lambda: f"image: python@sha256:{h(64)}",
        lambda: f"integrity sha512-{b64(64)}",
        lambda: f'assert hashlib.sha256(b"hello").hexdigest() == "{h(64)}"',
        lambda: f'data = base64.b64decode("{b64(rng.randint(12, 90))}")',
        lambda: f"expected_digest = '{h(32)}'  # md5 of the fixture",
        lambda: f"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{b64(32)[:43]} ada@laptop",
        lambda: f"The key fingerprint is SHA256:{b64(32).rstrip('=')} ada@laptop",
        lambda: f'etag: W/"{h(32)}"',
        lambda: f'cache_key = f"user:{{uid}}:{h(8)}"',
        lambda: f"ETag {h(16)}, request-id req_{h(24)}",
        lambda: f"data:image/png;base64,{b64(rng.randint(60, 300))}",
        lambda: "max_tokens=4096, temperature=0.2, top_p=0.9",
        lambda: "tokenizer.pad_token = tokenizer.eos_token",
        lambda: 'eos_token = "</s>"',
        lambda: "password = getpass.getpass('Password: ')",
        lambda: "def login(self, user: str, password: str) -> Session:",
        lambda: 'token = os.environ["GITHUB_TOKEN"]',
        lambda: "api_key = settings.OPENAI_API_KEY",
        lambda: 'headers = {"Authorization": f"Bearer {token}"}',
        lambda: "PASSWORD_MIN_LENGTH = 12",
        lambda: "secret_key_path: ~/.config/hivemind/key.pem",
        lambda: f"ssh -p 2222 me@{rng.choice(['nas.local', 'build-2'])}",
        lambda: "docker run --rm -p 8080:80 -u 1000:1000 -v $PWD:/src nginx:1.27",
        lambda: "mkdir -p build && cmake -S . -B build && git push -u origin main",
        lambda: "mysql -h db.internal -u app -p app_production",
        lambda: "curl -u admin https://nexus.example.com/ (curl asks for the password)",
        lambda: "open http://localhost:5173/@vite/client and http://localhost:8000/@fs/src/main.ts",
        lambda: "REDIS_URL=redis://localhost:6379/0 DATABASE_URL=postgres://localhost/app pytest -x",
        lambda: "      GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}",
        lambda: "  password: ${DB_PASSWORD}",
        lambda: 'echo "$REGISTRY_TOKEN" | docker login ghcr.io -u acme --password-stdin',
        lambda: "Send the bearer token in the Authorization header; see docs/auth.md.",
        lambda: "export PWD=/home/me/src/hivemind-app OLDPWD=/home/me",
        lambda: "primary_key=True, index=True, sort_key=lambda row: row.created",
        lambda: f"Fixed in {h(10)}: the token bucket refilled twice per tick",
        lambda: "the password: field is optional when an SSH key is configured",
        lambda: f"request {uuid.UUID(int=rng.getrandbits(128), version=4)} took 182 ms (p99 410 ms)",
        lambda: f"wheel sha256={h(64)} size=48213",
        lambda: f"pip install --require-hashes -r req.txt  # --hash=sha256:{h(64)}",
        lambda: "key = (project, path)  # dedup key for the import",
        lambda: "if not api_key: raise SystemExit('set OPENAI_API_KEY first')",
        lambda: "token_count = len(tokenizer.encode(text))",
        lambda: "git clone git@github.com:acme/api.git && cd api",
        lambda: "SECRET_KEY = os.environ.get('SECRET_KEY')",
        lambda: "jwt.decode(token, key=public_key, algorithms=['RS256'])",
        lambda: f"X-Request-Id: {h(32)}",
        lambda: "password_hash = bcrypt.hashpw(password.encode(), bcrypt.gensalt())",
        lambda: "Use --password-file /run/secrets/db_password instead of --password on the command line.",
        lambda: f"layer {h(12)}: Pull complete, Digest: sha256:{h(64)}",
    ]
    return [rng.choice(templates)() for _ in range(n)]


def clean_notes(seed: int, n: int) -> list[str]:
    """`n` secret-free notes: about 45% standard-library docstrings, 15% repo docs, 40% code lines."""
    rng = random.Random(seed)
    docs = stdlib_docstrings()
    repo = repo_paragraphs()
    n_docs = min(len(docs), round(n * 0.45))
    n_repo = min(len(repo), round(n * 0.15))
    picked = rng.sample(docs, n_docs) + rng.sample(repo, n_repo)
    return picked + code_notes(rng, n - len(picked))


# --- measuring ----------------------------------------------------------------------------------------


def leaked(sample: Sample, redacted: str) -> bool:
    """The secret, or any 10 characters of it, survived."""
    for secret in sample.secrets:
        if len(secret) <= 10:
            if secret in redacted:
                return True
            continue
        if any(secret[i : i + 10] in redacted for i in range(len(secret) - 9)):
            return True
    return False


def leak_report(redactor: Redactor, samples: list[Sample]) -> dict[str, tuple[int, int, list[str]]]:
    """kind -> (samples, leaked, the leaked texts after redaction)."""
    out: dict[str, tuple[int, int, list[str]]] = {}
    for sample in samples:
        total, bad, examples = out.get(sample.kind, (0, 0, []))
        redacted = redactor(sample.text)
        if leaked(sample, redacted):
            bad += 1
            examples.append(redacted)
        out[sample.kind] = (total + 1, bad, examples)
    return out


def false_positives(redactor: Redactor, notes: list[str]) -> list[tuple[str, str]]:
    return [(note, out) for note in notes if (out := redactor(note)) != note]


def blob(samples: list[Sample], notes: list[str], size: int = 1 << 20) -> str:
    parts = [s.text for s in samples] + notes
    text = "\n".join(parts)
    return (text * (size // max(1, len(text)) + 1))[:size]


def seconds_per_mb(redactor: Redactor, text: str, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        redactor(text)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * (1 << 20) / len(text.encode())


def spaced_join_code_search(text: str, repeat: int) -> float:
    """Seconds per MB of the search for join codes pasted with whitespace alone (the `spaced-join-code` rule)."""
    from hivemind_app.trust import redact as new
    from hivemind_app.trust.checks import spaced_join_code_spans
    from hivemind_app.trust.rules import RULES

    index = next(i for i, rule in enumerate(RULES) if rule.check == "spaced-join-code")
    runs = new._pattern(index)
    return seconds_per_mb(lambda t: str(list(spaced_join_code_spans(runs, t))), text, repeat)


def prose_megabyte(notes: list[str], size: int = 1 << 20) -> str:
    """The search's worst case: the clean notes as words and blanks only (every other character a blank),
    so each run of code characters is as long as it gets and every word start is tried."""
    text = "".join(c if c.isascii() and (c.isalpha() or c in "234567-\n") else " " for c in "\n".join(notes))
    return (text * (size // max(1, len(text)) + 1))[:size]


_HOOK_TEXT = "export GITHUB_TOKEN=ghp_" + "a1B2c3D4e5" * 4 + " && git push https://me:hunter22@github.com/me/x.git"


def import_cost(module: str, runs: int = 7, path: str | None = None) -> dict[str, float]:
    """In fresh interpreters (median of `runs`): what importing `module` adds (`-X importtime`, the module and
    everything it pulls in), and the first `redact` of a hook-sized text (which compiles the rules it needs).
    """
    code = (
        f"import time; t = time.perf_counter(); import {module} as r; t1 = time.perf_counter(); "
        f"r.redact({_HOOK_TEXT!r}); print((t1 - t) * 1000, (time.perf_counter() - t1) * 1000)"
    )
    cumulative, first = [], []
    for _ in range(runs):
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", code],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONPATH": path} if path else None,
        )
        for line in proc.stderr.splitlines():
            fields = line.split("|")
            if len(fields) == 3 and fields[2].strip() == module:
                cumulative.append(int(fields[1]) / 1000)
        first.append(float(proc.stdout.split()[1]))
    return {"import_ms": round(statistics.median(cumulative), 1), "first_redact_ms": round(statistics.median(first), 2)}


def old_redactor_source() -> tuple[str, str]:
    """(commit, source) of the previous redactor: the newest commit where hivemind_app/redact.py exists."""
    log = subprocess.run(
        ["git", "log", "--format=%H", "--", "hivemind_app/redact.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    for commit in log.stdout.split():
        shown = subprocess.run(
            ["git", "show", f"{commit}:hivemind_app/redact.py"], cwd=ROOT, capture_output=True, text=True
        )
        if shown.returncode == 0:
            return commit, shown.stdout
    raise SystemExit("no commit has hivemind_app/redact.py")


def load_old_redactor() -> tuple[str, ModuleType]:
    commit, source = old_redactor_source()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "old_redact.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location("old_redact", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return commit[:12], module


def _emit_all(
    name: str, redactor: Redactor, samples: list[Sample], notes: list[str], text: str, args: argparse.Namespace
) -> None:
    report = leak_report(redactor, samples)
    total = sum(t for t, _, _ in report.values())
    bad = sum(b for _, b, _ in report.values())
    for kind, (t, b, examples) in report.items():
        emit_line("redact", "leaks", redactor=name, kind=kind, samples=t, leaked=b, leak_rate=round(b / t, 4))
        if args.show:
            for example in examples[:3]:
                print(f"  LEAK {name} {kind}: {example[:300]!r}", file=sys.stderr)
    emit_line("redact", "leaks_total", redactor=name, samples=total, leaked=bad, leak_rate=round(bad / total, 4))
    fps = false_positives(redactor, notes)
    emit_line(
        "redact",
        "false_positives",
        redactor=name,
        clean_notes=len(notes),
        altered=len(fps),
        false_positive_rate=round(len(fps) / len(notes), 4),
    )
    if args.show:
        for before, after in fps[:40]:
            print(f"  FP {name}: {before[:200]!r}\n      -> {after[:200]!r}", file=sys.stderr)
    s = seconds_per_mb(redactor, text, args.repeat)
    emit_line(
        "redact",
        "speed",
        redactor=name,
        mb=round(len(text.encode()) / (1 << 20), 2),
        s_per_mb=round(s, 3),
        mb_per_s=round(1 / s, 2),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--per-kind", type=int, default=12, help="fake secrets per kind")
    parser.add_argument("--clean", type=int, default=600, help="clean notes")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs over the 1 MB blob (median)")
    parser.add_argument("--show", action="store_true", help="print leaks and false positives to stderr")
    args = parser.parse_args()

    from hivemind_app.trust import redact as new

    samples = secret_samples(args.seed, args.per_kind)
    notes = clean_notes(args.seed, args.clean)
    text = blob(samples, notes)
    commit, old = load_old_redactor()
    emit_line(
        "redact",
        "corpus",
        secrets=len(samples),
        kinds=len({s.kind for s in samples}),
        clean_notes=len(notes),
        old_commit=commit,
    )
    _emit_all("old", old.redact, samples, notes, text, args)
    _emit_all("new", new.redact, samples, notes, text, args)
    for name, sample in (("blob", text), ("prose", prose_megabyte(notes))):
        s = spaced_join_code_search(sample, args.repeat)
        emit_line("redact", "spaced_join_code_search", redactor="new", text=name, s_per_mb=round(s, 3))
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "old_redact.py").write_text(old_redactor_source()[1])
        emit_line("redact", "import", redactor="old", module="old_redact", **import_cost("old_redact", path=tmp))
    emit_line(
        "redact",
        "import",
        redactor="new",
        module="hivemind_app.trust.redact",
        **import_cost("hivemind_app.trust.redact"),
    )


def iter_kinds() -> Iterator[str]:
    yield from _kinds(_Gen(random.Random(0)))


if __name__ == "__main__":
    main()
