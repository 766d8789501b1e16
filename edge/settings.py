"""The base of every stage's configuration: frozen, strict pydantic models.

Each stage owns its settings (defaults and validation written once, next to the code that uses
them: ``edge.capture.config``, ``edge.detect.config``, ``edge.track.config``, ...). The YAML
file is only an aggregate of those models (``edge.config.schema``), so a stage never imports the
aggregate and a default can never differ between the file and the code.

Relative paths in a YAML file mean "relative to that file": `ConfigPath` fields resolve against
the ``base_dir`` given in the validation context (``Model.model_validate(data,
context={"base_dir": ...})``, which ``edge.config.loader`` does); without one they stay as given.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationInfo


class Settings(BaseModel):
    """Unknown keys are errors (a misspelt option silently ignored is worse than a refusal);
    instances are immutable, so one object can be shared by threads and stages."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


def resolve_path(value: Path | None, info: ValidationInfo) -> Path | None:
    """``~`` expanded; a relative path joined to the context's ``base_dir`` when there is one.

    normpath, not resolve(): keep the user's symlinks, drop the "examples/../" noise.
    """
    if value is None:
        return None
    value = value.expanduser()
    base = (info.context or {}).get("base_dir") if isinstance(info.context, dict) else None
    if base is None or value.is_absolute():
        return value
    return Path(os.path.normpath(Path(base) / value))


ConfigPath = Annotated[Path, AfterValidator(resolve_path)]


def _existing_file(value: Path) -> Path:
    if not value.is_file():
        raise ValueError(
            f"file not found: {value}" if not value.exists() else f"not a file: {value}"
        )
    return value


# A path that must name an existing file when the configuration is checked (certificates, keys).
ConfigFile = Annotated[Path, AfterValidator(resolve_path), AfterValidator(_existing_file)]


def context_base_dir(info: ValidationInfo) -> Path | None:
    ctx: Any = info.context
    base = ctx.get("base_dir") if isinstance(ctx, dict) else None
    return Path(base) if base is not None else None
