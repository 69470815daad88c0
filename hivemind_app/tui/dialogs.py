"""Modal screens: store a new memory, confirm a delete, the key-binding help."""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static, TextArea


@dataclass(frozen=True)
class NewMemory:
    text: str
    tags: list[str]
    source: str | None


class NewMemoryScreen(ModalScreen[NewMemory | None]):
    """Text, tags and source for a new memory. Ctrl+S stores, Escape cancels."""

    DEFAULT_CSS = """
    NewMemoryScreen { align: center middle; }
    NewMemoryScreen > Vertical {
        width: 90%; max-width: 100; height: auto; max-height: 90%;
        border: thick $primary; background: $surface; padding: 0 1;
    }
    NewMemoryScreen TextArea { height: 8; }
    NewMemoryScreen Horizontal { height: auto; align-horizontal: right; }
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "save", "Store")]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("New memory")
            yield TextArea(id="text")
            yield Input(placeholder="tags, comma separated", id="tags")
            yield Input(placeholder="source (optional)", id="source")
            with Horizontal():
                yield Button("Cancel", id="cancel")
                yield Button("Store", id="save", variant="primary")

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_save(self) -> None:
        text = self.query_one("#text", TextArea).text
        tags = [t.strip() for t in self.query_one("#tags", Input).value.split(",") if t.strip()]
        source = self.query_one("#source", Input).value.strip() or None
        self.dismiss(NewMemory(text=text, tags=tags, source=source))

    @on(Button.Pressed, "#save")
    def _save(self) -> None:
        self.action_save()

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.action_cancel()


class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question; `y` confirms, `n` or Escape declines."""

    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen > Vertical {
        width: 70; height: auto; border: thick $error; background: $surface; padding: 1 2;
    }
    ConfirmScreen Horizontal { height: auto; align-horizontal: right; margin-top: 1; }
    """

    BINDINGS = [Binding("y", "answer(True)", "Yes"), Binding("n,escape", "answer(False)", "No")]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.question)
            with Horizontal():
                yield Button("No", id="no")
                yield Button("Yes, delete", id="yes", variant="error")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


class HelpScreen(ModalScreen[None]):
    """Every key binding, in one place."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical { width: 64; height: auto; border: thick $primary; background: $surface; padding: 1 2; }
    """

    BINDINGS = [Binding("escape,q,question_mark", "app.pop_screen", "Close")]

    KEYS = [
        ("/", "search memories (tag:x source:y session:z since:7d filter)"),
        ("m", "cycle search mode: hybrid, vector, keyword"),
        ("n", "store a new memory (Ctrl+S to save)"),
        ("d", "delete the selected memory (asks first)"),
        ("1 2 3 4", "Memories, Queue, Nodes, Sessions"),
        ("r", "refresh now"),
        ("Ctrl+P", "command palette (themes, views, modes)"),
        ("?", "this help"),
        ("q", "quit"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Keys")
            yield Static("\n".join(f"{key:>9}  {what}" for key, what in self.KEYS))
