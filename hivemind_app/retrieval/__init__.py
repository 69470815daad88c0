"""Retrieval: query analysis -> candidate generators -> fusion -> (re-scoring) -> hydration.

Each stage is a small unit over typed candidate lists (`Ranking`, `Fused`), never positional tuples, so a
ranking keeps the name of the generator that made it all the way to the `Hit` a front end shows.
`pipeline.Retrieval` composes the stages; `Hive.search_memory` delegates to it.
"""
