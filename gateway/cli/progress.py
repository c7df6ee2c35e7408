"""A plain-text progress bar on a terminal (nothing when the stream is not a TTY)."""

from __future__ import annotations

from typing import TextIO


class ProgressBar:
    """``label [#####.....]  50% 500/1000``, redrawn in place with a carriage return."""

    def __init__(self, stream: TextIO, label: str, width: int = 30) -> None:
        self._stream = stream
        self._label = label
        self._width = width
        self._enabled = stream.isatty()
        self._last = -1
        self._drawn = 0

    def update(self, done: int, total: int) -> None:
        """Redraw when the shown value changes (at most 1000 times per run)."""
        if not self._enabled or total <= 0:
            return
        permille = min(1000, done * 1000 // total)
        if permille == self._last:
            return
        self._last = permille
        filled = self._width * permille // 1000
        bar = "#" * filled + "." * (self._width - filled)
        line = f"\r{self._label} [{bar}] {permille // 10:3d}% {done}/{total}"
        self._drawn = max(self._drawn, len(line))
        self._stream.write(line)
        self._stream.flush()

    def close(self) -> None:
        """Erase the bar so the result line starts clean."""
        if self._drawn:
            self._stream.write("\r" + " " * self._drawn + "\r")
            self._stream.flush()
            self._drawn = 0
