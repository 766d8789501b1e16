"""A progress bar for long commands (replay, eval, the data commands), on stderr and only on a
terminal."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


def _is_tty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or not a real stream
        return False


class Progress:
    """tqdm if available, else a one-line bar redrawn on ``stream`` (stderr).

    Shown only when ``stream`` is a terminal: a log file or a pipe gets no carriage-return
    junk. With ``stdout_events`` (events printed as JSON lines on stdout) it is also off when
    stdout is that same terminal, so the bar never garbles a JSON line.
    """

    def __init__(
        self,
        total: int | None,
        stream: TextIO | None = None,
        enabled: bool = True,
        unit: str = "frame",
        stdout_events: bool = False,
    ):
        self.total = total
        self.stream = stream or sys.stderr
        self.unit = unit
        self.enabled = enabled and _is_tty(self.stream)
        if stdout_events and _is_tty(sys.stdout):
            self.enabled = False
        self.n = 0
        self._bar: Any = None
        self._t0 = time.monotonic()
        self._last_draw = 0.0
        if self.enabled:
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self._bar = tqdm(total=total, unit=unit, file=self.stream, dynamic_ncols=True)

    def update_to(self, n: int, postfix: str = "") -> None:
        if not self.enabled or n == self.n:
            return
        delta, self.n = n - self.n, n
        if self._bar is not None:
            self._bar.update(delta)
            if postfix:
                self._bar.set_postfix_str(postfix, refresh=False)
            return
        now = time.monotonic()
        if now - self._last_draw < 0.25 and (self.total is None or n < self.total):
            return
        self._last_draw = now
        fps = n / max(now - self._t0, 1e-6)
        if self.total:
            frac = min(1.0, n / self.total)
            bar = "#" * int(frac * 30)
            line = f"\r[{bar:<30}] {frac:4.0%} {n}/{self.total} {self.unit}s {fps:5.1f}/s {postfix}"
        else:
            line = f"\r{n} {self.unit}s {fps:5.1f}/s {postfix}"
        self.stream.write(line)
        self.stream.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self.enabled and self.n:
            self.stream.write("\n")
            self.stream.flush()
