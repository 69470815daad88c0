"""Trust: what keeps secrets and forged records out of the hive (DESIGN.md, "Trust").

`trust.redact` is the one redactor every stored or pushed field passes through: `redact(text)` and
`redact_value(data)` replace secrets with `[REDACTED:kind]`. Its rules (`trust.rules`) are data: the regex
rule set of Yelp's detect-secrets, rewritten with bounded quantifiers, plus known token formats and
context rules (assignments, command lines, URLs) checked with Shannon entropy. The hive key and the MACs
over records live here too.
"""
