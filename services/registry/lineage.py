"""Lineage of a model version: dataset version → job → run → model version → stage changes,
as nodes and edges with a link each, and as Graphviz DOT for ``st.graphviz_chart``."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlencode

from sqlmodel import col, select

from models.registry import StageChange
from services.access import Actor, require
from services.db import Database
from services.permissions import Permission
from services.registry.assets import load_model, load_version
from services.registry.cards import _training_data


@dataclass(frozen=True)
class Node:
    key: str
    kind: str  # dataset | job | run | version | stage
    label: str
    link: str | None = None


@dataclass
class Lineage:
    nodes: list[Node] = field(default_factory=list)
    edges: list[tuple[str, str, str]] = field(default_factory=list)  # from, to, label

    def add(self, node: Node, *, after: Node | None = None, label: str = "") -> Node:
        self.nodes.append(node)
        if after is not None:
            self.edges.append((after.key, node.key, label))
        return node

    def to_dot(self) -> str:
        shapes = {
            "dataset": "cylinder",
            "job": "box",
            "run": "box",
            "version": "box3d",
            "stage": "note",
        }
        fills = {
            "dataset": "#E0F2FE",
            "job": "#EDE9FE",
            "run": "#EDE9FE",
            "version": "#E0E7FF",
            "stage": "#DCFCE7",
        }
        lines = [
            "digraph lineage {",
            '  rankdir=LR; bgcolor="transparent";',
            '  node [fontname="Helvetica", fontsize=11, style="filled,rounded", color="#64748B"];',
            '  edge [color="#64748B", fontsize=9, fontname="Helvetica"];',
        ]
        for node in self.nodes:
            attrs = [
                f'label="{_escape(node.label)}"',
                f"shape={shapes[node.kind]}",
                f'fillcolor="{fills[node.kind]}"',
            ]
            if node.link:
                attrs += [f'URL="{_escape(node.link)}"', 'target="_top"']
            lines.append(f'  "{node.key}" [{", ".join(attrs)}];')
        lines += [f'  "{a}" -> "{b}" [label="{_escape(label)}"];' for a, b, label in self.edges]
        lines.append("}")
        return "\n".join(lines)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def registry_link(**params: object) -> str:
    return "/registry?" + urlencode({k: v for k, v in params.items() if v is not None})


def version_lineage(db: Database, *, actor: Actor, model_id: int, number: int) -> Lineage:
    """Everything a version came from and every stage it has been in."""
    graph = Lineage()
    with db.read() as session:
        require(session, actor, Permission.VIEW_REGISTRY)
        model = load_model(session, model_id)
        version = load_version(session, model_id, number)
        data = _training_data(session, version)
        changes = session.exec(
            select(StageChange)
            .where(StageChange.model_version_id == version.id)
            .order_by(col(StageChange.changed_at), col(StageChange.id))
        ).all()
    upstream: Node | None = None
    if data is not None:
        upstream = graph.add(
            Node(
                "dataset",
                "dataset",
                f"Dataset {data.dataset_name} v{data.number}\n"
                f"{data.records:,} records · {data.sha256[:10]}",
                registry_link(dataset=data.dataset_id, dataset_version=data.number),
            )
        )
    if version.job_ref:
        upstream = graph.add(
            Node(
                "job",
                "job",
                f"Job\n{version.job_ref[-40:]}",
                "/fine-tuning?" + urlencode({"job": version.job_ref}),
            ),
            after=upstream,
            label="trained",
        )
    if version.mlflow_run_id:
        upstream = graph.add(
            Node(
                "run",
                "run",
                f"MLflow run\n{version.mlflow_run_id[:12]}",
                "/experiments?" + urlencode({"runs": version.mlflow_run_id}),
            ),
            after=upstream,
            label={"job": "logged", "dataset": "trained"}.get(upstream.kind, "")
            if upstream
            else "",
        )
    current = graph.add(
        Node(
            "version",
            "version",
            f"{model.name}\nversion {version.number}",
            registry_link(model=model_id, version=version.number),
        ),
        after=upstream,
        label="registered",
    )
    for index, change in enumerate(changes):
        if change.to_stage == "development" and change.from_stage is None:
            continue
        graph.add(
            Node(
                f"stage{index}",
                "stage",
                f"{change.to_stage}\n{change.changed_at:%Y-%m-%d %H:%M} UTC"
                f"\nby {change.changed_by}",
            ),
            after=current,
            label=change.reason[:30],
        )
    return graph
