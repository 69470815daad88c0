"""The redactor's rules, as data: what a secret looks like, which keywords must occur for a rule to run.

Sources, in order of priority (when two rules' matches overlap, the union is redacted under the kind of the
earlier rule):

1. detect-secrets (Yelp, Apache-2.0; its license is `detect-secrets.LICENSE` beside this file): every regex in
   its plugins' denylists, version 1.5.0, is listed below (its limits and names in `upstream.py`), either
   rewritten for Python's backtracking `re`
   (each `+`/`*` becomes a bounded, mostly possessive repeat; a boundary in front so a scan cannot start
   inside a token) and named in the rule's `upstream`, or named in `upstream.COVERED_UPSTREAM` with the rule that
   covers it or why it is dropped. tests/trust/test_rules.py checks this list against the installed
   package, so an upgrade that adds a plugin fails until the plugin is accounted for. Its entropy limits
   (base64 4.5, hex 3.0) and its KeywordDetector's secret-ish names feed the assignment check in
   `trust.redact`.
2. Token formats their vendors publish (a fixed prefix and a body of known alphabet and length), for what
   detect-secrets lacks: Hugging Face, Slack app and config tokens, Anthropic/OpenAI project keys, Stripe's
   long keys, Vault, DigitalOcean, npm, Docker Hub, ...
3. Context rules: private key blocks (also clipped ones, without their END line), webhook URLs with their
   secret path, passwords in URLs, `Authorization` headers, credentials on command lines (`curl -u`,
   `mysql -pPW`, `--password X`, `docker login -p X`, `sshpass -p`, `redis-cli -a`, `openssl -pass pass:`)
   and `NAME=value` / `"name": "value"` assignments whose name is secret-ish.

Every repeat is bounded and no rule can rescan a long stretch after failing on it, so a megabyte is
redacted in linear time (tests/trust/test_redact.py times hostile inputs).
"""

from __future__ import annotations


class Rule:
    """One kind of secret.

    `pattern` is a Python regex; the secret is its group `secret` (or `dq`/`sq`, the inside of a quoted
    argument) when one matched, else the whole match. Patterns start with a literal wherever they can, which
    `re` finds fast; `boundary` (a character class) must then not precede the match, and `before`
    (class, min, max) extends the secret back over min to max characters of that class (a token's body in
    front of its fixed part, as in Mailchimp's `<32 chars>-us6`). For short texts a rule runs only when one
    of `keywords` (lower case) occurs in the lower-cased text. `check` names a test in trust.redact that a
    match must pass (entropy, placeholders, ...); `upstream` holds the detect-secrets regexes it rewrites.
    """

    __slots__ = ("before", "boundary", "check", "keywords", "kind", "pattern", "upstream")

    def __init__(
        self,
        kind: str,
        pattern: str,
        keywords: tuple[str, ...] = (),
        *,
        check: str = "",
        boundary: str = "",
        before: tuple[str, int, int] | None = None,
        upstream: tuple[str, ...] = (),
    ) -> None:
        self.kind = kind
        self.pattern = pattern
        self.keywords = keywords
        self.check = check
        self.boundary = boundary
        self.before = before
        self.upstream = upstream

    def __repr__(self) -> str:
        return f"Rule({self.kind!r}, {self.pattern[:40]!r}...)"


# what a token is made of: a token ends where these characters end, and starts where none precedes it
TOKEN = "A-Za-z0-9_-"
_B = r"(?![A-Za-z0-9_-])"


def _token(kind: str, body: str, *keywords: str, upstream: tuple[str, ...] = ()) -> Rule:
    # letters and digits only: a key glued to a name by - or _ (`token-ghp_...`, `my_sk-...`) is still a key
    return Rule(kind, body, keywords, boundary="A-Za-z0-9", upstream=upstream)


