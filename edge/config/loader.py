"""Loading the YAML configuration, with errors that name file, line and field.

`load_config(path)` is the only entry point most code needs. It

1. parses the YAML once into a node tree (kept to map a field path back to its line),
2. substitutes ``${ENV}`` / ``${ENV:-default}`` in string values (``$${X}`` is a literal ``${X}``),
3. validates with pydantic (unknown keys are errors, with a did-you-mean suggestion), resolving
   relative paths against the directory of the YAML file (validation context ``base_dir``),

and raises `ConfigError` whose ``errors`` read like
``cameras.yaml:7: cameras[1].source: Field required``.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from edge.config.schema import AppConfig

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class ConfigIssue:
    file: str
    line: int | None
    path: str  # "cameras[1].source"
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(ValueError):
    """Invalid configuration; ``issues`` holds one `ConfigIssue` per problem."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))

    @property
    def errors(self) -> list[str]:
        return [str(i) for i in self.issues]


_ENV = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def substitute_env(text: str, env: Mapping[str, str] | None = None) -> str:
    """Replace ``${VAR}`` and ``${VAR:-default}``; ``$${`` stays a literal ``${``.

    Raises KeyError(VAR) for an unset variable without a default.
    """
    values: Mapping[str, str] = os.environ if env is None else env

    def repl(m: re.Match[str]) -> str:
        if m.group(0) == "$${":
            return "${"
        name, default = m.group(1), m.group(2)
        if name in values:
            return values[name]
        if default is not None:
            return default
        raise KeyError(name)

    return _ENV.sub(repl, text)


def format_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _child(node: yaml.Node | None, key: int | str) -> tuple[yaml.Node | None, yaml.Node | None]:
    """(key node, value node) of ``key`` in a mapping or sequence node, or (None, None)."""
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == str(key):
                return k, v
    elif isinstance(node, yaml.SequenceNode) and isinstance(key, int):
        if 0 <= key < len(node.value):
            return node.value[key], node.value[key]
    return None, None


def line_of(root: yaml.Node | None, loc: tuple[int | str, ...]) -> tuple[int | None, int]:
    """1-based line for a field path, and how many path parts exist in the YAML.

    A missing field maps to the line of the closest enclosing mapping that exists (for
    ``cameras[1].source`` the line where ``cameras[1]`` starts). An unknown key maps to that
    key's own line.
    """
    node, line, depth = root, None, 0
    if root is not None:
        line = root.start_mark.line + 1
    for part in loc:
        key_node, value_node = _child(node, part)
        if value_node is None:
            break
        depth += 1
        node = value_node
        line = (key_node or value_node).start_mark.line + 1
    return line, depth


