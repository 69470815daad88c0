"""A deterministic corpus of short developer notes, and a search query written from each one.

    from bench.corpus import load_corpus
    notes = load_corpus(100_000)          # generated once, then read from bench/.cache/

Each note comes from one of a few dozen templates (dependency bumps, ports, hosts, errors and their fixes,
benchmark figures, decisions, incidents, ...) filled from pools of tools, versions, hosts, ports, paths,
commands and numbers, so notes read like what a developer actually writes down and the vocabulary is wide
enough for BM25 to be meaningful. Every note carries a category tag and a project tag (skewed: a few
projects are busy, most are quiet), a source, and one query (a paraphrase or a few keywords) that a person
looking for that note might type.

The stream is a pure function of the seed, so the first 10,000 notes of a 100,000-note corpus are the
10,000-note corpus: a cached larger corpus serves every smaller n, and vectors cached for a prefix stay valid.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

CACHE_DIR = Path(__file__).resolve().parent / ".cache"
DEFAULT_SEED = 20261101
FORMAT = 1  # bump on any change to the generator, so stale caches (corpus and vectors) are not reused


@dataclass(frozen=True)
class Note:
    text: str
    tags: tuple[str, ...]
    source: str
    template: int  # which template wrote it: notes of one template are about similar things
    query: str

    def to_json(self) -> str:
        return json.dumps([self.text, list(self.tags), self.source, self.template, self.query], ensure_ascii=False)

    @staticmethod
    def from_json(line: str) -> Note:
        text, tags, source, template, query = json.loads(line)
        return Note(text, tuple(tags), source, int(template), query)


# -- pools ------------------------------------------------------------------------------------------

PACKAGES = [
    "uvicorn", "fastapi", "pydantic", "sqlalchemy", "numpy", "torch", "transformers", "redis-py", "httpx",
    "celery", "django", "flask", "pytest", "ruff", "mypy", "boto3", "grpcio", "protobuf", "pandas", "polars",
    "aiohttp", "requests", "urllib3", "cryptography", "gunicorn", "alembic", "psycopg", "asyncpg", "orjson",
    "textual", "rich", "click", "typer", "sentence-transformers", "llama-cpp-python", "peft", "accelerate",
    "vllm", "ray", "dask", "jinja2", "pillow", "scipy", "scikit-learn", "lxml", "paramiko", "websockets",
    "starlette", "h11", "anyio", "tokenizers", "safetensors", "onnxruntime", "opentelemetry-sdk", "structlog",
]  # fmt: skip
SERVICES = [
    "Postgres", "Redis", "nginx", "Grafana", "Prometheus", "Loki", "MinIO", "Elasticsearch", "RabbitMQ",
    "Kafka", "Traefik", "Jenkins", "Gitea", "Vault", "Consul", "etcd", "ClickHouse", "MongoDB", "memcached",
    "JupyterHub", "Ollama", "Qdrant", "Caddy", "HAProxy", "Sentry", "Airflow", "MLflow", "Keycloak",
]  # fmt: skip
DEFAULT_PORTS = {
    "Postgres": 5432, "Redis": 6379, "nginx": 443, "Grafana": 3000, "Prometheus": 9090, "Loki": 3100,
    "MinIO": 9000, "Elasticsearch": 9200, "RabbitMQ": 5672, "Kafka": 9092, "Traefik": 8080, "Jenkins": 8080,
    "Gitea": 3000, "Vault": 8200, "Consul": 8500, "etcd": 2379, "ClickHouse": 8123, "MongoDB": 27017,
    "memcached": 11211, "JupyterHub": 8000, "Ollama": 11434, "Qdrant": 6333, "Caddy": 443, "HAProxy": 8404,
    "Sentry": 9000, "Airflow": 8080, "MLflow": 5000, "Keycloak": 8443,
}  # fmt: skip
ENVS = ["staging", "prod", "dev", "preprod", "CI", "the homelab", "the NAS", "the GPU box", "the laptop", "QA"]
HOST_PREFIXES = ["gpu", "build", "db", "web", "api", "worker", "nas", "edge", "k8s-node", "runner", "cache", "ml"]
ROLES = [
    "CI runner", "database primary", "read replica", "GPU trainer", "backup target", "reverse proxy",
    "build cache", "metrics server", "bastion", "artifact store", "inference server", "Redis hub",
]  # fmt: skip
USERS = ["deploy", "ubuntu", "ops", "admin", "ci", "ml", "root", "svc-backup"]
DIRS = [
    "api/", "src/", "services/billing/", "services/auth/", "infra/terraform/", "scripts/", "tests/integration/",
    "deploy/k8s/", ".github/workflows/", "ml/train/", "web/src/components/", "workers/", "libs/common/",
    "tools/", "docs/", "ops/ansible/", "data/pipelines/", "cli/", "sdk/python/", "benchmarks/",
]  # fmt: skip
FILES = [
    "settings.py", "config.toml", "docker-compose.yml", "values.yaml", "main.tf", "Makefile", "conftest.py",
    "pyproject.toml", "deploy.yml", "nginx.conf", "app.py", "models.py", "tasks.py", "schema.sql", ".env.example",
    "Dockerfile", "ci.yml", "train.py", "redis.conf", "routes.py", "client.ts", "worker.py", "db.py", "cli.py",
]  # fmt: skip
ERRORS = [
    ("ECONNREFUSED", "connection refused"), ("OOMKilled", "pod OOMKilled"),
    ("CUDA out of memory", "CUDA OOM"), ("SIGSEGV in libtorch_cpu.so", "torch segfault"),
    ("deadlock detected", "Postgres deadlock"), ("too many open files", "EMFILE"),
    ("SSL: CERTIFICATE_VERIFY_FAILED", "TLS verify failure"),
    ("ModuleNotFoundError: No module named 'yaml'", "missing yaml module"),
    ("connection reset by peer", "connection reset"), ("disk quota exceeded", "disk quota"),
    ("429 Too Many Requests", "rate limiting"), ("504 Gateway Timeout", "gateway timeout"),
    ("MISCONF Redis is configured to save RDB snapshots", "Redis MISCONF"),
    ("sqlite3.OperationalError: database is locked", "database locked"),
    ("ImportError: libcudnn.so.9: cannot open shared object file", "missing cudnn"),
    ("Killed (exit 137)", "exit 137"), ("ReadTimeout after 30s", "read timeout"),
    ("permission denied (publickey)", "ssh publickey"), ("no space left on device", "disk full"),
    ("NCCL error: unhandled system error", "NCCL error"), ("RecursionError: maximum recursion depth", "recursion"),
    ("ValueError: I/O operation on closed file", "closed file"), ("x509: certificate has expired", "expired cert"),
    ("ERR max number of clients reached", "Redis max clients"),
]  # fmt: skip
FIXES = [
    "raising ulimit -n to 65536", "adding a retry with backoff", "pinning the base image",
    "setting PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True", "halving the batch size",
    "mounting the CA bundle into the container", "adding the index on created_at", "bumping the pod memory limit",
    "restarting the node exporter", "clearing the pip cache", "moving the volume to the SSD",
    "switching to a connection pool", "setting vm.overcommit_memory=1", "renewing the cert with certbot",
    "adding the deploy key to the repo", "installing libcudnn9", "setting stop-writes-on-bgsave-error no",
    "using WAL mode", "closing the file in a finally block", "raising maxclients to 20000",
]  # fmt: skip
COMMANDS = [
    "make test", "docker compose up -d", "kubectl rollout restart deploy/api", "pytest -x -k reconnect",
    "git bisect run ./check.sh", "rsync -avz --delete", "terraform apply -target=module.db", "alembic upgrade head",
    "uv pip compile requirements.in", "pip install -e .", "systemctl --user restart hivemind", "nvidia-smi -l 1",
    "redis-cli --latency-history", "pg_dump -Fc", "journalctl -u nginx -f", "ansible-playbook site.yml",
    "helm upgrade --install", "docker buildx build --platform linux/arm64", "python -m cProfile -o out.prof",
    "py-spy record -o flame.svg", "git lfs pull", "npm ci", "cargo build --release", "ruff check --fix",
]  # fmt: skip
HARDWARE = [
    "the 4090", "the 3090", "an A100", "the M2 laptop", "the NAS (Celeron)", "2 cores", "the Ryzen 7950X",
    "a t3.medium", "a c6i.2xlarge", "the Jetson", "an H100", "the old Xeon",
]  # fmt: skip
GPUS = ["the 4090", "the 3090", "an A100", "an H100", "the Jetson", "an L4", "the M2 laptop"]
BENCH_THINGS = [
    ("torch.compile", "x over eager"), ("flash-attention", "tokens/s"), ("orjson vs json", "x faster"),
    ("the /search endpoint", "req/s"), ("bulk insert", "rows/s"), ("embedding batch", "sentences/s"),
    ("llama.cpp Q4_K_M", "tokens/s"), ("polars groupby", "ms"), ("Redis pipeline", "ops/s"),
    ("zstd level 3", "MB/s"), ("pytest suite", "s"), ("docker build with cache", "s"),
    ("sqlite-vec KNN", "ms"), ("gzip vs brotli", "MB/s"), ("msgpack decode", "MB/s"),
]  # fmt: skip
PROJECTS = [
    "api", "billing", "auth", "frontend", "infra", "ml-platform", "data", "mobile", "search", "hivemind",
    "homelab", "notifications", "payments", "reporting", "scheduler", "crawler", "chatbot", "analytics",
    "gateway", "storage", "ingest", "exporter", "dashboard", "sdk", "cli", "docs", "website", "trainer",
    "inference", "etl", "backup", "monitoring", "identity", "ledger", "pricing", "catalog", "checkout",
    "recommender", "feature-store", "labeling", "annotation", "scraper", "webhooks", "mailer", "sms", "pdf",
    "thumbnailer", "transcoder", "geocoder", "ranker", "indexer", "tokenizer", "evals", "playground",
    "sandbox", "plugins", "marketplace", "admin", "audit", "compliance",
]  # fmt: skip
# A few busy projects, a long tail of quiet ones: weight 1/rank^0.8.
PROJECT_WEIGHTS = [1.0 / (rank + 1) ** 0.8 for rank in range(len(PROJECTS))]
PEOPLE = ["Priya", "Marek", "Sofia", "Kenji", "Amara", "Tom", "Lena", "Diego", "Yusuf", "Chloe", "Ivan", "Mei"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "end of sprint", "the release", "next week"]
ENDPOINTS = [
    "/search", "/api/v2/orders", "/login", "/healthz", "/embed", "/api/users/{id}", "/webhooks/stripe",
    "/graphql", "/export.csv", "/api/v1/items", "/metrics", "/upload", "/api/sessions", "/complete",
]  # fmt: skip
TABLES = ["orders", "users", "events", "sessions", "invoices", "memories", "audit_log", "jobs", "payments", "items"]
FEATURES = [
    "streaming responses", "the retry queue", "OAuth login", "CSV export", "rate limiting", "dark mode",
    "the sync worker", "LoRA training", "hybrid search", "webhook signing", "multi-tenant billing",
    "the offline mode", "tool caching", "GPU scheduling", "incremental backups",
]  # fmt: skip
ENV_VARS = [
    "HF_HUB_OFFLINE", "OMP_NUM_THREADS", "PYTHONUNBUFFERED", "CUDA_VISIBLE_DEVICES", "REDIS_URL",
    "DATABASE_URL", "TOKENIZERS_PARALLELISM", "UV_CACHE_DIR", "NODE_OPTIONS", "GOMAXPROCS", "MALLOC_ARENA_MAX",
    "PIP_NO_CACHE_DIR", "LOG_LEVEL", "SENTRY_DSN_FILE", "WORKERS",
]  # fmt: skip
GOTCHAS = [
    "the default timeout is None, so hung connections block forever",
    "model_dump drops fields set to their default unless exclude_defaults=False",
    "the connection pool is per process, not per thread",
    "fork after CUDA init breaks the DataLoader workers",
    "the async client swallows CancelledError on close",
    "datetime parsing is naive unless you pass tz",
    "the lockfile resolves differently on arm64",
    "streaming mode ignores max_retries",
    "it reads config from the CWD before the home directory",
    "json.dumps of numpy float32 raises TypeError",
    "the cache key ignores query parameters",
    "the CLI exits 0 even when the upload failed",
]  # fmt: skip
SOURCES = ["chat", "claude-code", "cli", "tui", "import"]


def _ver(r: random.Random) -> str:
    return f"{r.randint(0, 4)}.{r.randint(0, 40)}" + (f".{r.randint(0, 12)}" if r.random() < 0.6 else "")


def _host(r: random.Random) -> str:
    return f"{r.choice(HOST_PREFIXES)}-{r.randint(1, 40):02d}"


def _path(r: random.Random) -> str:
    return r.choice(DIRS) + r.choice(FILES)


def _cve(r: random.Random) -> str:
    return f"CVE-{r.randint(2022, 2026)}-{r.randint(1000, 49999)}"


def _port(r: random.Random, service: str) -> int:
    base = DEFAULT_PORTS.get(service, 8000)
    return base + r.choice([0, 1, 1, 2, 10, 100]) if r.random() < 0.7 else r.randint(1025, 65000)


def _date(r: random.Random) -> str:
    return f"2026-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}"


# A template returns (category tag, note text, query). Each picks one of several phrasings for both, and the
# query shares the note's topic but rarely its exact wording.
Template = Callable[[random.Random], tuple[str, str, str]]


def _bump(r: random.Random) -> tuple[str, str, str]:
    pkg, dep, where = r.choice(PACKAGES), r.choice(PACKAGES), r.choice(DIRS)
    ver = _ver(r)
    reason = r.choice([f"the {dep} CVE", _cve(r), f"a memory leak in {dep}", f"{dep} {_ver(r)} compatibility"])
    text = r.choice(
        [
            f"Bumped {pkg} to {ver} in {where} because of {reason}",
            f"Upgraded {pkg} to {ver} ({where}) to pick up the fix for {reason}",
            f"{pkg} is now {ver} in {where}; the bump was for {reason}",
        ]
    )
    query = r.choice([f"why did we upgrade {pkg}", f"{pkg} version bump {where.rstrip('/')}", f"{pkg} {reason}"])
    return "deps", text, query


def _port_note(r: random.Random) -> tuple[str, str, str]:
    service, env = r.choice(SERVICES), r.choice(ENVS)
    port = _port(r, service)
    text = r.choice(
        [
            f"{env} {service} listens on {port}",
            f"{service} on {env} is on port {port}, not the default {DEFAULT_PORTS.get(service, 8000)}",
            f"Remember: {env}'s {service} answers on :{port}",
        ]
    )
    query = r.choice([f"what port does {service} use on {env}", f"{env} {service} port", f"{service} port"])
    return "hosts", text, query


def _host_role(r: random.Random) -> tuple[str, str, str]:
    host, role, user, bastion = _host(r), r.choice(ROLES), r.choice(USERS), _host(r)
    text = r.choice(
        [
            f"{host} is the {role}; SSH in as {user} via {bastion}",
            f"The {role} moved to {host} (log in as {user}, ProxyJump {bastion})",
            f"{host} = {role}. User {user}. Reach it through {bastion}.",
        ]
    )
    query = r.choice([f"which machine is the {role}", f"how do I ssh to the {role}", f"{host} login"])
    return "hosts", text, query


def _error_fix(r: random.Random) -> tuple[str, str, str]:
    (error, short), cmd, host, fix = r.choice(ERRORS), r.choice(COMMANDS), _host(r), r.choice(FIXES)
    text = r.choice(
        [
            f"{error} when running `{cmd}` on {host}: fixed by {fix}",
            f"Got '{error}' from {cmd} on {host}. Fix: {fix}.",
            f"{host}: `{cmd}` failed with {error}; {fix} solved it",
        ]
    )
    query = r.choice([f"how did I fix {short}", f"{short} {host}", f"{error} fix"])
    return "bug", text, query


def _benchmark(r: random.Random) -> tuple[str, str, str]:
    (thing, unit), hw = r.choice(BENCH_THINGS), r.choice(HARDWARE)
    value = round(r.uniform(0.5, 5.0), 1) if unit.startswith("x") else r.randint(3, 90_000)
    text = r.choice(
        [
            f"Benchmarked {thing} on {hw}: {value} {unit}",
            f"{thing} on {hw} measured {value} {unit} (median of 5 runs)",
            f"Numbers for {thing}, {hw}: {value} {unit}, p99 {r.randint(2, 900)} ms",
        ]
    )
    query = r.choice([f"{thing} benchmark on {hw}", f"how fast is {thing}", f"{thing} {unit} numbers"])
    return "perf", text, query


def _decision(r: random.Random) -> tuple[str, str, str]:
    a, b = r.sample(PACKAGES + SERVICES, 2)
    purpose = r.choice(FEATURES)
    reason = r.choice(
        [
            f"{b} needs {r.randint(2, 16)}x the memory",
            f"{a} is {r.randint(2, 20)}x faster in our benchmark",
            f"{b} has no arm64 wheels",
            f"{a} is already deployed on {r.choice(ENVS)}",
            f"{b} licence changed in {_ver(r)}",
            f"{r.choice(PEOPLE)} maintains {a} upstream",
        ]
    )
    text = r.choice(
        [
            f"Decided to use {a} instead of {b} for {purpose}: {reason}",
            f"Decision ({_date(r)}): {a} over {b} for {purpose}, because {reason}",
            f"We went with {a}, not {b}, for {purpose} ({reason})",
        ]
    )
    query = r.choice([f"why {a} rather than {b}", f"what do we use for {purpose}", f"{a} vs {b} decision"])
    return "decision", text, query


def _config_location(r: random.Random) -> tuple[str, str, str]:
    service, env, path = r.choice(SERVICES), r.choice(ENVS), _path(r)
    text = r.choice(
        [
            f"The {service} config for {env} lives in {path}",
            f"{env} {service} settings: {path} (not the copy in {_path(r)})",
            f"Edit {path} to change {service} on {env}",
        ]
    )
    query = r.choice([f"where is the {service} config", f"{service} {env} config file", f"{service} settings path"])
    return "config", text, query


def _flaky(r: random.Random) -> tuple[str, str, str]:
    name = f"test_{r.choice(['reconnect', 'sync', 'upload', 'login', 'retry', 'export', 'search', 'merge'])}_"
    name += r.choice(["backoff", "timeout", "conflict", "large_file", "unicode", "concurrent", "empty", "partial"])
    path = f"tests/{r.choice(['unit', 'integration', 'e2e'])}/test_{r.choice(PROJECTS).replace('-', '_')}.py"
    cond = r.choice(["xdist", "a loaded CI runner", "Python 3.13", "arm64", "the NAS", "low memory", "TZ=UTC+14"])
    text = r.choice(
        [
            f"{name} in {path} is flaky under {cond}; rerun with `pytest -p no:randomly {path}`",
            f"Flaky: {name} ({path}) fails about 1 in {r.randint(5, 50)} runs on {cond}",
        ]
    )
    query = r.choice([f"flaky {name}", f"{name.removeprefix('test_').replace('_', ' ')} test fails", f"{cond} flaky"])
    return "testing", text, query


def _env_var(r: random.Random) -> tuple[str, str, str]:
    var, service = r.choice(ENV_VARS), r.choice(SERVICES + PACKAGES)
    value = r.choice(["1", "0", "4", "false", "info", str(r.randint(2, 64)), "/srv/cache", "expandable_segments"])
    symptom = r.choice(
        [
            "it downloads the model again",
            "it spawns one thread per core and thrashes",
            "logs are buffered until exit",
            "it picks the wrong GPU",
            "memory grows without bound",
            "it deadlocks on fork",
        ]
    )
    text = r.choice(
        [
            f"Set {var}={value} before starting {service} or {symptom}",
            f"Without {var}={value}, {service}: {symptom}",
        ]
    )
    query = r.choice([f"{var} {service}", f"why does {service} misbehave: {symptom.split()[-1]}", f"{var} setting"])
    return "config", text, query


def _cron(r: random.Random) -> tuple[str, str, str]:
    job = r.choice(["backup", "vacuum", "reindex", "cert renewal", "log rotation", "model retrain", "sync", "export"])
    interval = r.choice(["5 minutes", "hour", "night at 03:00", "Sunday", "6 hours", "day at noon"])
    host = _host(r)
    text = r.choice(
        [
            f"The {job} job runs every {interval} on {host} (script in {_path(r)})",
            f"{job} cron on {host}: every {interval}; it logs to /var/log/{job.replace(' ', '-')}.log",
        ]
    )
    query = r.choice([f"when does the {job} job run", f"{job} cron host", f"{job} schedule"])
    return "ops", text, query


def _pin(r: random.Random) -> tuple[str, str, str]:
    pkg, feature = r.choice(PACKAGES), r.choice(FEATURES)
    ver = _ver(r)
    text = r.choice(
        [
            f"Pin {pkg}<{ver}: {ver} breaks {feature}",
            f"Keep {pkg} below {ver} until {r.choice(PEOPLE)} fixes {feature} (issue #{r.randint(10, 9999)})",
        ]
    )
    query = r.choice([f"why is {pkg} pinned", f"{pkg} {feature} broken", f"{pkg} pin"])
    return "deps", text, query


def _cmd_tip(r: random.Random) -> tuple[str, str, str]:
    cmd = r.choice(COMMANDS)
    task = r.choice(
        [
            "reproduce the CI failure locally",
            "profile the slow endpoint",
            "roll back the last deploy",
            "find which commit broke the build",
            "refresh the staging data",
            "check GPU memory during training",
            "watch Redis latency",
            "rebuild the arm64 image",
        ]
    )
    text = r.choice([f"To {task}, run `{cmd}`", f"`{cmd}` is how you {task} (needs {r.choice(USERS)} rights)"])
    query = r.choice([f"how do I {task}", f"command to {task}", f"{cmd.split()[0]} {task.split()[-1]}"])
    return "howto", text, query


def _incident(r: random.Random) -> tuple[str, str, str]:
    service, env = r.choice(SERVICES), r.choice(ENVS)
    cause = r.choice(
        [
            "an expired TLS cert",
            "a full disk on the primary",
            "a bad config push",
            "the OOM killer",
            "a DNS change",
            "a runaway migration",
            "a leaked file descriptor",
            "the upstream provider",
        ]
    )
    text = r.choice(
        [
            f"Incident {_date(r)}: {service} on {env} down for {r.randint(2, 240)} min, root cause {cause}",
            f"Postmortem: {env} {service} outage ({r.randint(2, 240)} min) was {cause}",
        ]
    )
    query = r.choice([f"{service} outage {env}", f"what caused the {service} incident", f"{cause} outage"])
    return "incident", text, query


def _regression(r: random.Random) -> tuple[str, str, str]:
    endpoint, before = r.choice(ENDPOINTS), r.randint(5, 400)
    after = before + r.randint(20, 2000)
    change = r.choice(
        [
            f"the {r.choice(PACKAGES)} {_ver(r)} upgrade",
            "turning on request logging",
            f"PR #{r.randint(100, 9999)}",
            "the ORM change",
            "moving to the new region",
        ]
    )
    text = r.choice(
        [
            f"{endpoint} p99 went from {before} ms to {after} ms after {change}",
            f"Regression: {endpoint} is {after} ms at p99 (was {before} ms) since {change}",
        ]
    )
    query = r.choice([f"{endpoint} latency regression", f"why is {endpoint} slow", f"{endpoint} p99"])
    return "perf", text, query


def _disk(r: random.Random) -> tuple[str, str, str]:
    host, what = _host(r), r.choice(["docker images", "model checkpoints", "WAL files", "old logs", "pip wheels"])
    text = r.choice(
        [
            f"{host} disk at {r.randint(80, 99)}%: {r.choice(DIRS)} holds {r.randint(5, 900)} GB of {what}",
            f"Cleaned {r.randint(5, 900)} GB of {what} on {host}",
        ]
    )
    query = r.choice([f"{host} disk full", f"where are the {what}", f"free space {what}"])
    return "ops", text, query


def _training(r: random.Random) -> tuple[str, str, str]:
    model = r.choice(["SmolLM2-135M", "Llama-3-8B", "Qwen2.5-1.5B", "MiniLM", "Mistral-7B", "Phi-3-mini", "BERT-base"])
    gpu, batch = r.choice(GPUS), r.choice([1, 2, 4, 8, 16, 32, 64])
    text = r.choice(
        [
            f"Training {model} with batch {batch} on {gpu} uses {r.randint(2, 78)} GB; "
            f"LoRA rank {r.choice([4, 8, 16])}",
            f"{model} LoRA on {gpu}: {r.randint(20, 9000)} tokens/s at batch {batch}, loss {r.uniform(0.8, 3):.2f}",
        ]
    )
    query = r.choice([f"{model} memory on {gpu}", f"{model} lora training speed", f"fine-tune {model}"])
    return "ml", text, query


def _ci(r: random.Random) -> tuple[str, str, str]:
    job = r.choice(["lint", "unit", "integration", "build-image", "e2e", "docs", "release", "typecheck"])
    before = r.randint(4, 60)
    thing = r.choice(["the pip cache", "docker layers", "the uv cache", "node_modules", "the torch wheel"])
    text = r.choice(
        [
            f"CI job {job} took {before} min; caching {thing} cut it to {max(1, before // r.randint(2, 6))} min",
            f"The {job} workflow ({r.choice(DIRS)}ci.yml) is slow because it never caches {thing}",
        ]
    )
    query = r.choice([f"speed up CI {job}", f"CI cache {thing}", f"{job} job slow"])
    return "ci", text, query


def _migration(r: random.Random) -> tuple[str, str, str]:
    num, table = r.randint(1, 400), r.choice(TABLES)
    col = r.choice(["tenant_id", "deleted_at", "version", "source", "embedding", "status", "region"])
    text = r.choice(
        [
            f"Migration {num:04d}_add_{col} adds {col} to {table}; run it before deploying {_ver(r)}",
            f"{table}.{col} was added in migration {num:04d}; backfill with `alembic upgrade head` on {r.choice(ENVS)}",
        ]
    )
    query = r.choice([f"which migration added {col}", f"{table} {col} migration", f"{table} schema change"])
    return "db", text, query


def _secret_location(r: random.Random) -> tuple[str, str, str]:
    service, env = r.choice(SERVICES), r.choice(ENVS)
    path = f"secret/{env.replace('the ', '').replace(' ', '-').lower()}/{service.lower()}"
    text = r.choice(
        [
            f"The {service} token for {env} is in Vault at {path}, not in .env",
            f"{env} {service} credentials: read them from {path} (rotated every {r.randint(7, 90)} days)",
        ]
    )
    query = r.choice([f"where is the {service} password for {env}", f"{service} credentials", f"{service} token"])
    return "security", text, query


def _todo(r: random.Random) -> tuple[str, str, str]:
    action = r.choice(
        [
            "remove the feature flag",
            "add a timeout",
            "drop the legacy endpoint",
            "write the migration test",
            "delete the debug logging",
            "handle the empty case",
        ]
    )
    path, release = _path(r), _ver(r)
    text = r.choice([f"TODO: {action} in {path} before the {release} release", f"Before {release}: {action} ({path})"])
    query = r.choice([f"todo {path}", f"what is left before {release}", f"{action}"])
    return "todo", text, query


def _api_behaviour(r: random.Random) -> tuple[str, str, str]:
    method, endpoint = r.choice(["GET", "POST", "PUT", "DELETE", "PATCH"]), r.choice(ENDPOINTS)
    status = r.choice([400, 401, 403, 404, 409, 413, 422, 429, 500, 502, 503])
    cond = r.choice(
        [
            "the body is over 1 MB",
            "the token has expired",
            "the tenant header is missing",
            "two requests race",
            "the upstream is slow",
            "the id is not a UUID",
        ]
    )
    text = r.choice([f"{method} {endpoint} returns {status} when {cond}", f"{endpoint} ({method}): {status} if {cond}"])
    query = r.choice([f"why does {endpoint} return {status}", f"{method} {endpoint} error", f"{endpoint} {status}"])
    return "http", text, query


def _network(r: random.Random) -> tuple[str, str, str]:
    host, service = _host(r), r.choice(SERVICES)
    via = r.choice(["the WireGuard tunnel", "Tailscale", "the bastion", "an SSH tunnel", "the VPN", "the LB"])
    ip = f"10.{r.randint(0, 20)}.{r.randint(0, 255)}.{r.randint(2, 254)}"
    text = r.choice(
        [
            f"{host} reaches {service} through {via}; port {_port(r, service)} is blocked by the firewall",
            f"{service} is at {ip} on the internal network; from {host} go via {via}",
        ]
    )
    query = r.choice([f"how does {host} reach {service}", f"{service} ip address", f"{service} network access"])
    return "network", text, query


def _git(r: random.Random) -> tuple[str, str, str]:
    feature, pr = r.choice(FEATURES), r.randint(10, 9999)
    branch = f"{r.choice(PEOPLE).lower()}/{feature.replace(' ', '-').replace('the-', '')}"
    text = r.choice(
        [
            f"Branch {branch} has the {feature} work; rebase onto main before merging PR #{pr}",
            f"PR #{pr} ({feature}) is blocked on review from {r.choice(PEOPLE)}",
        ]
    )
    query = r.choice([f"which branch has {feature}", f"PR for {feature}", f"{feature} pull request"])
    return "git", text, query


def _gotcha(r: random.Random) -> tuple[str, str, str]:
    pkg, gotcha = r.choice(PACKAGES), r.choice(GOTCHAS)
    text = r.choice([f"{pkg} {_ver(r)} gotcha: {gotcha}", f"Careful with {pkg}: {gotcha}"])
    query = r.choice([f"{pkg} gotcha", f"{pkg} {' '.join(gotcha.split()[:3])}", f"{pkg} pitfalls"])
    return "gotcha", text, query


def _meeting(r: random.Random) -> tuple[str, str, str]:
    person, day = r.choice(PEOPLE), r.choice(DAYS)
    action = r.choice(
        [
            f"migrate {r.choice(PROJECTS)} to {r.choice(SERVICES)}",
            f"write the runbook for {r.choice(SERVICES)}",
            f"review the {r.choice(FEATURES)} design",
            f"load-test {r.choice(ENDPOINTS)}",
            f"upgrade {r.choice(PACKAGES)} everywhere",
        ]
    )
    text = r.choice([f"Agreed with {person} to {action} by {day}", f"{person} owns: {action} (due {day})"])
    query = r.choice([f"what did {person} agree to", f"who owns {action}", f"{action.split()[0]} plan {day}"])
    return "meeting", text, query


def _logs(r: random.Random) -> tuple[str, str, str]:
    service, host = r.choice(SERVICES), _host(r)
    logpath = r.choice(
        [f"/var/log/{service.lower()}/", f"journalctl -u {service.lower()}", "Loki (label app=" + service.lower() + ")"]
    )
    text = r.choice([f"{service} logs on {host} go to {logpath}", f"Look for {service} errors on {host} in {logpath}"])
    query = r.choice([f"where are the {service} logs", f"{service} log location {host}", f"{service} logs"])
    return "ops", text, query


def _slow_query(r: random.Random) -> tuple[str, str, str]:
    table, rows = r.choice(TABLES), r.choice(["40k", "2M", "12M", "300k", "90M", "1.5M"])
    col = r.choice(["created_at", "tenant_id", "user_id", "status", "email", "updated_at"])
    text = r.choice(
        [
            f"Query on {table} ({rows} rows) takes {r.randint(200, 9000)} ms without an index on {col}",
            f"Added index on {table}({col}): lookup dropped to {r.randint(1, 40)} ms over {rows} rows",
        ]
    )
    query = r.choice([f"{table} slow query", f"index on {table} {col}", f"why is the {table} query slow"])
    return "db", text, query


def _python_version(r: random.Random) -> tuple[str, str, str]:
    project, pyver = r.choice(PROJECTS), r.choice(["3.10", "3.11", "3.12", "3.13"])
    reason = r.choice(
        [
            f"{r.choice(PACKAGES)} has no wheels for newer versions",
            "the base image ships it",
            "we use match statements",
            "the NAS only has that",
            "tomllib is needed",
        ]
    )
    text = r.choice([f"{project} needs Python {pyver}: {reason}", f"Stay on Python {pyver} for {project} ({reason})"])
    query = r.choice([f"which python for {project}", f"{project} python version", f"python {pyver} {project}"])
    return "deps", text, query


TEMPLATES: list[Template] = [
    _bump, _port_note, _host_role, _error_fix, _benchmark, _decision, _config_location, _flaky, _env_var, _cron,
    _pin, _cmd_tip, _incident, _regression, _disk, _training, _ci, _migration, _secret_location, _todo,
    _api_behaviour, _network, _git, _gotcha, _meeting, _logs, _slow_query, _python_version,
]  # fmt: skip


def generate(seed: int = DEFAULT_SEED) -> Iterator[Note]:
    """An endless stream of distinct notes; the same seed always gives the same stream."""
    r = random.Random(seed)
    seen: set[str] = set()
    while True:
        template = r.randrange(len(TEMPLATES))
        category, text, query = TEMPLATES[template](r)
        if text in seen:  # memories are content-addressed: a repeated text would merge, not add
            continue
        seen.add(text)
        project = r.choices(PROJECTS, weights=PROJECT_WEIGHTS)[0]
        source = r.choice([f"notes/{project}.md", f"{project}/README.md", *SOURCES])
        yield Note(text=text, tags=(category, project), source=source, template=template, query=query)


def _cache_path(seed: int, n: int) -> Path:
    return CACHE_DIR / f"corpus-v{FORMAT}-s{seed}-{n}.jsonl"


def load_corpus(n: int, seed: int = DEFAULT_SEED) -> list[Note]:
    """The first `n` notes of the stream, read from the smallest cached corpus that holds them."""
    cached = sorted((int(p.stem.rsplit("-", 1)[1]), p) for p in CACHE_DIR.glob(f"corpus-v{FORMAT}-s{seed}-*.jsonl"))
    for size, path in cached:
        if size >= n:
            notes = []
            with path.open(encoding="utf-8") as f:
                for line, _ in zip(f, range(n), strict=False):
                    notes.append(Note.from_json(line))
            return notes
    stream = generate(seed)
    notes = [next(stream) for _ in range(n)]
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    tmp = _cache_path(seed, n).with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        f.writelines(note.to_json() + "\n" for note in notes)
    tmp.replace(_cache_path(seed, n))
    return notes


if __name__ == "__main__":
    import sys

    for note in load_corpus(int(sys.argv[1]) if len(sys.argv) > 1 else 20):
        print(f"[{','.join(note.tags)}] {note.text}    <- {note.query}")
