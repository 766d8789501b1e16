"""Settings tables in the docs, generated from the configuration schema so they cannot drift.

    python -m edge.config.docs --write      # rewrite the tables in docs/
    python -m edge.config.docs --check      # exit 1 if a table is stale (a test runs this)

A table sits between ``<!-- settings:SECTION -->`` and ``<!-- /settings -->`` markers; SECTION
is a top-level key of the YAML file (``mqtt``, ``voting``, ...) or ``cameras``.
"""

from __future__ import annotations

import argparse
import re
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from edge.config.schema import AppConfig, CameraConfig

DOCS = Path(__file__).resolve().parents[2] / "docs"
_BLOCK = re.compile(r"(<!-- settings:([a-z_]+) -->\n)(.*?)(<!-- /settings -->)", re.S)


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


_COMPUTED = object()  # a default built at run time from other settings


def _default_value(field: FieldInfo) -> Any:
    """The field's default: ``PydanticUndefined`` when required, ``_COMPUTED`` when its
    factory needs other settings."""
    if field.is_required():
        return PydanticUndefined
    if field.default_factory is not None:
        try:
            return field.default_factory()  # type: ignore[call-arg]
        except TypeError:
            return _COMPUTED
    return field.default


def _default(field: FieldInfo) -> str:
    return _shown(_default_value(field))


def _shown(value: Any) -> str:
    if value is PydanticUndefined:
        return "required"
    if value is _COMPUTED:
        return "(computed)"
    if isinstance(value, BaseModel):
        return "(see below)"
    if isinstance(value, Path):
        # the same text on every machine: shipped files relative to the checkout, home as ~
        checkout = Path(__file__).resolve().parents[2]
        try:
            return f"`{value.relative_to(checkout)}` (shipped)"
        except ValueError:
            return f"`{str(value).replace(str(Path.home()), '~')}`"
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, SecretStr):
        return "(secret)"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value == [] or value == {}:
        return "none"
    if value == "":
        return "empty"
    return f"`{value}`"


def _type(annotation: Any) -> str:
    if get_origin(annotation) is Annotated:  # ConfigPath / ConfigFile
        base, *meta = get_args(annotation)
        must_exist = any("existing" in repr(m) for m in meta)
        return "path to an existing file" if must_exist else _type(base)
    if annotation is Path:
        return "path"
    if getattr(annotation, "__origin__", None) is Literal:
        return "one of " + ", ".join(f"`{a}`" for a in get_args(annotation))
    args = get_args(annotation)
    if type(None) in args:  # X | None
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return _type(rest[0]) + " or null"
    text = str(annotation).replace("typing.", "").replace("NoneType", "null")
    text = re.sub(r"<class '([\w.]+)'>", lambda m: m.group(1).rsplit(".", 1)[-1], text)
    text = re.sub(r"[\w.]+\.(\w+)", r"\1", text)
    return text.replace("Annotated[Path, AfterValidator(func=resolve_path)]", "path").replace(
        "|", "\\|"
    )


def table(model: type[BaseModel], prefix: str = "", instance: BaseModel | None = None) -> list[str]:
    """Rows ``| key | type | default | meaning |`` of a settings model, nested ones after.
    ``instance``: the section's own default when it differs from the class defaults (the plate
    tracker is a ``TrackerConfig`` with plate thresholds), whose values are then shown."""
    rows: list[str] = []
    nested: list[tuple[str, type[BaseModel], BaseModel | None]] = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        sub = _model_of(field.annotation)
        alias = ""
        choices = getattr(field.validation_alias, "choices", None)
        if choices:
            others = [c for c in choices if c != name]
            alias = f" (also `{'`, `'.join(others)}`)" if others else ""
        doc = field.description or (
            (sub.__doc__ or "").strip().split("\n")[0] if sub is not None else ""
        )
        meaning = doc.replace("|", "\\|") + alias
        kind = f"section `{sub.__name__}`" if sub is not None else _type(field.annotation)
        shown = _default(field) if instance is None else _shown(getattr(instance, name))
        rows.append(f"| `{key}` | {kind} | {shown} | {meaning} |")
        if sub is not None and sub is not model:
            value = getattr(instance, name) if instance is not None else _default_value(field)
            nested.append((f"{key}.", sub, value if isinstance(value, sub) else None))
    for p, sub, value in nested:
        rows += table(sub, p, value)
    return rows


def render(section: str) -> str:
    if section == "cameras":
        model: type[BaseModel] = CameraConfig
        prefix = "cameras[]."
    else:
        field = AppConfig.model_fields[section]
        found = _model_of(field.annotation)
        if found is None:
            raise ValueError(f"{section}: not a settings section")
        model, prefix = found, f"{section}."
    head = ["| key | type | default | meaning |", "|---|---|---|---|"]
    return "\n".join(head + table(model, prefix)) + "\n"


def refresh(text: str) -> str:
    return _BLOCK.sub(lambda m: m.group(1) + render(m.group(2)) + m.group(4), text)


def stale(directory: Path = DOCS) -> list[Path]:
    return [p for p in sorted(directory.glob("*.md")) if refresh(p.read_text()) != p.read_text()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m edge.config.docs", description=__doc__)
    ap.add_argument("--write", action="store_true", help="rewrite the stale tables")
    ap.add_argument("--check", action="store_true", help="exit 1 when a table is stale")
    args = ap.parse_args(argv)
    old = stale()
    if args.write:
        for p in old:
            p.write_text(refresh(p.read_text()))
            print(f"wrote {p}")
        return 0
    for p in old:
        print(f"stale settings table in {p}: run python -m edge.config.docs --write")
    return 1 if old and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