# a private key's armour: base64 lines, blank lines, PEM/PGP headers; `\n` escapes of a key in JSON
_KEY_BODY = (
    r"(?:(?:Proc-Type|DEK-Info|Version|Comment|Hash|Charset):[^\r\n\\]{0,256}+"
    r"|[A-Za-z0-9+/= \t\r\n]|\\[rn]){0,32768}+"
)
# found from "BEGIN " (a literal; its leading dashes are taken into the secret by the "pem" check)
_KEY_BEGIN = r"BEGIN (?:[A-Z0-9]{1,20} ){0,3}PRIVATE KEY(?: BLOCK)? ?-{4,5}"
_KEY_END = r"(?:-{4,5} ?END (?:[A-Z0-9]{1,20} ){0,3}PRIVATE KEY(?: BLOCK)? ?-{4,5})?"

# the value of a credential on a command line: quoted, or up to the next blank
_ARG = r"(?:\"(?P<dq>[^\"\n]{1,1024}+)\"|'(?P<sq>[^'\n]{1,1024}+)'|(?P<secret>[^\s\"']{1,1024}+))"
# up to 16 other arguments between a command and its credential flag
_ARGS = r"(?:[ \t]{1,8}[^\s]{1,256}+){0,16}?"


# commands whose `login` takes `-p`/`--password`
_LOGIN_COMMANDS = ("docker", "podman", "nerdctl", "buildah", "skopeo", "oras", "crane", "cosign", "registry")


def _ci(word: str) -> str:
    """`word` matched in any case, as character classes (faster in `re` than an (?i) pattern)."""
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in word)


# NAME=value: the separator, found first (it is rare and a literal); trust.redact reads the name in front
ASSIGNMENT_SEPARATOR = r"[:=](?:" + "|".join(f"(?<=[A-Za-z0-9_\"'][ \\t]{{{n}}}[:=])" for n in range(9)) + r")[=>]{0,2}"
# the value after it: quoted (also `\"` inside JSON strings), an unterminated quote (to the end of the line),
# or bare: up to a blank for an environment variable (NAME in capitals), up to punctuation in code
_QUOTED = (
    r"[ \t]{0,8}(?P<value>\"(?:[^\"\\\n]|\\[^\"\n]){0,65536}+\"|'(?:[^'\\\n]|\\[^'\n]){0,65536}+'"
    r"|`[^`\n]{0,65536}+`|\\\"(?:[^\\\n]|\\[^\"\n]){0,65536}+\\\"|[\"'`][^\n]{1,65536}+"
)
ASSIGNMENT_VALUE_ENV = _QUOTED + r"|[^\s\"'`]{1,65536}+)"
ASSIGNMENT_VALUE_CODE = _QUOTED + r"|[^\s\"'`,;&<>(){}\[\]]{1,65536}+)"
# a name ends in one of these for the separator to be worth a look (trust.redact then reads its words)
ASSIGNMENT_STEMS = (
    "pass",
    "word",
    "wd",
    "pw",
    "phrase",
    "secret",
    "secrets",
    "token",
    "key",
    "auth",
    "salt",
    "sig",
    "signature",
    "cookie",
    "credential",
    "credentials",
    "contrasena",
    "contraseña",
    "passwort",
    "b64",
    "base64",
    "base",
    "hex",
    "value",
    "hmac",
    "raw",
    "str",
    "enc",
    "val",
    "plain",
    "plaintext",
    "encrypted",
)

