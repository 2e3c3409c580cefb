"""TensorBoard logging: scalars and text in real event files under the run folder (diagnostics add histograms)."""

from __future__ import annotations

from pathlib import Path


class Tracker:
    """A thin, lazily opened SummaryWriter; disabled trackers accept every call and write nothing."""

    def __init__(self, log_dir: str | Path | None):
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self._writer = None

    @property
    def writer(self):
        if self._writer is None and self.log_dir is not None:
            from torch.utils.tensorboard import SummaryWriter  # slow import: only when logging

            self._writer = SummaryWriter(str(self.log_dir))
        return self._writer

    def scalar(self, tag: str, value: float, step: int) -> None:
        if self.writer:
            self.writer.add_scalar(tag, value, step)

    def text(self, tag: str, text: str, step: int) -> None:
        if self.writer:
            self.writer.add_text(tag, text, step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
