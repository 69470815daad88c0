"""The `hivemind-app` TUI: memories, queue, nodes and sessions, keyboard first.

All store access happens in thread workers that post typed messages back; the UI thread only renders.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, TabbedContent, TabPane

from hivemind_app.errors import HivemindError
from hivemind_app.hive import SEARCH_MODES, Hive
from hivemind_app.ml.onnx_convert import set_conversion_reporter
from hivemind_app.ml.trainer import RoundProgress
from hivemind_app.nodes.runtime import NodeRuntime
from hivemind_app.records.nodes import NodeStatus
from hivemind_app.records.sessions import Session
from hivemind_app.records.status import HiveStatus
from hivemind_app.tui.background import BackgroundWork
from hivemind_app.tui.dialogs import ConfirmScreen, HelpScreen, NewMemory, NewMemoryScreen
from hivemind_app.tui.memories import MemoriesView
from hivemind_app.tui.panels import NodesView, QueueView, SessionsView, StatusBar

REFRESH_SECONDS = 2.0


class HivemindApp(App[None]):
    TITLE = "hivemind"
    CSS = """
    TabbedContent { height: 1fr; }
    TabPane { padding: 0; }
    """

    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("slash", "focus_search", "Search"),
        Binding("n", "new_memory", "New"),
        Binding("question_mark", "help", "Help"),
        Binding("r", "refresh", "Refresh", show=False),
        Binding("1", "show_tab('memories')", "Memories", show=False),
        Binding("2", "show_tab('queue')", "Queue", show=False),
        Binding("3", "show_tab('nodes')", "Nodes", show=False),
        Binding("4", "show_tab('sessions')", "Sessions", show=False),
    ]

    class StatusReady(Message):
        def __init__(
            self,
            status: HiveStatus,
            sessions: list[Session],
            node: NodeStatus | None,
            conflicts: dict[str, dict[str, Any]],
            hub_nodes: list[dict[str, Any]],
            learning: dict[str, Any],
            rounds: list[dict[str, Any]],
        ) -> None:
            self.status = status
            self.sessions = sessions
            self.node = node
            self.conflicts = conflicts
            self.hub_nodes = hub_nodes
            self.learning = learning
            self.rounds = rounds
            super().__init__()

    def __init__(
        self,
        hive: Hive,
        clock: Callable[[], float] = time.time,
        refresh_seconds: float = REFRESH_SECONDS,
        node: NodeRuntime | None = None,
    ) -> None:
        super().__init__()
        self.hive = hive
        self.clock = clock
        self.refresh_seconds = refresh_seconds
        self.node = node
        self._node_running = False
        self._training_here = False

    def compose(self) -> ComposeResult:
        with TabbedContent(id="tabs"):
            with TabPane("Memories", id="memories"):
                yield MemoriesView(self.hive, clock=self.clock, id="memories-view")
            with TabPane("Queue", id="queue"):
                yield QueueView(id="queue-view")
            with TabPane("Nodes", id="nodes"):
                yield NodesView(id="nodes-view")
            with TabPane("Sessions", id="sessions"):
                yield SessionsView(clock=self.clock, id="sessions-view")
        yield BackgroundWork(id="background-work")
        yield StatusBar(id="status-bar")
        yield Footer()

    def on_mount(self) -> None:
        # The first vector search may convert the embedding model (once per machine): show it, not a freeze.
        set_conversion_reporter(self.query_one(BackgroundWork).report_conversion)
        if self.node is not None:
            self.start_node()
        self.action_refresh()
        if self.refresh_seconds > 0:
            self.set_interval(self.refresh_seconds, self.action_refresh)
        self.query_one("#search").focus()

    # -- the node runtime, hosted in the app -------------------------------------------------------

    @work(thread=True, group="node")
    def start_node(self) -> None:
        assert self.node is not None
        self.node.supervisor.on_crash = lambda worker, exc: self.call_from_thread(
            self.notify, f"worker {worker.name} crashed: {exc}; restarting", severity="warning", timeout=8
        )
        try:
            self.node.start()
        except OSError as exc:
            self.call_from_thread(
                self.notify,
                f"The node runtime could not start ({exc}); is a node already running here? Browsing only.",
                severity="warning",
                timeout=10,
            )
            return
        self._node_running = True
        self.call_from_thread(self.action_refresh)

    def on_unmount(self) -> None:
        set_conversion_reporter(None)
        if self.node is not None and self._node_running:
            self.node.stop()

    # -- live data ----------------------------------------------------------------------------------

    def action_refresh(self) -> None:
        self.load_status()

    @work(thread=True, exclusive=True, group="status")
    def load_status(self) -> None:
        try:
            hosted = self.node is not None and self._node_running
            if self.hive.hub_configured and not hosted:
                self.hive.sync()  # no node runtime here to keep the mirror in step, so this refresh does
            status = self.hive.status()
            sessions = self.hive.list_sessions()
            node = self.node.status() if self.node is not None and hosted else None
            conflicts = self.hive.conflicts(sync=False) if self.hive.hub_configured else {}
            hub_nodes = self.hive.hub_nodes()
            learning = self.hive.learning_status()
            rounds = self.hive.training_history(5) if not learning.get("offline") else []
        except HivemindError as exc:
            self.call_from_thread(self.notify, str(exc), severity="error", timeout=6)
            return
        self.post_message(self.StatusReady(status, sessions, node, conflicts, hub_nodes, learning, rounds))

    @on(StatusReady)
    def _show_status(self, message: StatusReady) -> None:
        if not self.query(MemoriesView):
            return  # a refresh that finished while the app was closing: nothing left to show it in
        mode = self.query_one(MemoriesView).mode
        self.query_one(StatusBar).show(message.status, mode, message.node.roles if message.node else None)
        self.query_one(BackgroundWork).show_index(message.status.vector_index)
        queue = self.query_one(QueueView)
        queue.show(message.status)
        queue.show_learning(message.learning, message.rounds, self.clock())
        scheduled = message.node.training if message.node else None
        if scheduled is not None and not self._training_here:
            queue.post_message(QueueView.RoundProgressed(scheduled))
        self.query_one(NodesView).show(message.status, message.node, self.clock(), message.hub_nodes)
        self.query_one(SessionsView).show(message.sessions, message.conflicts)

    # -- actions ------------------------------------------------------------------------------------

    def action_focus_search(self) -> None:
        self.query_one(TabbedContent).active = "memories"
        self.query_one("#search").focus()

    def action_show_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_new_memory(self) -> None:
        self.push_screen(NewMemoryScreen(), self._store_new)

    def action_set_mode(self, mode: str) -> None:
        view = self.query_one(MemoriesView)
        while view.mode != mode:
            view.action_cycle_mode()

    def _store_new(self, draft: NewMemory | None) -> None:
        if draft is not None:
            self.store_memory(draft)

    @work(thread=True, group="writes")
    def store_memory(self, draft: NewMemory) -> None:
        try:
            stored = self.hive.store_memory(draft.text, tags=draft.tags, source=draft.source)
        except HivemindError as exc:
            self.call_from_thread(self.notify, str(exc), title="Not stored", severity="error", timeout=8)
            return
        verb = "Stored" if stored.created else "Already known; merged"
        self.call_from_thread(self.notify, f"{verb} {stored.memory.id[:12]}")
        self.call_from_thread(self._after_write)

    @on(MemoriesView.DeleteRequested)
    def _confirm_delete(self, message: MemoriesView.DeleteRequested) -> None:
        first = message.memory.text.splitlines()[0][:60] if message.memory.text else message.memory.id[:12]
        self.push_screen(
            ConfirmScreen(f"Delete this memory?\n\n{first}"),
            partial(self._delete_if_confirmed, message.memory.id),
        )

    def _delete_if_confirmed(self, memory_id: str, confirmed: bool | None) -> None:
        if confirmed:
            self.delete_memory(memory_id)

    @work(thread=True, group="writes")
    def delete_memory(self, memory_id: str) -> None:
        try:
            self.hive.delete_memory(memory_id)
        except HivemindError as exc:
            self.call_from_thread(self.notify, str(exc), title="Not deleted", severity="error")
            return
        self.call_from_thread(self.notify, f"Deleted {memory_id[:12]}")
        self.call_from_thread(self._after_write)

    @on(SessionsView.ResolveRequested)
    def _resolve(self, message: SessionsView.ResolveRequested) -> None:
        self.resolve_conflict(message.session_id, message.keep)

    @work(thread=True, group="writes")
    def resolve_conflict(self, session_id: str, keep: str) -> None:
        try:
            self.hive.resolve_conflict(session_id, keep)
        except HivemindError as exc:
            self.call_from_thread(self.notify, str(exc), title="Not resolved", severity="error")
            return
        self.call_from_thread(self.notify, f"Session {session_id}: kept {keep}")
        self.call_from_thread(self.action_refresh)

    @on(QueueView.TrainRequested)
    def _train_requested(self) -> None:
        if self._training_here:
            self.notify("A training round is already running.", severity="warning")
            return
        self._training_here = True
        self.notify("Training round started: examples, training, evaluation, verdict.")
        self.train_now()

    @work(thread=True, exclusive=True, group="train")
    def train_now(self) -> None:
        queue = self.query_one(QueueView)

        def progress(step: RoundProgress) -> None:
            queue.post_message(QueueView.RoundProgressed(step))

        try:
            report = self.hive.train_round(progress=progress)
        except HivemindError as exc:
            self.call_from_thread(self.notify, str(exc), title="Training failed", severity="error", timeout=10)
        else:
            version = f" as v{report['adapter_version']}" if report.get("adapter_version") else ""
            severity = "information" if report["verdict"] == "promoted" else "warning"
            self.call_from_thread(
                self.notify,
                f"{report['verdict']}{version}: {report['reason']}",
                title="Training round",
                severity=severity,
                timeout=12,
            )
        finally:
            self._training_here = False
            queue.post_message(QueueView.RoundProgressed(None))
            self.call_from_thread(self.action_refresh)

    def _after_write(self) -> None:
        self.query_one(MemoriesView).refresh_results()
        self.action_refresh()

    # -- command palette ----------------------------------------------------------------------------

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("New memory", "Store a new memory", self.action_new_memory)
        for mode in SEARCH_MODES:
            yield SystemCommand(
                f"Search mode: {mode}", f"Search memories by {mode}", partial(self.action_set_mode, mode)
            )
        for tab in ("memories", "queue", "nodes", "sessions"):
            yield SystemCommand(f"Show {tab}", f"Switch to the {tab.title()} view", partial(self.action_show_tab, tab))
        yield SystemCommand("Refresh", "Reload status, queue, nodes and sessions", self.action_refresh)


def run_tui(hive: Hive, node: NodeRuntime | None = None) -> None:
    HivemindApp(hive, node=node).run()
