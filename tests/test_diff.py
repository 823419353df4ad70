"""`sqlanon diff`: the classification table case by case (tests/diff_cases.yml), the output
formats, --fail-on, --git, and the committed example."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from sqlanon.plan.build import build_plan
from sqlanon.policy.load import load_policies
from sqlanon.review.diff import compare
from sqlanon.sql import dialect

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SPEC = yaml.safe_load((HERE / "diff_cases.yml").read_text(encoding="utf-8"))


def _plan(tmp: Path, name: str, text: str):  # type: ignore[no-untyped-def]
    path = tmp / name
    path.write_text(text, encoding="utf-8")
    return build_plan(load_policies([str(path)]))


def _edited(edits: list[list[str]], text: str | None = None) -> str:
    text = SPEC["base"] if text is None else text
    for old, new in edits:
        assert text.count(old) == 1, f"edit does not match exactly once: {old!r}"
        text = text.replace(old, new)
    return text


def test_there_are_at_least_25_rules():
    assert len(SPEC["cases"]) >= 25


@pytest.mark.parametrize("case", SPEC["cases"], ids=[c["name"] for c in SPEC["cases"]])
def test_classification(case, tmp_path):
    base = _edited(SPEC[case["base"]], SPEC["base"]) if "base" in case else SPEC["base"]
    old = _plan(tmp_path, "old.yml", base)
    new = _plan(tmp_path, "new.yml", _edited(case["edits"], base))
    got = sorted((c.verdict, c.object, c.change) for c in compare(old, new))
    assert got == sorted(tuple(e) for e in case["expect"])


def test_formats_and_fail_on(tmp_path, cli):
    (tmp_path / "old.yml").write_text(SPEC["base"])
    (tmp_path / "new.yml").write_text(_edited([["k: 5, action", "k: 3, action"]]))
    args = ["diff", str(tmp_path / "old.yml"), str(tmp_path / "new.yml")]
    md = cli(*args, "--format", "markdown")
    assert md.exit_code == 0
    assert "| **WEAKENED** | `customers` | k: 5 → 3 |" in md.output
    assert "- `views/anon.customers.sql` (changed)" in md.output
    assert cli(*args, "--fail-on", "weakened").exit_code == 1
    doc = json.loads(cli(*args, "--format", "json", "--dialect", "all").output)
    assert doc["weakened"] and set(doc["files"]) == set(dialect.available())
    same = cli(
        "diff", str(tmp_path / "old.yml"), str(tmp_path / "old.yml"), "--fail-on", "weakened"
    )
    assert same.exit_code == 0 and "no change" in same.output
    assert cli("diff", str(tmp_path / "old.yml")).exit_code == 2


def test_git_mode_compares_the_working_tree_with_a_revision(tmp_path, cli):
    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    git("config", "user.email", "t@example.com")
    git("config", "user.name", "t")
    policy = tmp_path / "policy.yml"
    policy.write_text(SPEC["base"])
    git("add", ".")
    git("commit", "-qm", "base")
    policy.write_text(_edited([["grants: [analyst]", "grants: []"]]))
    result = cli("diff", str(policy), "--git", "HEAD", "--format", "json")
    assert result.exit_code == 0, result.output
    (change,) = json.loads(result.output)["changes"]
    assert change["verdict"] == "strengthened" and change["change"] == "grant to analyst removed"
    bad = cli("diff", str(policy), "--git", "no-such-rev")
    assert bad.exit_code == 2 and "no-such-rev" in bad.output


def test_committed_example_diff_is_current(cli, monkeypatch):
    """examples/diff: a before/after policy pair and the markdown the diff prints for it."""
    monkeypatch.chdir(REPO)
    result = cli(
        "diff", "examples/diff/before.yml", "examples/diff/after.yml", "--format", "markdown"
    )
    assert result.output == (REPO / "examples/diff/diff.md").read_text(encoding="utf-8")


REGIONS = "country;region;any\nFR;Europe;*\nDE;Europe;*\nIT;Europe;*\nJP;Asia;*\nCN;Asia;*\n"
NATIONS = "country;region;any\nFR;France;*\nDE;Germany;*\nIT;Italy;*\nJP;Japan;*\nCN;China;*\n"
HIERARCHY_POLICY = """sqlanon: 1
name: geo
tables:
  t:
    source: raw.t
    target: anon.t
    columns:
      country: {transform: generalize, hierarchy: countries.csv, level: 1}
"""


def test_a_finer_hierarchy_file_fails_the_gate(tmp_path, cli):
    """Before: editing the CSV so that level 1 gives nations instead of regions was
    `neutral` and `--fail-on weakened` let a 5× finer generalization through."""
    for name, rows in (("old", REGIONS), ("new", NATIONS)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "countries.csv").write_text(rows)
        (tmp_path / name / "policy.yml").write_text(HIERARCHY_POLICY)
    old, new = str(tmp_path / "old/policy.yml"), str(tmp_path / "new/policy.yml")
    result = cli("diff", old, new, "--fail-on", "weakened")
    assert result.exit_code == 1
    assert "2 released group(s) split into finer ones" in " ".join(result.output.split())
    assert cli("diff", new, old, "--fail-on", "weakened").exit_code == 0  # coarser: fine


@pytest.mark.parametrize(
    "old,new,verdict",
    [
        ((18, 25, 35, 65), (18, 25, 30, 35, 65), "weakened"),  # a bucket split
        ((18, 25, 35, 65), (18, 35, 65), "strengthened"),  # two merged
        ((18, 25, 35, 65), (18, 30, 35, 65), "weakened"),  # moved: one split, one merged
        ((18, 25, 35, 65), (0, 25, 35, 65), "neutral"),  # only the bottom bucket's label
    ],
)
def test_bucket_edges_are_judged_by_the_buckets_they_make(old, new, verdict):
    from sqlanon.review.diff import _param_change

    assert _param_change("t.age", "bucket", "edges", old, new).verdict == verdict
