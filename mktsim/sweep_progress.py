"""A sweep's progress: one status line on stderr, and the lines runs have to say.

Kept apart from :mod:`mktsim.sweep` so that the sweep reads as planning, running and writing.
"""

from __future__ import annotations

import sys
import time
from typing import IO

__all__ = ["Progress"]


class Progress:
    """One status line on a stream: redrawn in place on a terminal, else printed every 5 s."""

    def __init__(self, total: int, skipped: int, stream: IO[str] | None) -> None:
        self.total, self.skipped, self.stream = total, skipped, stream
        self.ok = self.failed = 0
        self.started = self.last = time.monotonic()
        self.tty = bool(stream is not None and stream.isatty())
        self._draw(force=True)

    def update(self, status: str) -> None:
        if status == "ok":
            self.ok += 1
        else:
            self.failed += 1
        self._draw(force=False)

    def close(self) -> None:
        self._draw(force=True, end="\n")

    def note(self, line: str) -> None:
        """A line of its own on stderr (a run that streams), above the status line."""
        if self.stream is None:
            print(line, file=sys.stderr)
            return
        self.stream.write(("\r" + " " * 100 + "\r" if self.tty else "") + line + "\n")
        self._draw(force=self.tty)

    def _draw(self, force: bool, end: str = "") -> None:
        if self.stream is None:
            return
        now = time.monotonic()
        if not (self.tty or force or now - self.last >= 5.0):
            return
        self.last = now
        ran = self.ok + self.failed
        done = ran + self.skipped
        width = 24
        filled = width * done // self.total if self.total else width
        rate = ran / (now - self.started) if now > self.started else 0.0
        left = self.total - done
        eta = f", ~{left / rate:.0f} s left" if rate > 0 and left else ""
        line = (
            f"sweep [{'#' * filled}{'.' * (width - filled)}] {done}/{self.total}  "
            f"ok {self.ok}  failed {self.failed}  skipped {self.skipped}  "
            f"{rate:.2f} runs/s{eta}"
        )
        if self.tty:
            self.stream.write("\r" + line.ljust(100) + end)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
