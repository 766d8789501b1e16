"""The layout's rules, checked on the source: edge never imports training; the stages never
import the configuration aggregate, the app layer or the commands (config flows one way)."""

from __future__ import annotations

import ast
from pathlib import Path

EDGE = Path(__file__).resolve().parents[2] / "edge"
STAGES = ("capture", "detect", "track", "vote", "analysis", "rules", "events", "sinks", "history")


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


def test_edge_never_imports_training() -> None:
    bad = {
        str(p.relative_to(EDGE.parent)): sorted(
            m for m in imports_of(p) if m.startswith("training")
        )
        for p in EDGE.rglob("*.py")
    }
    assert {k: v for k, v in bad.items() if v} == {}


def test_stages_do_not_import_the_aggregate_the_app_or_the_commands() -> None:
    forbidden = ("edge.config", "edge.app", "edge.cli")
    bad = {}
    for stage in STAGES:
        for p in (EDGE / stage).rglob("*.py"):
            hits = sorted(m for m in imports_of(p) if m.startswith(forbidden))
            if hits:
                bad[str(p.relative_to(EDGE.parent))] = hits
    assert bad == {}


def test_one_message_name_per_type() -> None:
    """No class name is defined twice in edge/ (two `PlateRead`s meant different things)."""
    seen: dict[str, list[str]] = {}
    for p in EDGE.rglob("*.py"):
        for node in ast.parse(p.read_text()).body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                seen.setdefault(node.name, []).append(str(p.relative_to(EDGE.parent)))
    assert {k: v for k, v in seen.items() if len(v) > 1} == {}
