"""The Memories view: search as you type, results table, detail pane, store and delete."""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import DataTable, Input, Label, Static
from textual.worker import get_current_worker

from hivemind_app.display import one_line, terminal_safe
from hivemind_app.errors import HivemindError
from hivemind_app.hive import SEARCH_MODES, Hive
from hivemind_app.records.memories import Memory
from hivemind_app.timespec import humanise_age

FILTER_KEYS = ("tag", "source", "session", "since", "until")


@dataclass(frozen=True)
class ParsedQuery:
    text: str
    tags: tuple[str, ...]
    source: str | None
    session: str | None
    since: str | None
    until: str | None


def parse_query(raw: str) -> ParsedQuery:
    """Split `tag:infra source:notes/* staging port` into filters and the words to search for."""
    try:
        parts = shlex.split(raw)
    except ValueError:
        parts = raw.split()
    words: list[str] = []
    found: dict[str, list[str]] = {key: [] for key in FILTER_KEYS}
    for part in parts:
        key, sep, value = part.partition(":")
        if sep and key in FILTER_KEYS and value:
            found[key].append(value)
        else:
            words.append(part)
    return ParsedQuery(
        text=" ".join(words),
        tags=tuple(found["tag"]),
        source=_last(found["source"]),
        session=_last(found["session"]),
        since=_last(found["since"]),
        until=_last(found["until"]),
    )


def _last(values: list[str]) -> str | None:
    return values[-1] if values else None


