"""The HTML report of `sqlanon utility --html`: one self-contained file a reviewer opens in a
browser — checks, the risk summary, per-column tables and before/after histograms drawn by the
vendored Vega-Lite (sqlanon/assets/vega), so it needs no network when viewed."""

from __future__ import annotations

import json
from typing import Any

import jinja2

from sqlanon import __version__, resources
from sqlanon.measure.risk import ViewRisk
from sqlanon.measure.synthetic import SyntheticUtility
from sqlanon.measure.utility import ReleaseUtility, ViewUtility
from sqlanon.report import numbers
from sqlanon.report.risk import band_rows
from sqlanon.report.utility import column_cells, num, pct

ASSETS = resources.assets_dir()
VEGA_FILES = ("vega.min.js", "vega-lite.min.js", "vega-embed.min.js")


def _histogram_spec(title: str, compared: str, hist: tuple[tuple[str, float, float], ...]) -> dict:
    values = []
    for label, left, right in hist:
        values.append({"value": label, "side": compared, "share": left})
        values.append({"value": label, "side": "released", "share": right})
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": title,
        "width": 300,
        "height": 160,
        "data": {"values": values},
        "mark": "bar",
        "encoding": {
            "x": {"field": "value", "type": "nominal", "sort": None, "title": None},
            "xOffset": {"field": "side"},
            "y": {"field": "share", "type": "quantitative", "axis": {"format": "%"}},
            "color": {"field": "side", "type": "nominal", "title": None},
        },
    }


def _class_size_spec(r: ViewRisk) -> dict:
    values = [{"size": band, "records": records} for band, _, records in band_rows(r)]
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": "records by equivalence-class size",
        "width": 300,
        "height": 160,
        "data": {"values": values},
        "mark": "bar",
        "encoding": {
            "x": {"field": "size", "type": "nominal", "sort": None, "title": "class size"},
            "y": {"field": "records", "type": "quantitative"},
        },
    }


def render(
    title: str,
    database: str,
    views: list[ViewUtility],
    releases: list[ReleaseUtility],
    risks: list[ViewRisk],
    synthetic: list[SyntheticUtility] | None = None,
) -> str:
    specs: list[dict[str, Any]] = []
    checks = []
    for v in views:
        checks += [{"object": v.view, **_check(c)} for c in v.checks]
    for rel in releases:
        checks += [{"object": rel.release, **_check(c)} for c in rel.checks]
    for syn in synthetic or []:
        checks += [{"object": syn.table, **_check(c)} for c in syn.checks]
    for risk in risks:
        for q in risk.requirements:
            checks.append(
                {
                    "object": risk.view,
                    "check": f"{q.label} {q.op} {q.required}",
                    "limit": str(q.required),
                    "measured": "—" if q.measured is None else num(float(q.measured)),
                    "ok": q.ok,
                }
            )

    risk_items = []
    for risk in risks:
        specs.append(_class_size_spec(risk))
        rows = [
            ("records", numbers.count(risk.rows)),
            ("equivalence classes", numbers.count(risk.classes)),
            ("k (smallest class)", "view empty" if risk.k is None else str(risk.k)),
            ("sample uniques", numbers.count(risk.sample_uniques)),
        ]
        for name, a in (("prosecutor", risk.prosecutor), ("journalist", risk.journalist)):
            if a is not None:
                rows.append(
                    (f"{name} risk: highest / average", f"{pct(a.highest)} / {pct(a.average)}")
                )
        if risk.marketer is not None:
            rows.append(("marketer risk", pct(risk.marketer)))
        risk_items.append(
            {
                "view": risk.view,
                "quasi_identifiers": risk.quasi_identifiers,
                "rows": rows,
                "sensitive": risk.sensitive,
                "chart": len(specs) - 1,
            }
        )

    view_items = []
    for v in views:
        charts = []
        for c in v.columns:
            if c.histogram:
                compared = "raw" if c.distance_to == "raw" else "before suppression"
                specs.append(_histogram_spec(c.column, compared, c.histogram))
                charts.append(len(specs) - 1)
        view_items.append(
            {
                "view": v.view,
                "source_rows": v.source_rows,
                "kept_rows": v.kept_rows,
                "released_rows": v.released_rows,
                "suppressed_share": v.suppressed_share,
                "columns": [
                    {"column": c.column, "transform": c.transform, "cells": column_cells(c)}
                    for c in v.columns
                ],
                "correlations": [
                    {
                        "a": c.a,
                        "b": c.b,
                        "raw": num(c.raw, 3),
                        "released": num(c.released, 3),
                        "delta": num(c.delta, 3),
                    }
                    for c in v.correlations
                ],
                "charts": charts,
                "models": _models(v.models),
                "model_note": v.model_note,
            }
        )

    release_items = [
        {
            "release": r.release,
            "epoch_text": "no epoch refreshed yet" if r.epoch is None else f"epoch {r.epoch}",
            "released_groups": r.released_groups,
            "true_groups": r.true_groups,
            "promise": f"ε = {numbers.parameter(r.epsilon)}, δ = {numbers.parameter(r.delta)} "
            f"per refresh; privacy unit {r.privacy_unit}; {r.bounds}",
            "measures": [
                {
                    "measure": m.measure,
                    "cells": m.cells,
                    "median": pct(m.median_relative_error),
                    "mae": num(m.mean_absolute_error),
                    "inside": pct(m.within_interval),
                }
                for m in r.measures
            ],
        }
        for r in releases
    ]

    synthetic_items = []
    for u in synthetic or []:
        groups = [
            {
                "label": label,
                "count": len(group),
                "mean": num(mean, 3),
                "max": num(worst.distance if worst else None, 3),
                "worst": " × ".join(worst.columns) if worst else "",
            }
            for label, group, mean, worst in u.summary()
        ]
        synthetic_items.append(
            {
                "table": u.table,
                "epoch_text": "no epoch refreshed yet" if u.epoch is None else f"epoch {u.epoch}",
                "promise": f"ε = {numbers.parameter(u.epsilon)} per refresh"
                + (f"; pairs this refresh chose: {', '.join(u.chosen)}" if u.chosen else ""),
                "rows": numbers.count(u.rows),
                "source_rows": numbers.count(u.source_rows),
                "groups": groups,
                "models": _models(u.models),
                "model_note": u.model_note,
            }
        )

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(ASSETS)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    vega = {name: (ASSETS / "vega" / name).read_text(encoding="utf-8") for name in VEGA_FILES}
    return env.get_template("report.html.j2").render(
        title=title,
        database=database,
        version=__version__,
        checks=checks,
        all_ok=all(c["ok"] for c in checks),
        risks=risk_items,
        views=view_items,
        releases=release_items,
        synthetic=synthetic_items,
        # inside <script>: "</" could end the element early, so it is escaped
        specs_json=json.dumps(specs, ensure_ascii=False).replace("</", "<\\/"),
        vega=vega["vega.min.js"],
        vega_lite=vega["vega-lite.min.js"],
        vega_embed=vega["vega-embed.min.js"],
    )


def _models(models: tuple[Any, ...]) -> list[dict[str, str]]:
    return [
        {
            "trained_on": m.trained_on,
            "rows": numbers.count(m.train_rows),
            "accuracy": num(m.accuracy, 3),
            "auc": num(m.auc, 3),
        }
        for m in models
    ]


def _check(c: Any) -> dict[str, Any]:
    return {
        "check": c.check,
        "limit": numbers.parameter(c.limit),
        "measured": "not measurable" if c.measured is None else num(c.measured),
        "ok": c.ok,
    }
