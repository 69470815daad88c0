"""Queue, Nodes and Sessions views and the status bar. Each renders a `Hive.status()` snapshot it is given;
none of them does I/O on the UI thread."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widget import Widget
from textual.widgets import DataTable, Label, ProgressBar, Sparkline, Static

from hivemind_app.records.nodes import NodeStatus, RoundStep
from hivemind_app.records.sessions import Session
from hivemind_app.records.status import HiveStatus, SyncState
from hivemind_app.timespec import humanise_age


class StatusBar(Static):
    """Hub state, memory count, this node. Running without Redis is a normal state, shown calmly."""

    DEFAULT_CSS = """
    StatusBar { height: 1; background: $panel; color: $text; padding: 0 1; }
    """

    def show(self, status: HiveStatus, mode: str, roles: Sequence[str] | None = None) -> None:
        sync = status.sync
        if not status.redis.configured:
            hub = Text("redis: local store only", style="dim")
        elif sync.online:
            waiting = f", {sync.outbox} to push" if sync.outbox else ""
            lag = f", lag {sync.lag_s:.0f}s" if sync.lag_s is not None and sync.lag_s >= 5 else ""
            hub = Text(f"redis: online{waiting}{lag}", style="green")
        else:
            hub = Text(f"redis: offline, {sync.outbox} writes kept locally", style="yellow")
        mem = status.memories
        waiting = f" ({mem.pending_embeddings} to embed)" if mem.pending_embeddings else ""
        conflicts = f"  │  {sync.conflicts} conflicts" if sync.conflicts else ""
        quarantined = (
            Text(f"  │  {sync.quarantined} quarantined", style="bold red") if sync.quarantined else Text("")
        )
        self.update(
            Text.assemble(
                hub,
                "  │  ",
                f"{mem.live} memories{waiting}",
                conflicts,
                quarantined,
                "  │  ",
                f"node {status.node.name}"
                + (f" ({','.join(roles) or 'no roles'})" if roles is not None else " (browsing)"),
                "  │  ",
                f"search {mode}",
            )
        )


def describe_learning(learning: dict[str, Any], rounds: list[dict[str, Any]], now: float) -> str:
    """The learning loop in a few lines: the adapter served, what waits, and the last rounds."""
    active = learning.get("active")
    if active:
        accuracy = active.get("metrics", {}).get("accuracy")
        shown = f", held-out accuracy {accuracy:.0%}" if isinstance(accuracy, int | float) else ""
        adapter = f"v{active['version']} active{shown}, published {humanise_age(now - active['created_at'])} ago"
    elif learning.get("active_refused"):  # the pointer in Redis did not verify: the nodes keep what they serve
        adapter = f"unknown: {learning['active_refused']}"
    else:
        adapter = "none: the inference nodes serve the base model"
    if learning.get("offline"):
        waiting = "unknown while Redis is offline"
    elif learning.get("backlog") is None:
        waiting = "unknown"
    else:
        backlog = int(learning["backlog"])
        waiting = f"{backlog} queue {'entry waits' if backlog == 1 else 'entries wait'} for a round"
    lines = [
        f"adapter           {adapter}",
        f"training          {waiting}; {learning.get('pool', 0)} examples kept for retraining",
    ]
    for report in rounds[:5]:
        evaluation = report.get("evaluation") or {}
        scores = (
            f", {evaluation['reference']} {evaluation['reference_accuracy']:.0%} -> {evaluation['accuracy']:.0%}"
            if evaluation
            else ""
        )
        version = f" as v{report['adapter_version']}" if report.get("adapter_version") else ""
        age = humanise_age(now - float(report.get("finished_at", now)))
        lines.append(f"  {age:>8} ago   {report.get('verdict', '?')}{version}{scores}: {report.get('reason', '')}")
    if not rounds:
        lines.append("  no training rounds yet")
    return "\n".join(lines)


class QueueView(Widget):
    """Learning queue, embed backlog and outbox with a sparkline; the learning loop, with a progress bar
    while a round runs (press t to run one now)."""

    DEFAULT_CSS = """
    QueueView { padding: 1 2; height: 1fr; }
    QueueView #queue-figures, QueueView #training-figures { height: auto; }
    QueueView Sparkline { height: 3; margin: 1 0; }
    QueueView .note { color: $text-muted; }
    QueueView #training-figures { margin-top: 1; }
    QueueView #training-run { height: auto; display: none; margin-top: 1; }
    QueueView #training-run.running { display: block; }
    """

    BINDINGS = [Binding("t", "train_now", "Train now")]

    class TrainRequested(Message):
        """The user asked for a training round now."""

    class RoundProgressed(Message):
        """A step of the running round (None: it finished)."""

        def __init__(self, step: RoundStep | None) -> None:
            self.step = step
            super().__init__()

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.history: deque[float] = deque([0.0], maxlen=120)
        self.can_focus = True

    def compose(self) -> ComposeResult:
        yield Static("", id="queue-figures")
        yield Label("learning queue depth, last minutes", classes="note")
        yield Sparkline(list(self.history), id="queue-sparkline")
        yield Static("", id="training-figures")
        with Vertical(id="training-run"):
            yield Label("", id="training-stage")
            yield ProgressBar(id="training-progress", show_eta=False)
        yield Label("t: train now (one round on the learning queue)", classes="note")

    def action_train_now(self) -> None:
        self.post_message(self.TrainRequested())

    @on(RoundProgressed)
    def _show_progress(self, message: RoundProgressed) -> None:
        run = self.query_one("#training-run")
        step = message.step
        run.set_class(step is not None, "running")
        if step is None:
            return
        loss = f", loss {step.loss:.3f}" if step.loss is not None else ""
        self.query_one("#training-stage", Label).update(f"{step.stage}: {step.detail}{loss}")
        bar = self.query_one("#training-progress", ProgressBar)
        bar.update(total=step.total or None, progress=step.done)

    def show_learning(self, learning: dict[str, Any], rounds: list[dict[str, Any]], now: float) -> None:
        self.query_one("#training-figures", Static).update(describe_learning(learning, rounds, now))

    def show(self, status: HiveStatus) -> None:
        depth = status.learning_queue
        sync = status.sync
        shared = sync.learning_queue_len
        self.history.append(float(shared if shared is not None else depth))
        if not status.redis.configured:
            outbox = "not configured (no Redis: nothing to push)"
        else:
            where = "online" if sync.online else "offline: kept until Redis is back"
            outbox = f"{sync.outbox} writes to push ({where}), {sync.failed_syncs} failed syncs"
        in_redis = f", {shared} in Redis" if shared is not None else ""
        lines = [
            f"learning queue    {depth} entries recorded here{in_redis}",
            f"embed backlog     {status.memories.pending_embeddings} memories without vectors",
            f"outbox            {outbox}",
        ]
        if status.redis.configured:
            lines.append(f"quarantine        {describe_quarantine(sync)}")
            lines.append(f"hive epoch        {describe_reconcile(sync, time.time())}")
        # Text, not markup: a key or reason read from Redis may hold brackets
        self.query_one("#queue-figures", Static).update(Text("\n".join(lines)))
        self.query_one("#queue-sparkline", Sparkline).data = list(self.history)


def describe_quarantine(sync: SyncState) -> str:
    if not sync.quarantined:
        return "none (every record read from Redis was valid)"
    newest = sync.quarantine[0] if sync.quarantine else None
    latest = f"; newest {newest.key}: {newest.reason}" if newest is not None else ""
    return f"{sync.quarantined} records from Redis refused (hivemind-app sync --quarantined){latest}"


def describe_reconcile(sync: SyncState, now: float) -> str:
    """The hive epoch this node reconciled with, and when and why it last did (a new, flushed or restored hub)."""
    epoch = sync.hub_epoch or "-"
    if sync.last_reconcile is None:
        return f"{epoch} (never reconciled)"
    why = f": {sync.last_reconcile_reason}" if sync.last_reconcile_reason else ""
    return f"{epoch}, last reconciled {humanise_age(max(0.0, now - sync.last_reconcile))}{why}"


HEALTH_STYLES = {
    "alive": "green",
    "late": "yellow",
    "dead": "bold red",
    "unknown": "dim",
    "unverified": "magenta",
    "this node": "green",
}


class NodesView(Widget):
    """This node, its workers, and every peer from discovery and heartbeats, with a health colour."""

    DEFAULT_CSS = """
    NodesView { padding: 1 2; height: 1fr; }
    NodesView DataTable { height: auto; max-height: 1fr; }
    NodesView .note { color: $text-muted; margin-top: 1; }
    """

    def compose(self) -> ComposeResult:
        table: DataTable[str | Text] = DataTable(id="nodes-table", cursor_type="row")
        yield table
        yield Static("", id="workers", classes="note")

    def on_mount(self) -> None:
        table = self.query_one("#nodes-table", DataTable)
        for column in ("name", "address", "roles", "model", "adapter", "load", "last seen", "health"):
            table.add_column(column, key=column)

    def show(
        self, status: HiveStatus, node: NodeStatus | None, now: float, hub_nodes: list[dict[str, Any]] | None = None
    ) -> None:
        table = self.query_one("#nodes-table", DataTable)
        table.clear()
        emb = status.embedding
        address = f"127.0.0.1:{node.port}" if node else "-"
        roles = ",".join(node.roles) if node and node.roles else "-"
        table.add_row(
            status.node.name,
            address,
            roles,
            f"{emb.model} ({emb.dim or '?'}d)",
            "-",
            "-",
            "now",
            Text("this node", style=HEALTH_STYLES["this node"]),
            key=f"self-{status.node.id}",
        )
        peers = node.peers if node else ()
        for entry in peers:
            peer = entry.peer
            seen = humanise_age(max(0.0, now - entry.last_seen)) if entry.last_seen else "never"
            table.add_row(
                peer.name,
                f"{peer.address}:{peer.port}",
                ",".join(peer.roles) or "-",
                entry.embed_model or "-",
                entry.adapter or "-",
                str(entry.load),
                seen,
                Text(
                    entry.health + (f" ({entry.why})" if entry.why else ""), style=HEALTH_STYLES.get(entry.health, "")
                ),
                key=peer.node_id,
            )
        # Nodes that only Redis knows of (another subnet, mDNS off): alive while their heartbeat key lives.
        shown = {status.node.id, *(entry.peer.node_id for entry in peers)}
        for beat in hub_nodes or []:
            if beat["node_id"] in shown:
                continue
            table.add_row(
                beat.get("name", beat["node_id"]),
                f"(redis) :{beat.get('port', '-')}",
                ",".join(beat.get("roles", [])) or "-",
                beat.get("model") or "-",
                beat.get("adapter") or "-",
                str(beat.get("load", 0)),
                humanise_age(max(0.0, now - float(beat.get("at", now)))),
                Text("alive", style=HEALTH_STYLES["alive"]),
                key=f"redis-{beat['node_id']}",
            )
        workers = self.query_one("#workers", Static)
        if node is None:
            workers.update("The node runtime is not running here (--no-node): peers are not tracked.")
        else:
            listed = ", ".join(
                f"{w.name} {w.state}" + (f" ({w.crashes} crashes)" if w.crashes else "") for w in node.workers
            )
            workers.update(f"Workers: {listed or 'none'}")


class SessionsView(Widget):
    """Sessions with their current task and files; a session edited on two nodes while apart is flagged,
    and `a` / `b` keep one side of the selected conflict."""

    DEFAULT_CSS = """
    SessionsView { padding: 1 2; height: 1fr; }
    SessionsView DataTable { height: 1fr; }
    SessionsView #conflict-detail { height: auto; color: $warning; }
    """

    BINDINGS = [Binding("a", "keep('A')", "Keep A"), Binding("b", "keep('B')", "Keep B")]

    class ResolveRequested(Message):
        def __init__(self, session_id: str, keep: str) -> None:
            self.session_id = session_id
            self.keep = keep
            super().__init__()

    def __init__(self, clock: Callable[[], float] = time.time, id: str | None = None) -> None:
        super().__init__(id=id)
        self.clock = clock
        self.conflicts: dict[str, dict[str, Any]] = {}

    def compose(self) -> ComposeResult:
        table: DataTable[str | Text] = DataTable(id="sessions-table", cursor_type="row")
        yield table
        yield Static("", id="conflict-detail")

    def on_mount(self) -> None:
        table = self.query_one("#sessions-table", DataTable)
        for column in ("session", "current task", "files", "updated", "sync"):
            table.add_column(column, key=column)

    def show(self, sessions: Sequence[Session], conflicts: dict[str, dict[str, Any]] | None = None) -> None:
        self.conflicts = conflicts or {}
        table = self.query_one("#sessions-table", DataTable)
        table.clear()
        detail = self.query_one("#conflict-detail", Static)
        if self.conflicts:
            lines = []
            for sid, record in self.conflicts.items():
                a, b = record["winner"], record["loser"]
                lines.append(
                    f"conflict in {sid}: A ({a['node']}) {a['state'].get('current_task', '')!r} vs "
                    f"B ({b['node']}) {b['state'].get('current_task', '')!r}: select it, then a or b"
                )
            detail.update("\n".join(lines))
        else:
            detail.update("")
        if not sessions:
            table.add_row("-", Text("no sessions yet: Claude Code hooks create them", style="dim"), "", "", "")
            return
        now = self.clock()
        for session in sessions:
            sid = session.session_id
            updated = session.updated_at
            table.add_row(
                sid,
                session.current_task or "-",
                str(len(session.files)),
                humanise_age(max(0.0, now - updated)) if updated is not None else "never",
                Text("conflict", style="bold yellow") if sid in self.conflicts else "",
                key=sid,
            )

    def action_keep(self, side: str) -> None:
        table = self.query_one("#sessions-table", DataTable)
        if table.row_count == 0:
            return
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        sid = str(row_key.value)
        if sid in self.conflicts:
            self.post_message(self.ResolveRequested(sid, side))