class MemoriesView(Widget):
    """Search box, results table and the selected memory's full text."""

    DEFAULT_CSS = """
    MemoriesView { layout: vertical; height: 1fr; }
    MemoriesView #search-row { height: 3; }
    MemoriesView #search { width: 1fr; }
    MemoriesView #mode { width: 16; padding: 1 1 0 1; color: $text-muted; }
    MemoriesView #results { height: 1fr; }
    MemoriesView #detail { height: 7; border-top: solid $primary 40%; padding: 0 1; overflow-y: auto; }
    MemoriesView #message { height: 1; color: $text-muted; padding: 0 1; }
    """

    BINDINGS = [
        Binding("m", "cycle_mode", "Mode"),
        Binding("d", "delete", "Delete"),
    ]

    class ResultsReady(Message):
        """A search (or the recent list) finished in its worker."""

        def __init__(self, query: str, memories: list[tuple[Memory, float | None]], note: str) -> None:
            self.query = query
            self.memories = memories
            self.note = note
            super().__init__()

    class SearchFailed(Message):
        def __init__(self, query: str, error: str) -> None:
            self.query = query
            self.error = error
            super().__init__()

    class DeleteRequested(Message):
        def __init__(self, memory: Memory) -> None:
            self.memory = memory
            super().__init__()

    def __init__(self, hive: Hive, clock: Callable[[], float] = time.time, id: str | None = None) -> None:
        super().__init__(id=id)
        self.hive = hive
        self.clock = clock
        self.mode = "hybrid"
        self._debounce: Timer | None = None
        self._latest = ""
        self._shown: dict[str, Memory] = {}

    def compose(self) -> ComposeResult:
        with Horizontal(id="search-row"):
            yield Input(placeholder="search memories   (tag:x source:y session:z since:7d)", id="search")
            yield Label(f"mode: {self.mode}", id="mode")
        yield Label("", id="message")
        table: DataTable[str | Text] = DataTable(id="results", cursor_type="row", zebra_stripes=True)
        yield table
        with Vertical(id="detail"):
            yield Static("", id="detail-text")

    def on_mount(self) -> None:
        table = self.query_one("#results", DataTable)
        table.add_column("score", width=7, key="score")
        table.add_column("memory", key="memory")
        table.add_column("source", width=14, key="source")
        table.add_column("tags", width=12, key="tags")
        table.add_column("age", width=8, key="age")
        table.add_column("node", width=10, key="node")
        self.refresh_results()

    # -- searching ----------------------------------------------------------------------------------

    @on(Input.Changed, "#search")
    def _query_changed(self, event: Input.Changed) -> None:
        if self._debounce is not None:
            self._debounce.stop()
        self._debounce = self.set_timer(0.15, self.refresh_results)

    @on(Input.Submitted, "#search")
    def _query_submitted(self) -> None:
        if self._debounce is not None:
            self._debounce.stop()
        self.refresh_results()
        self.query_one("#results", DataTable).focus()

    def refresh_results(self) -> None:
        raw = self.query_one("#search", Input).value
        self._latest = f"{self.mode}|{raw}"
        self.run_search(raw, self.mode, self._latest)

    @work(thread=True, exclusive=True, group="search")
    def run_search(self, raw: str, mode: str, token: str) -> None:
        """Runs off the UI thread; a newer search makes this one's result stale, and it is dropped."""
        parsed = parse_query(raw)
        try:
            filters = self.hive.make_filters(
                session_id=parsed.session,
                source=parsed.source,
                tags=parsed.tags,
                since=parsed.since,
                until=parsed.until,
            )
            if parsed.text.strip():
                result = self.hive.search_memory(parsed.text, limit=50, mode=mode, filters=filters)
                rows: list[tuple[Memory, float | None]] = [(hit.memory, hit.score) for hit in result.hits]
                note = result.fallback or f"{len(rows)} results ({mode})"
            else:
                rows = [(memory, None) for memory in self.hive.recent_memories(50, filters)]
                note = f"{len(rows)} most recent memories"
        except HivemindError as exc:
            if not get_current_worker().is_cancelled:
                self.post_message(self.SearchFailed(token, str(exc)))
            return
        if not get_current_worker().is_cancelled:
            self.post_message(self.ResultsReady(token, rows, note))

    @on(ResultsReady)
    def _show_results(self, message: ResultsReady) -> None:
        if message.query != self._latest:
            return
        table = self.query_one("#results", DataTable)
        table.clear()
        self._shown = {}
        now = self.clock()
        for memory, score in message.memories:
            first_line = memory.text.splitlines()[0] if memory.text else ""
            # Text cells, not strings: DataTable reads a string as markup, and stored text is anyone's
            table.add_row(
                "" if score is None else f"{score:.3f}",
                Text(one_line(first_line)),
                Text(one_line(memory.source.rsplit("/", 1)[-1])),
                Text(one_line(" ".join(memory.tags))),
                humanise_age(max(0.0, now - memory.created_at)),
                Text(one_line(memory.origin_node)),
                key=memory.id,
            )
            self._shown[memory.id] = memory
        self.query_one("#message", Label).update(message.note)
        self._show_detail()

    @on(SearchFailed)
    def _show_error(self, message: SearchFailed) -> None:
        if message.query == self._latest:
            self.query_one("#message", Label).update(Text(message.error, style="bold red"))

    # -- selection and actions ----------------------------------------------------------------------

    @on(DataTable.RowHighlighted, "#results")
    def _row_highlighted(self) -> None:
        self._show_detail()

    def selected(self) -> Memory | None:
        table = self.query_one("#results", DataTable)
        if table.row_count == 0:
            return None
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return self._shown.get(str(row_key.value))

    def _show_detail(self) -> None:
        memory = self.selected()
        detail = self.query_one("#detail-text", Static)
        if memory is None:
            detail.update("")
            return
        meta = (
            f"{memory.id[:12]}  source: {', '.join(memory.sources) or '-'}  tags: {', '.join(memory.tags) or '-'}"
            f"  session: {memory.session_id or '-'}  node: {memory.origin_node}"
        )
        detail.update(Text.assemble((one_line(meta), "dim"), "\n", terminal_safe(memory.text)))

    def action_cycle_mode(self) -> None:
        self.mode = SEARCH_MODES[(SEARCH_MODES.index(self.mode) + 1) % len(SEARCH_MODES)]
        self.query_one("#mode", Label).update(f"mode: {self.mode}")
        self.refresh_results()

    def action_delete(self) -> None:
        memory = self.selected()
        if memory is not None:
            self.post_message(self.DeleteRequested(memory))