def _fields_of(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """Field names valid at ``loc`` (for did-you-mean); empty if the path is not a model."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        field = current.model_fields.get(part)
        if field is None:
            return []
        current = _model_in(field.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _model_in(annotation: Any) -> Any:
    """The BaseModel inside ``X``, ``X | None`` or ``list[X]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _issues_from_validation(
    err: ValidationError,
    root: yaml.Node | None,
    file: str,
    model: type[BaseModel] = AppConfig,
) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    seen: set[tuple[str, str]] = set()
    for e in err.errors(include_url=False):
        loc = tuple(e["loc"])
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            key = str(loc[-1])
            options = _fields_of(model, loc[:-1])
            close = difflib.get_close_matches(key, options, n=1, cutoff=0.6)
            msg = f"unknown key {key!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
            if options and not close:
                msg += f"; valid keys: {', '.join(options)}"
        elif e["type"] == "missing":
            msg = "field required"
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        line, _ = line_of(root, loc)
        path = format_path(loc)
        if (path, msg) in seen:
            continue
        seen.add((path, msg))
        issues.append(ConfigIssue(file, line, path, msg))
    return issues


def _walk(
    node: yaml.Node, loc: tuple[int | str, ...]
) -> Iterator[tuple[tuple[int | str, ...], yaml.Node]]:
    yield loc, node
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            yield from _walk(v, (*loc, str(getattr(k, "value", "?"))))
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            yield from _walk(v, (*loc, i))


def _duplicate_keys(root: yaml.Node, file: str) -> list[ConfigIssue]:
    # PyYAML keeps the last of two equal keys without a word; a config should not.
    issues = []
    for loc, node in _walk(root, ()):
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for k, _ in node.value:
                if isinstance(k, yaml.ScalarNode) and k.value != "<<":
                    if k.value in seen:
                        issues.append(
                            ConfigIssue(
                                file,
                                k.start_mark.line + 1,
                                format_path((*loc, k.value)),
                                "duplicate key",
                            )
                        )
                    seen.add(k.value)
    return issues


def _substitute(
    data: Any, loc: tuple[int | str, ...], root: yaml.Node, file: str, issues: list[ConfigIssue]
) -> Any:
    if isinstance(data, dict):
        return {k: _substitute(v, (*loc, k), root, file, issues) for k, v in data.items()}
    if isinstance(data, list):
        return [_substitute(v, (*loc, i), root, file, issues) for i, v in enumerate(data)]
    if isinstance(data, str) and "${" in data:
        try:
            return substitute_env(data)
        except KeyError as e:
            issues.append(
                ConfigIssue(
                    file,
                    line_of(root, loc)[0],
                    format_path(loc),
                    f"environment variable {e.args[0]} is not set "
                    f"(use ${{{e.args[0]}:-default}} for a default)",
                )
            )
    return data


def parse_config(text: str, file: str = "<config>", base_dir: Path | None = None) -> AppConfig:
    """Validate YAML text; `ConfigError` lists every problem with its line."""
    return parse_settings(text, AppConfig, file, base_dir, empty_hint="need 'cameras:'")


def parse_settings(
    text: str,
    model: type[M],
    file: str = "<config>",
    base_dir: Path | None = None,
    empty_hint: str = "nothing in it",
) -> M:
    """Validate YAML text as ``model`` (any settings model: the runtime's AppConfig, the central
    collector's configuration); `ConfigError` lists every problem with its line. A model with a
    ``cross_checks()`` method gets those checks too."""
    try:
        loader = yaml.SafeLoader(text)
        try:
            root = loader.get_single_node()
            data = loader.construct_document(root) if root is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigError([ConfigIssue(file, line, "", f"YAML syntax error: {problem}")]) from e
    if data is None or root is None:
        raise ConfigError([ConfigIssue(file, None, "", f"empty configuration ({empty_hint})")])
    if not isinstance(data, dict):
        raise ConfigError(
            [ConfigIssue(file, root.start_mark.line + 1, "", "top level must be a mapping")]
        )
    issues = _duplicate_keys(root, file)
    data = _substitute(data, (), root, file, issues)
    cfg: M | None = None
    base = base_dir if base_dir is not None else Path.cwd()
    try:
        cfg = model.model_validate(data, context={"base_dir": base})
    except ValidationError as e:
        issues.extend(_issues_from_validation(e, root, file, model))
    if cfg is not None and hasattr(cfg, "cross_checks"):
        for loc, msg in cfg.cross_checks():
            issues.append(ConfigIssue(file, line_of(root, loc)[0], format_path(loc), msg))
    if issues:
        issues.sort(key=lambda i: (i.line or 0, i.path))
        raise ConfigError(issues)
    assert cfg is not None
    return cfg


def load_config(path: str | os.PathLike[str]) -> AppConfig:
    """Read and validate a YAML configuration file. Raises `ConfigError` (or OSError)."""
    return load_settings(path, AppConfig, empty_hint="need 'cameras:'")


def load_settings(
    path: str | os.PathLike[str], model: type[M], empty_hint: str = "nothing in it"
) -> M:
    """Read and validate a YAML file as ``model``. Raises `ConfigError`."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise ConfigError([ConfigIssue(str(p), None, "", f"cannot read: {e.strerror}")]) from e
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise ConfigError(
            [ConfigIssue(str(p), line, "", f"not UTF-8 text (byte {e.start}): save it as UTF-8")]
        ) from e
    return parse_settings(text, model, str(p), p.resolve().parent, empty_hint)
