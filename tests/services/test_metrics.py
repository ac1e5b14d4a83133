"""The Grafana dashboard in docs/grafana reads the series /metrics exports, and only those.

Each panel query is parsed by a PromQL parser (promql-parser, the Prometheus grammar), its metric
selectors are collected, and every one must be a series of ``render_metrics``; every family /metrics
exports must be on some panel, so a metric renamed on either side fails here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import promql_parser
from prometheus_client.parser import text_string_to_metric_families

from bot.services.health import HealthState
from bot.services.metrics import render_metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "fundbot-dashboard.json"
VARIABLES = {"$instance": ".*", "${instance}": ".*"}


def selectors(node: Any) -> set[str]:
    """Metric names of every vector selector in a parsed PromQL expression."""
    if isinstance(node, promql_parser.VectorSelector):
        return {node.name} if node.name else set()
    found: set[str] = set()
    for attr in ("expr", "lhs", "rhs", "vector_selector", "param"):
        child = getattr(node, attr, None)
        if child is not None:
            found |= selectors(child)
    for arg in getattr(node, "args", None) or ():
        found |= selectors(arg)
    return found


def dashboard_queries() -> list[tuple[str, str]]:
    dash = json.loads(DASHBOARD.read_text())
    out = []
    for panel in dash["panels"]:
        for target in panel.get("targets", []):
            out.append((panel["title"], target["expr"]))
    return out


def exported_series() -> tuple[set[str], set[str]]:
    """(sample names, family names) of a state that has seen every kind of observation."""
    st = HealthState(now_fn=lambda: 1_714_521_600_000)
    st.inc_error("venue")
    st.inc_alert("hedge_drift")
    st.observe_job("scan", 0.2)
    st.skip_job("scan")
    families = list(text_string_to_metric_families(render_metrics(st)))
    samples = {s.name for f in families for s in f.samples}
    names = {f.name + ("_total" if f.type == "counter" else "") for f in families}
    return samples, names


def test_every_dashboard_query_parses_and_reads_exported_series() -> None:
    samples, _ = exported_series()
    queries = dashboard_queries()
    assert len(queries) >= 15
    for title, expr in queries:
        text = expr
        for var, value in VARIABLES.items():
            text = text.replace(var, value)
        read = selectors(promql_parser.parse(text))  # raises on a PromQL syntax error
        assert read, (title, expr)
        missing = read - samples
        assert not missing, f"panel {title!r} reads {missing}, which /metrics does not export"


def test_every_exported_family_is_on_the_dashboard() -> None:
    _, families = exported_series()
    read: set[str] = set()
    for _, expr in dashboard_queries():
        for var, value in VARIABLES.items():
            expr = expr.replace(var, value)
        read |= selectors(promql_parser.parse(expr))
    shown = {name.removesuffix("_bucket").removesuffix("_count").removesuffix("_sum") for name in read}
    assert families - shown == set(), "exported but on no panel"


def test_dashboard_shape() -> None:
    dash = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    assert {v["name"] for v in dash["templating"]["list"]} == {"datasource", "instance"}
    for p in dash["panels"]:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24, p["title"]
        if p["type"] != "row":
            assert p["datasource"]["uid"] == "${datasource}", p["title"]
