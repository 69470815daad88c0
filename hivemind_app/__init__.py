"""hivemind-app: local-first, multi-machine memory and learning for AI coding assistants."""

__version__ = "0.1.0"
