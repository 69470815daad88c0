"""Node runtime: discovery, HTTP API, embed and infer workers. Front-end free, torch-free at import."""
