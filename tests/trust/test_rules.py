"""The redactor's rules as data: every detect-secrets regex accounted for, every rule bounded."""

from __future__ import annotations

import importlib
import pkgutil
import re
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

import pytest

from hivemind_app.trust.redact import redact
from hivemind_app.trust.rules import ASSIGNMENT_VALUE_CODE, ASSIGNMENT_VALUE_ENV, RULES
from hivemind_app.trust.upstream import COVERED_UPSTREAM

H = "0123456789abcdef"

# one text per detect-secrets regex that the regex flags; after redaction it must flag nothing there
UPSTREAM_SAMPLES: dict[str, str] = {
    "AWSKeyDetector.0": "aws_access_key_id = AKIAZ5BQDHTLEXAMPL7Q",
    "AWSKeyDetector.1": 'aws_secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"',
    "ArtifactoryDetector.0": "artifactory: AKCp8jQ8tqxh2Pgk3HfDfFCy1XaGc3JxwcsMn9GVT5qTkCc5PZdsn4vqUoH2QxMEsM3Ue ok",
    "ArtifactoryDetector.1": 'password="AP6xGR5JFUDvNLrwM4r9qMhSx6aR7B7Y8dxFhVU3z9XU5K2w"',
    "AzureStorageKeyDetector.0": "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey="
    + "lJzRc1YdHaAA2KCNJJ1tkYwF/+mKK6Ygw0NGe170Xu592euJv2wYUtBlV8z+qnlcNQSnIYVTkLWntUO1F8j8rQ==;",
    "BasicAuthDetector.0": "https://deploy:hunter2x7@git.example.com/acme/api.git",
    "CloudantDetector.0": f"cloudant_password = '{H * 4}'",
    "CloudantDetector.1": "cl_apikey: qwertyuiopasdfghjklzxcvb",
    "CloudantDetector.2": f"https://acme:{H * 4}@acme.cloudant.com",
    "CloudantDetector.3": "https://acme:qwertyuiopasdfghjklzxcvb@acme.cloudant.com",
    "DiscordBotTokenDetector.0": "DISCORD=MTk4NjIyNDgzNDcxOTI1MjQ4.Cl2FMQ.ZnCjm1XVW7vRze4b7Cq4se7kKWs",
    "GitHubTokenDetector.0": "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",
    "GitLabTokenDetector.0": "glpat-aBcD1234eFgH5678iJkL",
    "GitLabTokenDetector.1": "GR1348941aBcD1234eFgH5678iJkL",
    "GitLabTokenDetector.2": "glcbt-a1_aBcD1234eFgH5678iJkL",
    "GitLabTokenDetector.3": "glimt-aBcD1234eFgH5678iJkLmNoPq",
    "GitLabTokenDetector.4": "glptt-" + "aBcD1234eF" * 4,
    "GitLabTokenDetector.5": "glagent-" + "aBcD1234eF" * 5,
    "GitLabTokenDetector.6": "gloas-" + "aBcD1234" * 8,
    "IbmCloudIamDetector.0": "ibm_cloud_iam_api_key = 'abcd1234efgh5678ijkl9012mnop3456qrst7890uvwx'",
    "IbmCosHmacDetector.0": f"cos_hmac_secret_access_key = '{H * 3}'",
    "JwtTokenDetector.0": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlF",
    "MailchimpDetector.0": "MAILCHIMP=" + "abcd1234" * 4 + "-us12",
    "NpmDetector.0": "//registry.npmjs.org/:_authToken=npm_abcdefghijklmnopqrstuvwxyz0123456789",
    "OpenAIDetector.0": "sk-" + "aB3dE6gH9jK2mN5pQ8sT" + "T3BlbkFJ" + "uV1wX4yZ7bC0eF3hJ6kM",
    "PypiTokenDetector.0": "pypi-AgEIcHlwaS5vcmc" + "aB3dE6gH9j" * 8,
    "PypiTokenDetector.1": "pypi-AgENdGVzdC5weXBpLm9yZw" + "aB3dE6gH9j" * 8,
    "SendGridDetector.0": "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",
    "SlackDetector.0": "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
    "SlackDetector.1": "https://hooks.slack.com/services/T01ABCDEF/B02ABCDEFGH/aBcDeFgHiJkLmNoPqRsTuVwX",
    "SoftlayerDetector.0": "softlayer_api_key = '" + "abcd1234" * 8 + "'",
    "SoftlayerDetector.1": "https://api.softlayer.com/soap/v3/" + "abcd1234" * 8,
    "SquareOAuthDetector.0": "sq0csp-" + "aB3dE6gH9jK2mN5pQ8sT1vX4zA7cF0hJ3lN6qS9uW2y",
    "StripeDetector.0": "sk_live_" + "aB3dE6gH9jK2mN5pQ8sT1vX4zA7cF0hJ3lN6",
    "TelegramBotTokenDetector.0": "bot 123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0 ok",
    "TwilioKeyDetector.0": "TWILIO=AC" + "abcd1234" * 4,
    "TwilioKeyDetector.1": "TWILIO=SK" + "abcd1234" * 4,
    "PrivateKeyDetector.0": "-----BEGIN DSA PRIVATE KEY-----\nMIIBuwIBAAKBgQ" + "a1B2" * 12,
    "PrivateKeyDetector.1": "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEI" + "a1B2" * 12,
    "PrivateKeyDetector.2": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA" + "a1B2" * 12,
    "PrivateKeyDetector.3": "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQdGBF" + "a1B2" * 12,
    "PrivateKeyDetector.4": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhki" + "a1B2" * 12,
    "PrivateKeyDetector.5": "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA" + "a1B2" * 12,
    "PrivateKeyDetector.6": "---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----\nP2/56wAAAi4AAAA3aWYt" + "a1B2" * 12,
    "PrivateKeyDetector.7": "PuTTY-User-Key-File-2: ssh-rsa\nEncryption: none\nPrivate-Lines: 1\nAAABAQC" + "a1B2" * 12,
}


