"""What the redactor takes from detect-secrets 1.5.0 (Yelp, Apache-2.0; `detect-secrets.LICENSE` beside this
file) besides its regexes: the entropy limits, the KeywordDetector's secret-ish names, and the account of the
upstream patterns no rule in `rules.py` rewrites one to one (tests/trust/test_rules.py checks it)."""

from __future__ import annotations

# detect-secrets' high-entropy string limits (Base64HighEntropyString, HexHighEntropyString)
BASE64_ENTROPY_LIMIT = 4.5
HEX_ENTROPY_LIMIT = 3.0

# detect-secrets' KeywordDetector DENYLIST, as name endings: a name ending in one of these is secret-ish
# (its `\w*` affixes become the name check in trust.redact)
KEYWORD_DENYLIST = (
    "api_key",
    "auth_key",
    "service_key",
    "account_key",
    "db_key",
    "database_key",
    "priv_key",
    "private_key",
    "client_key",
    "db_pass",
    "database_pass",
    "key_pass",
    "password",
    "passwd",
    "pwd",
    "secret",
    "contraseña",
    "contrasena",
)


# detect-secrets patterns that no rule rewrites one to one (by pattern, or plugin.index): the rule that covers
# each, or why it is dropped
COVERED_UPSTREAM: dict[str, str] = {
    # PrivateKeyDetector flags the BEGIN line; the private-key rules redact the whole block, END line or not
    "BEGIN DSA PRIVATE KEY": "private-key",
    "BEGIN EC PRIVATE KEY": "private-key",
    "BEGIN OPENSSH PRIVATE KEY": "private-key",
    "BEGIN PGP PRIVATE KEY BLOCK": "private-key",
    "BEGIN PRIVATE KEY": "private-key",
    "BEGIN RSA PRIVATE KEY": "private-key",
    "BEGIN SSH2 ENCRYPTED PRIVATE KEY": "private-key",
    "PuTTY-User-Key-File-2": "private-key",
    # name = value detectors (by plugin and index in its denylist): the assignment rule, whose names end in
    # key/pwd/pw/password/pass/token/secret, whatever comes before
    "CloudantDetector.0": "secret",
    "CloudantDetector.1": "secret",
    "IbmCloudIamDetector.0": "secret",
    "IbmCosHmacDetector.0": "secret",
    "SoftlayerDetector.0": "secret",
    # dropped: a public IP address is not a credential, and redacting it would alter ordinary notes
    "IPPublicDetector": "dropped",
}
