"""The approximate (usearch HNSW) index beside sqlite-vec: kept current by every write, delete and sync apply,
rebuilt when missing, stale or corrupt, and never the reason a search is wrong. One test module per part of
`hivemind_app/store/ann/`."""
