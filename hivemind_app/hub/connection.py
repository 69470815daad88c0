"""Reaching Redis, and saying clearly why it could not be reached. Never shows the password."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from hivemind_app.config import redact_url


@dataclass(frozen=True)
class Reachability:
    ok: bool
    detail: str


def describe_endpoint(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}"


def check_redis(url: str, timeout_s: float) -> Reachability:
    """PING Redis at `url`; a failure comes back as one line naming the endpoint and the cause."""
    import redis
    from redis import exceptions

    endpoint = describe_endpoint(url)
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
    except ValueError as exc:
        return Reachability(False, f"redis.url {redact_url(url)} is not a Redis URL ({exc}).")
    try:
        client.ping()
        version = client.info("server").get("redis_version", "?")
        return Reachability(True, f"Redis {version} at {endpoint}")
    except exceptions.AuthenticationError as exc:
        return Reachability(False, f"Redis at {endpoint} refused the password: {exc}")
    except exceptions.ResponseError as exc:
        if "NOAUTH" in str(exc) or "AUTH" in str(exc).upper():
            return Reachability(False, f"Redis at {endpoint} needs a password: put it in redis.url.")
        return Reachability(False, f"Redis at {endpoint} answered with an error: {exc}")
    except exceptions.TimeoutError:
        return Reachability(False, f"Redis at {endpoint} did not answer within {timeout_s:g}s.")
    except exceptions.ConnectionError as exc:
        message = str(exc)
        if "Protocol" in message or "protocol" in message:
            return Reachability(False, f"{endpoint} answered, but it is not Redis ({message}).")
        return Reachability(False, f"Redis at {endpoint} is unreachable: {message}")
    except exceptions.RedisError as exc:
        return Reachability(False, f"Redis at {endpoint}: {exc}")
    finally:
        client.close()