RULES: tuple[Rule, ...] = (
    # --- keys ---
    Rule("private-key", _KEY_BEGIN + _KEY_BODY + _KEY_END, ("private key",), check="pem"),
    Rule(
        "private-key",
        r"PuTTY-User-Key-File-[23]:[^\n]{0,256}+"
        r"(?:\r?\n[A-Za-z-]{1,32}: ?[^\n]{0,512}+|\r?\n[A-Za-z0-9+/=]{1,128}+){0,512}+",
        ("putty-user-key-file",),
    ),
    _token("age-secret-key", r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}", "age-secret-key-1"),
    # --- cloud and forge tokens ---
    Rule(
        "aws-key",
        r"(?:A3T[A-Z0-9]|ABIA|ACCA|AKIA|ASIA)[0-9A-Z]{16}\b",
        ("a3t", "abia", "acca", "akia", "asia"),
        boundary="A-Za-z0-9",
        upstream=(r"(?:A3T[A-Z0-9]|ABIA|ACCA|AKIA|ASIA)[0-9A-Z]{16}",),
    ),
    # this app's own join code (trust/hivekey.py): the hive key itself, in every form `parse_join_code` takes
    # (any case, dashes anywhere or none); without its `hive-` prefix only where its checksum holds (a bare
    # run of 58 letters is rarely a code)
    _token("hive-key", _ci("hive") + r"-(?:[A-Za-z2-7]-?){57}[A-Za-z2-7](?![A-Za-z0-9])", "hive-"),
    Rule("hive-key", r"(?<![A-Za-z0-9_-])[A-Za-z2-7](?:-?[A-Za-z2-7]){57}(?![A-Za-z0-9_-])", check="join-code"),
    # ... and pasted with whitespace inside (wrapped by a terminal, indented, spaces for its dashes): a run of
    # code characters, dashes and whitespace, searched from each word start by `checks.spaced_join_code_spans`
    # (only where the checksum holds)
    # (from a run's start only: a try inside a run shorter than 58 would rescan it; a run past the bound is
    # read on to its end by the check, so a code after the first MiB of one run is found too)
    Rule("hive-key", r"(?<![-\sA-Za-z2-7])[-\sA-Za-z2-7]{58,1048576}+", check="spaced-join-code"),
    _token(
        "github-token",
        r"(?:gh[pousr]_[A-Za-z0-9_]{36,255}+|github_pat_[A-Za-z0-9_]{22,255}+)",
        "ghp_",
        "gho_",
        "ghu_",
        "ghs_",
        "ghr_",
        "github_pat_",
        upstream=(r"(ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9_]{36}",),
    ),
    _token(
        "gitlab-token",
        r"(?:gl(?:pat|dt|ft|soat|rt|cbt|imt|ptt|agent|oas|ffct|sa)-|GR1348941)"
        r"[A-Za-z0-9_-]{20,1024}+(?:\.[0-9a-z]{2}\.[0-9a-z]{7,9})?",
        "glpat-",
        "gldt-",
        "glft-",
        "glsoat-",
        "glrt-",
        "glcbt-",
        "glimt-",
        "glptt-",
        "glagent-",
        "gloas-",
        "glffct-",
        "glsa-",
        "gr1348941",
        upstream=(
            r"(glpat|gldt|glft|glsoat|glrt)-[A-Za-z0-9_\-]{20,50}(?!\w)",
            r"GR1348941[A-Za-z0-9_\-]{20,50}(?!\w)",
            r"glcbt-([0-9a-fA-F]{2}_)?[A-Za-z0-9_\-]{20,50}(?!\w)",
            r"glimt-[A-Za-z0-9_\-]{25}(?!\w)",
            r"glptt-[A-Za-z0-9_\-]{40}(?!\w)",
            r"glagent-[A-Za-z0-9_\-]{50,1024}(?!\w)",
            r"gloas-[A-Za-z0-9_\-]{64}(?!\w)",
        ),
    ),
    _token("huggingface-token", r"(?:hf_|api_org_)[A-Za-z0-9]{30,40}+" + _B, "hf_", "api_org_"),
    _token(
        "slack-token",
        r"(?:xox[abeoprs]|xapp|xoxe\.xox[bp]|xoxe)-[A-Za-z0-9-]{10,512}+",
        "xox",
        "xapp-",
        upstream=(r"xox(?:a|b|p|o|s|r)-(?:\d+-)+[a-z0-9]+",),
    ),
    Rule(
        "slack-webhook",
        r"hooks\.slack\.com/(?P<secret>(?:services|workflows|triggers)/[A-Za-z0-9_/-]{8,512}+)",
        ("hooks.slack.com",),
        upstream=(r"https://hooks\.slack\.com/services/T[a-zA-Z0-9_]+/B[a-zA-Z0-9_]+/[a-zA-Z0-9_]+",),
    ),
    Rule(
        "discord-webhook",
        r"discord(?:app)?\.com/api/(?:v\d{1,2}/)?webhooks/(?P<secret>\d{5,30}/[A-Za-z0-9_-]{20,256}+)",
        ("discord",),
    ),
    Rule(
        "webhook",
        r"(?:\.webhook\.office\.com/webhookb2/|hooks\.zapier\.com/hooks/catch/"
        r"|maker\.ifttt\.com/(?:trigger/[A-Za-z0-9_-]{1,64}/with/)?key/|/hooks/(?=[a-z0-9]{26}\b)"
        r"|/webhooks?/(?=[A-Za-z0-9_-]{24}))(?P<secret>[A-Za-z0-9@/_-]{10,512}+)",
        ("webhook", "hooks", "ifttt"),
        check="random_path",
    ),
    Rule(
        "telegram-bot-token",
        r":(?<=[0-9]:)[0-9A-Za-z_-]{35}" + _B,
        (":",),
        before=("0-9", 8, 10),
        upstream=(r"\d{8,10}:[0-9A-Za-z_-]{35}",),
    ),
    Rule(
        "discord-token",
        r"\.[a-zA-Z\d_-]{6}\.[a-zA-Z\d_-]{27,40}+",
        (".",),
        before=(TOKEN, 24, 28),
        upstream=(r"[MNO][a-zA-Z\d_-]{23,25}\.[a-zA-Z\d_-]{6}\.[a-zA-Z\d_-]{27}",),
        check="discord",
    ),
    # OpenAI (sk-, sk-proj-, sk-svcacct-), Anthropic (sk-ant-api03-, sk-ant-admin01-), OpenRouter, DeepSeek
    Rule(
        "api-key",
        r"k-(?<=[srp]k-)[A-Za-z0-9_-]{20,512}+",
        ("sk-", "rk-", "pk-"),
        boundary="A-Za-z0-9_",
        before=("srp", 1, 1),
        upstream=(r"sk-[A-Za-z0-9-_]*[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}",),
    ),
    Rule(
        "stripe-key",
        r"k_(?<=[rs]k_)(?:live|test)_[0-9a-zA-Z]{24,247}+",
        ("k_live_", "k_test_"),
        boundary=TOKEN,
        before=("rs", 1, 1),
        upstream=(r"(?:r|s)k_live_[0-9a-zA-Z]{24}",),
    ),
    _token("stripe-key", r"whsec_[A-Za-z0-9]{24,64}+", "whsec_"),
    _token("google-api-key", r"AIza[0-9A-Za-z_-]{35}", "aiza"),
    _token("google-oauth", r"(?:GOCSPX-[A-Za-z0-9_-]{28}|ya29\.[0-9A-Za-z_-]{20,2048}+)", "gocspx-", "ya29."),
    Rule(
        "jwt",
        r"eyJ(?<![A-Za-z0-9_=-]eyJ)[A-Za-z0-9_=-]{10,8192}+\.[A-Za-z0-9_=-]{10,8192}+(?:\.[A-Za-z0-9_.+/=-]{0,8192}+)?",
        ("eyj",),
        upstream=(r"eyJ[A-Za-z0-9-_=]+\.[A-Za-z0-9-_=]+\.?[A-Za-z0-9-_.+/=]*?",),
    ),
    _token(
        "sendgrid-key",
        r"SG\.[a-zA-Z0-9_-]{22}\.[a-zA-Z0-9_-]{43}",
        "sg.",
        upstream=(r"SG\.[a-zA-Z0-9_-]{22}\.[a-zA-Z0-9_-]{43}",),
    ),
    Rule(
        "mailchimp-key",
        r"-us[0-9]{1,2}\b",
        ("-us",),
        before=("0-9a-z", 32, 32),
        upstream=(r"[0-9a-z]{32}-us[0-9]{1,2}",),
    ),
    Rule(
        "twilio-key",
        r"(?:AC|SK)[a-z0-9]{32}\b",
        ("ac", "sk"),
        boundary="A-Za-z0-9_",
        upstream=(r"AC[a-z0-9]{32}", r"SK[a-z0-9]{32}"),
    ),
    _token(
        "square-key",
        r"sq0(?:csp|atp)-[0-9A-Za-z\\_-]{22,43}+",
        "sq0",
        upstream=(r"sq0csp-[0-9A-Za-z\\\-_]{43}",),
    ),
    _token(
        "pypi-token",
        r"pypi-(?:AgEIcHlwaS5vcmc|AgENdGVzdC5weXBpLm9yZw)[A-Za-z0-9_-]{70,1024}+",
        "pypi-ag",
        upstream=(r"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9-_]{70,}", r"pypi-AgENdGVzdC5weXBpLm9yZw[A-Za-z0-9-_]{70,}"),
    ),
    _token("npm-token", r"npm_[A-Za-z0-9]{36}" + _B, "npm_"),
    Rule(
        "npm-token",
        r":_(?:authToken|auth|password)\s{0,8}=\s{0,8}(?P<secret>[^\s\"']{1,1024}+)",
        (":_auth", ":_password"),
        upstream=(r"\/\/.+\/:_authToken=\s*((npm_.+)|([A-Fa-f0-9-]{36})).*",),
    ),
    Rule(
        "azure-storage-key",
        r"AccountKey=(?P<secret>[a-zA-Z0-9+/=]{88})",
        ("accountkey=",),
        upstream=(r"AccountKey=[a-zA-Z0-9+\/=]{88}",),
    ),
    Rule(
        "azure-client-secret",
        r"Q~(?<=[0-9]Q~)[a-zA-Z0-9_~.-]{31,34}(?![A-Za-z0-9_~.-])",
        ("q~",),
        before=("a-zA-Z0-9_~.", 4, 4),
    ),
    Rule(
        "artifactory-key",
        r"(?:AKC[a-zA-Z0-9]{10,255}+|AP[\dABCDEF][a-zA-Z0-9]{8,255}+)(?![A-Za-z0-9])",
        ("akc", "ap"),
        check="random",
        boundary="A-Za-z0-9",
        upstream=(
            r'(?:\s|=|:|"|^)AKC[a-zA-Z0-9]{10,}(?:\s|"|$)',
            r'(?:\s|=|:|"|^)AP[\dABCDEF][a-zA-Z0-9]{8,}(?:\s|"|$)',
        ),
    ),
    Rule(
        "softlayer-key",
        r"api\.softlayer\.com/soap/(?:v3|v3\.1)/(?P<secret>[a-z0-9]{64})",
        ("softlayer",),
        upstream=(r"(?:http|https)://api.softlayer.com/soap/(?:v3|v3.1)/([a-z0-9]{64})",),
    ),
    _token("atlassian-token", r"ATATT3[A-Za-z0-9_=-]{100,512}+", "atatt3"),
    _token("digitalocean-token", r"do[opr]_v1_[a-f0-9]{64}", "_v1_"),
    _token("shopify-token", r"shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}", "shp"),
    _token("databricks-token", r"dapi[a-f0-9]{32}(?:-\d)?" + _B, "dapi"),
    _token("doppler-token", r"dp\.(?:pt|st|sa|ct|scim|audit)\.[A-Za-z0-9]{40,44}+", "dp."),
    _token("linear-key", r"lin_(?:api|oauth)_[A-Za-z0-9]{40}", "lin_"),
    _token("postman-key", r"PMAK-[a-f0-9]{24}-[a-f0-9]{34}", "pmak-"),
    _token("planetscale-token", r"pscale_(?:tkn|pw|oauth)_[A-Za-z0-9_=.-]{32,64}+", "pscale_"),
    _token("pulumi-token", r"pul-[a-f0-9]{40}", "pul-"),
    _token("sentry-token", r"(?:sntrys_[A-Za-z0-9+/=_-]{50,512}+|sntryu_[a-f0-9]{64})", "sntry"),
    Rule("terraform-token", r"\.atlasv1\.[A-Za-z0-9_=-]{60,90}+", ("atlasv1",), before=("A-Za-z0-9", 14, 14)),
    _token("vault-token", r"hv[sbr]\.[A-Za-z0-9_-]{24,255}+", "hvs.", "hvb.", "hvr."),
    _token("rubygems-key", r"rubygems_[a-f0-9]{48}", "rubygems_"),
    _token("dockerhub-token", r"dckr_(?:pat|oat)_[A-Za-z0-9_-]{27,64}+", "dckr_"),
    _token("groq-key", r"gsk_[A-Za-z0-9]{48,56}+", "gsk_"),
    _token("replicate-token", r"r8_[A-Za-z0-9]{37}" + _B, "r8_"),
    _token("xai-key", r"xai-[A-Za-z0-9]{70,90}+", "xai-"),
    _token("perplexity-key", r"pplx-[A-Za-z0-9]{40,56}+", "pplx-"),
    _token("langsmith-key", r"lsv2_(?:pt|sk)_[a-f0-9]{32}_[a-f0-9]{10}", "lsv2_"),
    _token("tavily-key", r"tvly-(?:dev-)?[A-Za-z0-9]{32}", "tvly-"),
    _token("supabase-token", r"sbp_[a-f0-9]{40}", "sbp_"),
    _token(
        "grafana-token", r"(?:glc_[A-Za-z0-9+/]{32,400}+={0,2}|glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8})", "glc_", "glsa_"
    ),
    _token("newrelic-key", r"NR(?:AK|AA|II|JS)-[A-Za-z0-9]{19,32}+", "nrak-", "nraa-", "nrii-", "nrjs-"),
    _token("notion-token", r"(?:ntn_[A-Za-z0-9]{40,50}+|secret_[A-Za-z0-9]{43}" + _B + ")", "ntn_", "secret_"),
    _token("figma-token", r"fig[dur]_[A-Za-z0-9_-]{40,64}+", "figd_", "figu_", "figr_"),
    _token("heroku-key", r"HRKU-[A-Za-z0-9_-]{30,70}+", "hrku-"),
    _token("flyio-token", r"fm[12][ar]?_[A-Za-z0-9+/=_-]{30,1024}+", "fm1", "fm2"),
    # --- credentials in context ---
    Rule(
        "bearer",
        _ci("bearer") + r"[ \t]{1,8}(?P<secret>[A-Za-z0-9._~+/=-]{12,8192}+)",
        ("bearer",),
        check="mixed",
        boundary="A-Za-z0-9_",
    ),
    Rule(
        "basic-auth",
        _ci("authorization")
        + r"[\"']?[ \t]{0,8}[:=][ \t]{0,8}[\"']?"
        + _ci("basic")
        + r"[ \t]{1,8}(?P<secret>[A-Za-z0-9+/=]{8,4096}+)",
        ("basic",),
    ),
    Rule(
        "auth-header",
        _ci("authorization") + r"[\"']?[ \t]{0,8}[:=][ \t]{0,8}[\"']?"
        r"(?i:(?:token|digest|apikey|api-key|sso-key|key|oauth|bot|genieKey|splunk|ssws)[ \t]{1,8})?"
        r"(?P<secret>[^\s\"',;]{8,8192}+)",
        ("authorization",),
        check="mixed",
    ),
    # scheme://user:password@host; the password may hold '@' and '/', so it runs to the token's last '@'
    Rule(
        "url-password",
        r"://[^\s:/@'\"<>]{0,256}+:(?P<secret>(?:(?!://)[^\s'\"<>]){1,512})@",
        ("://",),
        check="userinfo",
        upstream=(
            r"://[^:/\?\#\[\]@!\$\&'\(\)\*\+,;=\s]+:([^:/\?\#\[\]@!\$\&'\(\)\*\+,;=\s]+)@",
            r"(?:https?\:\/\/)[\w\-]+\:([0-9a-f]{64})\@[\w\-]+\.cloudant\.com",
            r"(?:https?\:\/\/)[\w\-]+\:([a-z]{24})\@[\w\-]+\.cloudant\.com",
        ),
    ),
    # signed URLs and keys in query strings (Azure SAS, S3/GCS presigned, ?key=, ?code=)
    Rule(
        "url-secret",
        r"(?i)[?&](?:sig|signature|x-amz-signature|x-amz-security-token|x-amz-credential|x-goog-signature"
        r"|x-goog-credential|key|code|auth|apikey|api_key|access_token|client_secret|token)="
        r"(?P<secret>[^&\s#\"'<>]{8,4096}+)",
        ("sig=", "signature=", "x-amz-", "x-goog-", "key=", "code=", "auth=", "token=", "client_secret="),
        check="random",
    ),
    # curl -u user:pw, --user user:pw, -U (proxy user); httpie --auth user:pw
    Rule(
        "secret",
        r"-(?:u|U|-user|-proxy-user|-auth)(?:[ \t]{1,8}|=)[\"']?[^\s:\"'@]{1,128}+:(?P<secret>[^\s\"']{1,1024}+)",
        ("-u", "--user", "--proxy-user", "--auth"),
        check="cli",
        boundary=r"\w-",
    ),
    # mysql -pPASSWORD (the password joined to -p; `-p` alone prompts)
    Rule(
        "secret",
        r"(?:mysql|mysqldump|mysqladmin|mysqlimport|mysqlcheck|mysqlpump|mysqlsh|mariadb|mariadb-dump)\b"
        + _ARGS
        + r"[ \t]{1,8}-p"
        + _ARG,
        ("mysql", "mariadb"),
        check="cli",
        boundary=r"\w-",
    ),
    # docker login -p X (and podman, nerdctl, buildah, helm registry, oras, skopeo)
    Rule(
        "secret",
        r"login\b(?:"
        + "|".join(f"(?<={c}[ \t]login)" for c in _LOGIN_COMMANDS)
        + ")"
        + _ARGS
        + r"[ \t]{1,8}(?:-p|--password)(?:[ \t]{1,8}|=)"
        + _ARG,
        ("login",),
        check="cli",
    ),
    Rule("secret", r"sshpass[ \t]{1,8}-p[ \t]{0,8}" + _ARG, ("sshpass",), check="cli", boundary=r"\w-"),
    Rule(
        "secret",
        r"redis-cli\b" + _ARGS + r"[ \t]{1,8}(?:-a|--pass)[ \t]{1,8}" + _ARG,
        ("redis-cli",),
        check="cli",
        boundary=r"\w-",
    ),
    Rule("secret", r"-pass(?:in|out)?[ \t]{1,8}pass:" + _ARG, ("pass:",), check="cli", boundary=r"\w-"),
    # --password X, --password=X, --db-password X, --token X, --api-key X, -storepass X, ...
    Rule(
        "secret",
        r"-(?<![\w-]-)-?(?i:(?:[a-z0-9]{1,32}+[-_]){0,4}"
        r"(?:password|passwd|pass|passphrase|pwd|secret|token|api-?key|access-key|secret-key|private-key"
        r"|auth-key|client-secret|storepass|keypass|srcstorepass|deststorepass|keystorepass))"
        r"(?:[ \t]{1,8}|=)" + _ARG,
        ("pass", "pwd", "secret", "token", "key"),
        check="cli",
    ),
    # <password>x</password>
    Rule(
        "secret",
        r"<(?i:(?:[\w.-]{0,32}[:_-])?(?:password|passwd|secret|token|api[_-]?key|private[_-]?key|access[_-]?key"
        r"|secret[_-]?key|client[_-]?secret|credentials?))>(?P<secret>[^<\n]{1,4096}+)</",
        ("pass", "secret", "token", "key", "credential"),
        check="xml",
    ),
    # NAME=value, NAME: value, "name": "value", name => 'value', name := "value" where NAME is secret-ish:
    # the pattern finds the separator, trust.redact reads the name before it and the value after it
    Rule(
        "secret",
        ASSIGNMENT_SEPARATOR,
        (
            "pass",
            "pwd",
            "pw",
            "phrase",
            "secret",
            "token",
            "key",
            "auth",
            "salt",
            "sig",
            "cookie",
            "credential",
            "contrase",
            "passwort",
            "hmac",
        ),
        check="assignment",
        upstream=(r"aws.{0,20}?(?:key|pwd|pw|password|pass|token).{0,20}?[\'\"]([0-9a-zA-Z/+]{40})[\'\"]",),
    ),
)
