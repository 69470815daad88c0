"""Reaching Redis, and saying clearly why it could not be reached. Never shows the password."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from hivemind_app.config import RedisSettings, redact_url
from hivemind_app.errors import HubError


@dataclass(frozen=True)
class Reachability:
    ok: bool
    detail: str


def as_text(value: Any) -> str:
    """A Redis reply (bytes, or already text) as text."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def describe_endpoint(url: str) -> str:
    """`host:port` of the hub, from the redacted URL: a password with `/`, `#` or `?` in it cannot make
    urllib raise (its message would quote part of the password) or be taken for the host."""
    parts = urlsplit(redact_url(url))
    try:
        port = parts.port or 6379
    except ValueError:
        return f"{parts.hostname or 'localhost'}:?"
    return f"{parts.hostname or 'localhost'}:{port}"


NOT_A_REDIS_URL = (
    "redis.url {url} is not a Redis URL that redis-py can read: write it as redis://[user]:PASSWORD@HOST:PORT/DB, "
    "with /, #, ?, @ and : in the password percent-encoded (%2F, %23, %3F, %40, %3A)."
)


def explain(exc: Exception, url: str, timeout_s: float) -> str:
    """One line naming the endpoint and the cause, for any redis-py error."""
    from redis import exceptions

    endpoint = describe_endpoint(url)
    message = str(exc)
    if isinstance(exc, exceptions.AuthenticationError):
        return f"Redis at {endpoint} refused the password: {message}"
    if isinstance(exc, exceptions.ResponseError) and ("NOAUTH" in message or "AUTH" in message.upper()):
        return f"Redis at {endpoint} needs a password: put it in redis.url."
    if isinstance(exc, exceptions.InvalidResponse) or "protocol error" in message.lower():
        return f"{endpoint} answered, but it is not Redis ({message}); check the port in redis.url."
    if isinstance(exc, exceptions.TimeoutError):
        return f"Redis at {endpoint} did not answer within {timeout_s:g}s."
    if isinstance(exc, exceptions.ConnectionError):
        return f"Redis at {endpoint} is unreachable: {message}"
    return f"Redis at {endpoint}: {message}"


def connect(settings: RedisSettings, url: str) -> Any:
    """A redis-py client for the hub at `url` (TLS through rediss://, certificate options from settings)."""
    import redis

    kwargs: dict[str, Any] = {
        "socket_connect_timeout": settings.connect_timeout_s,
        "socket_timeout": settings.connect_timeout_s * 5,
    }
    if url.startswith("rediss://"):
        if settings.tls_ca_file:
            kwargs["ssl_ca_certs"] = settings.tls_ca_file
        if settings.tls_cert_file:
            kwargs["ssl_certfile"] = settings.tls_cert_file
        if settings.tls_key_file:
            kwargs["ssl_keyfile"] = settings.tls_key_file
    try:
        return redis.Redis.from_url(url, **kwargs)
    except ValueError as exc:
        # not `exc` itself: redis-py's message can quote part of the password
        raise HubError(NOT_A_REDIS_URL.format(url=redact_url(url))) from exc


def check_redis(url: str, timeout_s: float) -> Reachability:
    """PING Redis at `url`; a failure comes back as one line naming the endpoint and the cause."""
    import redis

    endpoint = describe_endpoint(url)
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
    except ValueError:
        return Reachability(False, NOT_A_REDIS_URL.format(url=redact_url(url)))
    try:
        client.ping()
        version = client.info("server").get("redis_version", "?")
        return Reachability(True, f"Redis {version} at {endpoint}")
    except redis.RedisError as exc:
        return Reachability(False, explain(exc, url, timeout_s))
    finally:
        client.close()