def _plugins() -> list[tuple[str, list[re.Pattern[str]]]]:
    plugins_pkg = pytest.importorskip("detect_secrets.plugins")
    for module in pkgutil.iter_modules(plugins_pkg.__path__):
        importlib.import_module(f"detect_secrets.plugins.{module.name}")
    from detect_secrets.plugins.base import RegexBasedDetector

    def subclasses(cls: type) -> list[type]:
        return [c for s in cls.__subclasses__() for c in (s, *subclasses(s))]

    return [(cls.__name__, list(cls.denylist)) for cls in subclasses(RegexBasedDetector)]


def test_every_detect_secrets_regex_is_rewritten_or_accounted_for() -> None:
    rewritten = {u for rule in RULES for u in rule.upstream}
    missing = []
    for plugin, patterns in _plugins():
        for n, pattern in enumerate(patterns):
            keys = (pattern.pattern, f"{plugin}.{n}", plugin)
            if pattern.pattern not in rewritten and not any(key in COVERED_UPSTREAM for key in keys):
                missing.append(f"{plugin}: {pattern.pattern}")
    assert not missing, "detect-secrets regexes no rule accounts for:\n" + "\n".join(missing)


def test_what_each_detect_secrets_regex_flags_is_redacted() -> None:
    checked = 0
    for plugin, patterns in _plugins():
        if COVERED_UPSTREAM.get(plugin) == "dropped":
            continue
        for n, pattern in enumerate(patterns):
            text = UPSTREAM_SAMPLES[f"{plugin}.{n}"]
            found = pattern.search(text)
            assert found, f"the sample for {plugin}.{n} does not match upstream"
            flagged = next((g for g in found.groups() if g), found.group())
            cleaned = redact(text)
            assert flagged not in cleaned, (plugin, n, cleaned)
            checked += 1
    assert checked >= 45


def _unbounded(tree: Any) -> list[str]:
    found = []
    for op, arg in tree:
        if op in (sre_parse.MAX_REPEAT, sre_parse.MIN_REPEAT, sre_parse.POSSESSIVE_REPEAT):
            low, high, sub = arg
            if high == sre_parse.MAXREPEAT:
                found.append(f"{op} {low},inf")
            found += _unbounded(sub)
        elif op in (sre_parse.SUBPATTERN, sre_parse.ATOMIC_GROUP):
            found += _unbounded(arg[-1])
        elif op == sre_parse.BRANCH:
            for branch in arg[1]:
                found += _unbounded(branch)
        elif op in (sre_parse.ASSERT, sre_parse.ASSERT_NOT):
            found += _unbounded(arg[1])
    return found


@pytest.mark.parametrize("pattern", [r.pattern for r in RULES] + [ASSIGNMENT_VALUE_ENV, ASSIGNMENT_VALUE_CODE])
def test_every_pattern_compiles_and_every_repeat_in_it_is_bounded(pattern: str) -> None:
    re.compile(pattern)
    assert _unbounded(sre_parse.parse(pattern)) == []
