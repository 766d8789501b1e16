"""Logging for the long-running service: a size-rotated log file plus the console.

A device that runs for months must not fill its disk with logs: `setup_logging` writes to
``RotatingFileHandler(max_bytes, backups)`` (default 10 MB x 5 = at most ~60 MB), and to stderr.
Under systemd stderr goes to the journal, which adds its own timestamps, so the console format
then drops ours (detected by ``$JOURNAL_STREAM``).

Call it once at start-up (``platewatch run``); calling it again replaces only the handlers it
installed itself, so tests and reloads never duplicate lines.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from pathlib import Path
from typing import TextIO

FILE_FORMAT = "%(asctime)s %(levelname)-7s %(threadName)s %(name)s: %(message)s"
CONSOLE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JOURNAL_FORMAT = "%(levelname)s %(name)s: %(message)s"
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_BACKUPS = 5

_MARK = "_platewatch_handler"


def setup_logging(
    level: int | str = logging.INFO,
    log_file: str | Path | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    backups: int = DEFAULT_BACKUPS,
    console: TextIO | None | bool = True,
    logger: logging.Logger | None = None,
    console_format: str | None = None,
) -> list[logging.Handler]:
    """Configure ``logger`` (default: the root logger); returns the handlers installed.

    ``log_file`` None: console only. ``console`` True: stderr (looked up now, so a redirected
    stderr is honoured); False/None: file only. ``console_format`` overrides the console's
    format. The log file's folder is created; an unwritable one raises OSError naming the path
    (better at start than silent).
    """
    if console is True:
        console = sys.stderr
    elif console is False:
        console = None
    if max_bytes < 1024:
        raise ValueError(f"max_bytes must be >= 1024, got {max_bytes}")
    if backups < 1:
        raise ValueError(f"backups must be >= 1, got {backups}")
    target = logger or logging.getLogger()
    for h in list(target.handlers):
        # Ours from an earlier call, or a bare stream handler of logging.basicConfig: either
        # would print every line a second time.
        if getattr(h, _MARK, False) or type(h) is logging.StreamHandler:
            target.removeHandler(h)
            if getattr(h, _MARK, False):
                h.close()
    if isinstance(level, str):
        number = logging.getLevelName(level.upper())
        if not isinstance(number, int):
            raise ValueError(f"unknown log level {level!r} (DEBUG, INFO, WARNING, ERROR)")
        level = number
    target.setLevel(level)
    handlers: list[logging.Handler] = []
    if log_file is not None:
        path = Path(log_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = logging.handlers.RotatingFileHandler(
            path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8", delay=False
        )
        fh.setFormatter(logging.Formatter(FILE_FORMAT))
        handlers.append(fh)
    if console is not None:
        ch = logging.StreamHandler(console)
        journal = bool(os.environ.get("JOURNAL_STREAM"))
        fmt = console_format or (JOURNAL_FORMAT if journal else CONSOLE_FORMAT)
        ch.setFormatter(logging.Formatter(fmt))
        handlers.append(ch)
    for h in handlers:
        setattr(h, _MARK, True)
        target.addHandler(h)
    return handlers
