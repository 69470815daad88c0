"""Models: the embedder now; the LLM, the trainer and adapters live beside it. Heavy imports are lazy."""
