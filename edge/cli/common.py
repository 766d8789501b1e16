"""What the commands share: loading a config with its errors printed, host:port parsing, and
the model options mapped onto a configuration. No command's own logic lives here."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any, TextIO

from edge.config.loader import ConfigError, load_config
from edge.config.schema import AppConfig

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def print_config_error(
    e: ConfigError, path: str | Path, err: TextIO | None = None, hint: bool = True
) -> None:
    """Every issue as ``FILE:LINE: field: message``, then a count."""
    err = err or sys.stderr
    for issue in e.issues:
        print(issue, file=err)
    more = f"; see `platewatch check-config {path}`" if hint else ""
    print(f"{path}: {len(e.issues)} error(s){more}", file=err)


def load_config_or_report(path: str | Path) -> AppConfig | None:
    """The validated configuration, or None after printing why it is not valid."""
    try:
        return load_config(path)
    except ConfigError as e:
        print_config_error(e, path)
        return None


def parse_host_port(value: str, default_port: int = 1883) -> tuple[str, int]:
    """``host``, ``host:port`` or ``[v6]:port`` -> (host, port); argparse-friendly errors."""
    m = re.fullmatch(r"\[([^\]]+)\](?::(\d+))?|([^:]+)(?::(\d+))?", value.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"expected HOST or HOST:PORT, got {value!r}")
    host = m.group(1) or m.group(3)
    port = int(m.group(2) or m.group(4) or default_port)
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range in {value!r}")
    return host, port


def apply_model_arguments(cfg: AppConfig, args: Any) -> AppConfig:
    """``--models/--detector/--reader/--threads/--device`` (edge.detect.models
    .add_model_arguments) over the configuration's ``models:`` section; unset options keep it."""
    from edge.detect.models import DETECTOR_FILE, READER_FILE

    update: dict[str, Any] = {}
    if getattr(args, "models", None) is not None:
        update["detector"] = Path(args.models) / DETECTOR_FILE
        update["reader"] = Path(args.models) / READER_FILE
    for name in ("detector", "reader"):
        if getattr(args, name, None) is not None:
            update[name] = Path(getattr(args, name))
    if getattr(args, "threads", None) is not None:
        update["threads"] = args.threads
    if getattr(args, "device", None) not in (None, "auto"):
        update["device"] = args.device
    if not update:
        return cfg
    models = type(cfg.models).model_validate({**cfg.models.model_dump(), **update})
    return cfg.model_copy(update={"models": models})
