"""One line above the status bar for long work the user did not start by hand: the embedding model's
one-off conversion for ONNX Runtime, and the vector index being built. Hidden when there is none."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Label, ProgressBar

from hivemind_app.records.status import IndexState


class BackgroundWork(Horizontal):
    DEFAULT_CSS = """
    BackgroundWork { height: 1; padding: 0 1; display: none; }
    BackgroundWork.-busy { display: block; }
    BackgroundWork Label { width: auto; margin-right: 2; }
    BackgroundWork ProgressBar { width: 40; }
    """

    class ConversionStep(Message):
        """Posted from whichever thread converts the model (thread-safe: `post_message`)."""

        def __init__(self, step: str, done: float) -> None:
            self.step = step
            self.done = done
            super().__init__()

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self._conversion: tuple[str, float] | None = None
        self._index: IndexState | None = None

    def compose(self) -> ComposeResult:
        yield Label("", id="background-label")
        yield ProgressBar(total=100, show_eta=False, id="background-bar")

    def report_conversion(self, step: str, done: float) -> None:
        """A `ConversionProgress` callback: safe to call from any thread."""
        self.post_message(self.ConversionStep(step, done))

    def on_background_work_conversion_step(self, message: ConversionStep) -> None:
        self._conversion = None if message.done >= 1.0 else (message.step, message.done)
        self._render_state()

    def show_index(self, index: IndexState | None) -> None:
        self._index = index if index is not None and index.state == "building" else None
        self._render_state()

    def _render_state(self) -> None:
        label, bar = self.query_one("#background-label", Label), self.query_one("#background-bar", ProgressBar)
        if self._conversion is not None:
            step, done = self._conversion
            label.update(f"converting the embedding model (once): {step}")
            bar.update(progress=round(done * 100))
        elif self._index is not None:
            progress = self._index.progress
            label.update("building the vector index (searches are exact meanwhile)")
            bar.update(progress=round((progress or 0.0) * 100))
        self.set_class(self._conversion is not None or self._index is not None, "-busy")
