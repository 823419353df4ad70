"""The column memo (sqlanon/sql/memo.py) changes no byte: views lowered with columns reused
across tables equal views lowered column by column, on every dialect — for policies drawn
to make reuse go wrong (names a column's shared values would take, key pad names, one source
masked twice, lookups joined per view)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sqlanon.output.emit import view_artifact
from sqlanon.plan.build import build_plan
from sqlanon.policy.load import load_policy
from sqlanon.sql import dialect, memo
from sqlanon.sql.memo import ColumnMemo
from sqlanon.transforms import REGISTRY

HIERARCHY = "{" + ", ".join(f"v{i}: [g{i % 3}, '*']" for i in range(20)) + "}"
# column definitions, reused by name across tables; their lets take e_text, e_domain,
# e_local_length, d_age and p_text, which NAMES also offers as plain columns
KINDS = {
    "e": ["keep", "{transform: mask_email}", "{transform: mask, keep_last: 2}"],
    "d": ["keep", "{transform: age, as_of: 2026-01-01, edges: [18, 65]}"],
    "p": [
        "{transform: pseudonymize, key: k, length: 16}",
        "{transform: generalize, hierarchy: " + HIERARCHY + ", level: 1}",
        "{transform: mask, keep_last: 4}",
    ],
    "e2": ["{transform: mask_email, column: e}", "{transform: mask, keep_last: 2, column: e}"],
}
# and every transform, as its own docs show it (a new transform is drawn here too)
KINDS["x"] = [
    t.example.split(": ", 1)[1] if "hierarchies/" not in t.example else KINDS["p"][1]
    for t in REGISTRY.values()
]
PLAIN = ["e_text", "e_domain", "e_local_length", "d_age", "p_text", "k0_inner", "k0_outer"]
PLAIN += ["x_text", "x_age", "x_domain"]
NAMES = [*KINDS, *PLAIN]

table = st.lists(st.sampled_from(NAMES), min_size=1, max_size=8, unique=True).flatmap(
    lambda names: st.tuples(
        *(st.sampled_from(KINDS.get(n, ["keep", "nullify"])) for n in names)
    ).map(lambda kinds: list(zip(names, kinds, strict=True)))
)


def policy(tables: list[list[tuple[str, str]]]) -> str:
    lines = ["sqlanon: 1", "name: memo", "keys: {table: privacy.sqlanon_keys}", "tables:"]
    for i, columns in enumerate(tables):
        lines += [f"  t{i}:", f"    source: raw.t{i}", f"    target: anon.t{i}", "    columns:"]
        lines += [f"      {name}: {kind}" for name, kind in columns]
    return "\n".join(lines) + "\n"


def lower_both(tmp_path: Path, text: str) -> int:
    """Every view, with and without the memo, equal on every dialect; the memo's hits."""
    path = tmp_path / "policy.yml"
    path.write_text(text)
    plan = build_plan([load_policy(path)])
    hits = 0
    for name in dialect.available():
        d = dialect.get(name)
        memo = ColumnMemo()
        for view in plan.views:
            assert view_artifact(view, d, memo) == view_artifact(view, d), (name, view.name)
        hits += memo.hits
    return hits


@settings(
    max_examples=60,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
@given(st.lists(table, min_size=2, max_size=6))
def test_views_lowered_with_the_memo_are_byte_identical(tmp_path_factory, tables):
    lower_both(tmp_path_factory.mktemp("memo"), policy(tables))


def test_a_column_whose_shared_value_name_is_taken_is_lowered_again(tmp_path):
    """t1 has a plain column named like the shared value t0's mask_email named: replaying
    t0's column would point at t1's own column, so it is lowered afresh (e_text_2)."""
    text = policy(
        [
            [("e", "{transform: mask_email}")],
            [("e_text", "keep"), ("e", "{transform: mask_email}")],
            [("e", "{transform: mask_email}")],
        ]
    )
    assert lower_both(tmp_path, text) == 5  # t2 reuses t0's column; t1 does not
    out = view_artifact(
        build_plan([load_policy(tmp_path / "policy.yml")]).views[1], dialect.get("duckdb")
    )
    assert b'"e_text_2"' in out.content


def test_a_column_joining_a_lookup_is_never_reused(tmp_path):
    generalize = KINDS["p"][1]
    text = policy([[("p", generalize)], [("p", generalize)]])
    assert lower_both(tmp_path, text) == 0


def test_the_memo_stands_aside_where_columns_do_not_repeat(tmp_path, monkeypatch):
    """After a trial with too few reuses the memo lowers plainly (and forgets its columns)."""
    monkeypatch.setattr(memo, "TRIAL", 4)
    distinct = [[(f"c{t}_{i}", "{transform: mask_email}") for i in range(3)] for t in range(4)]
    path = tmp_path / "policy.yml"
    path.write_text(policy(distinct))
    plan = build_plan([load_policy(path)])
    d = dialect.get("postgres")
    kept = ColumnMemo()
    for view in plan.views:
        assert view_artifact(view, d, kept) == view_artifact(view, d)
    assert kept.aside and kept.hits == 0 and not kept._columns
