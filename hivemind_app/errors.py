"""The one error hierarchy of hivemind-app.

Core code raises these; front ends (CLI, MCP, TUI, hooks, HTTP) turn them into a message for their user.
Every message names the problem and, where there is one, what to do about it. No message ever carries a
secret (a Redis password, a token): callers that build messages from URLs redact them first.
"""

from __future__ import annotations


class HivemindError(Exception):
    """Base of every error hivemind-app raises on purpose."""

    #: exit status the CLI uses for this kind of error
    exit_code = 1


class ConfigError(HivemindError):
    """The settings file or an environment variable holds something unusable."""

    exit_code = 78  # EX_CONFIG


class InvalidInputError(HivemindError):
    """Input that cannot be stored or searched as given."""

    exit_code = 65  # EX_DATAERR


class EmptyTextError(InvalidInputError):
    """Text that is empty once whitespace is removed."""


class TextTooLargeError(InvalidInputError):
    """Text over the configured size limit."""


class BinaryContentError(InvalidInputError):
    """Bytes that are not text: NUL bytes, invalid UTF-8, or mostly control characters."""


class StoreError(HivemindError):
    """The local SQLite store cannot be opened or used."""

    exit_code = 74  # EX_IOERR


class StoreBusyError(StoreError):
    """Another process held the write lock for longer than the busy timeout, even after retries."""


class ExtensionLoadError(StoreError):
    """sqlite-vec could not be loaded into SQLite."""


class MigrationError(StoreError):
    """A schema migration failed; the store is left at the last version that applied cleanly."""


class NotFoundError(HivemindError):
    """A memory, session or other record that does not exist."""


class AmbiguousIdError(InvalidInputError):
    """An id prefix that matches more than one memory."""


class EmbedderUnavailableError(HivemindError):
    """No embedding model could be loaded; keyword search still works."""

    exit_code = 69  # EX_UNAVAILABLE


class HubError(HivemindError):
    """Redis (the hub) is unreachable, refused us, or answered something unexpected."""

    exit_code = 69


class TrainingError(HivemindError):
    """A training round could not run: the training extra or the base model is missing, or it was stopped."""

    exit_code = 69


class AdapterError(HivemindError):
    """An adapter that cannot be published, fetched or loaded: unknown version, bad checksum, refused file."""

    exit_code = 65
