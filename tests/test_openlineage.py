"""`sqlanon explain --format openlineage`: the manifest's column lineage as OpenLineage
JobEvents with ColumnLineageDatasetFacets, reproducible and free of secrets."""

from __future__ import annotations

import json
from pathlib import Path

from sqlanon.plan.build import build_plan
from sqlanon.policy.load import load_policies

REPO = Path(__file__).resolve().parent.parent


def test_every_released_column_has_its_lineage(cli, monkeypatch):
    monkeypatch.chdir(REPO)
    args = ("explain", "examples/retail/policy.yml", "--format", "openlineage", "--namespace", "dw")
    first, second = cli(*args), cli(*args)
    assert first.exit_code == 0 and first.output == second.output  # reproducible
    events = {e["job"]["name"]: e for e in json.loads(first.output)}
    plan = build_plan(load_policies(["examples/retail/policy.yml"]))
    assert set(events) == {f"retail.{v.name}" for v in plan.views} | {
        f"retail.{r.name}" for r in plan.releases
    }
    for view in plan.views:
        event = events[f"retail.{view.name}"]
        assert event["schemaURL"].endswith("OpenLineage.json#/$defs/JobEvent")
        assert event["job"]["facets"]["sqlanon"]["policySha256"] == plan.policies[0].sha256
        (out,) = event["outputs"]
        assert (out["namespace"], out["name"]) == ("dw", ".".join(view.target))
        fields = out["facets"]["columnLineage"]["fields"]
        assert list(fields) == [c.output for c in view.emitted_columns]
        for c in view.emitted_columns:
            (src,) = fields[c.output]["inputFields"]
            assert (src["name"], src["field"]) == (".".join(view.source), c.sources[0])
            (t,) = src["transformations"]
            assert t["masking"] is (c.transform != "keep")
            assert t["description"].startswith(c.transform)
        dropped = [c.output for c in view.columns if not c.emitted]
        assert event["job"]["facets"]["sqlanon"]["droppedColumns"] == dropped
    release = events["retail.orders_by_status"]
    revenue = release["outputs"][0]["facets"]["columnLineage"]["fields"]["revenue"]
    assert revenue["inputFields"][0]["field"] == "amount"
    assert revenue["inputFields"][0]["transformations"][0]["description"] == "dp_sum"
