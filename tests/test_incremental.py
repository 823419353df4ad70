"""An incremental compile (sqlanon/plan/incremental.py) against a fresh one, over a sequence
of edits a team makes to a policy: a parameter, a table added, removed, renamed or moved, a
comment that shifts every line below it, the header, a hierarchy file, an error, a target
written twice, a key given two purposes. After each edit the plan read through the cache
equals the plan of a fresh load (so are the compiled files: they are a function of it), an
error is reported as a fresh load reports it, and a one-table edit reads one table."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from sqlanon.output import emit
from sqlanon.output.cache import PlanCache
from sqlanon.plan.build import build_plan
from sqlanon.plan.model import Plan
from sqlanon.policy.chunks import cut_tables
from sqlanon.policy.diagnostics import PolicyError
from sqlanon.policy.load import load_policies
from sqlanon.sql import dialect

HEADER = """sqlanon: 1
name: shop
keys: {table: privacy.keys, versions: {customer: 2}}
budget: {epsilon: 1}
releases:
  by_city:
    source: raw.orders
    target: stats.by_city
    privacy_unit: customer_id
    epsilon: 1
    delta: 0
    group_by: {city: keep}
    groups: {public: [Berlin, Paris]}
    bounds: {max_groups_per_unit: 1, max_rows_per_unit_per_group: 1}
    measures: {orders: {agg: count}}
tables:
"""


def table(i: int, width: int = 10) -> str:
    kind = ["keep", "{transform: prefix, length: 3}", "{transform: mask, keep_last: 2}"][i % 3]
    text = (
        f"  t{i}:\n"
        f"    source: raw.t{i}\n"
        f"    target: anon.t{i}\n"
        "    columns:\n"
        f"      age: {{transform: bucket, width: {width}}}\n"
        f"      job: {{transform: generalize, hierarchy: h{i % 3}.csv, level: 1}}\n"
        f"      email: {{transform: pseudonymize, key: {'customer' if i % 2 else 'staff'}}}\n"
        f"      note: {kind}\n"
    )
    if i % 4 == 0:
        text += "    k_anonymity: {quasi_identifiers: [age, job], k: 3}\n"
    return text


def fresh(path: Path) -> Plan:
    return build_plan(load_policies([str(path)]))


def through_cache(path: Path, folder: Path) -> tuple[Plan, int]:
    """What `sqlanon compile` does (cli/base.load_plan): the cached or re-planned plan, else
    a fresh one stored with what the next compile needs."""
    cache = PlanCache(folder)
    plan = cache.get([str(path)])
    if plan is None:
        specs = load_policies([str(path)])
        plan = build_plan(specs)
        cache.put([str(path)], plan, specs)
    return plan, cache.replanned


def errors(fn) -> str | None:  # type: ignore[no-untyped-def]
    try:
        fn()
    except PolicyError as exc:
        return exc.render()
    return None


def test_an_incremental_plan_is_the_fresh_plan_after_every_edit(tmp_path: Path) -> None:
    for h in range(3):
        (tmp_path / f"h{h}.csv").write_text(f"clerk;office{h};*\ncook;kitchen;*\n")
    path = tmp_path / "policy.yml"
    order = list(range(12))
    widths = dict.fromkeys(order, 10)
    head = HEADER
    rng = random.Random(3)

    notes: dict[int, int] = {}  # comment lines at the end of a table's entry

    def write(extra: str = "") -> None:
        text = "".join(table(i, widths[i]) + "    # note\n" * notes.get(i, 0) for i in order)
        path.write_text(head + text + extra)

    write()
    cache = tmp_path / "cache"
    assert through_cache(path, cache)[0] == fresh(path)
    read_again = []
    for step in range(40):
        kind = step % 10
        extra = ""
        if kind in (0, 5):  # one table's parameter
            i = rng.choice(order)
            widths[i] = widths[i] + 5
        elif kind == 1:  # a table added
            new = max(widths) + 1
            widths[new] = 10
            order.insert(rng.randrange(len(order) + 1), new)
        elif kind == 2 and len(order) > 3:  # a table removed
            order.remove(rng.choice(order))
        elif kind == 3:  # two tables swap places
            a, b = rng.sample(range(len(order)), 2)
            order[a], order[b] = order[b], order[a]
        elif kind == 4:  # the header
            head = (
                head.replace("customer: 2", "customer: 3")
                if "customer: 2" in head
                else (head.replace("customer: 3", "customer: 2"))
            )
        elif kind == 6:  # a hierarchy file, read by a third of the tables, and a table
            h = tmp_path / f"h{rng.randrange(3)}.csv"
            h.write_text(h.read_text() + f"pilot{step};air;*\n")
            widths[order[-1]] += 5
        elif kind == 7:  # lines added to the first table: every line below it moves
            notes[order[0]] = notes.get(order[0], 0) + 2
        elif kind == 8:  # a second run of the same text: the cached plan
            pass
        elif kind == 9:  # a table renamed
            i = rng.choice(order)
            new = max(widths) + 1
            widths[new] = widths.pop(i)
            order[order.index(i)] = new
        write(extra)
        plan, read = through_cache(path, cache)
        assert plan == fresh(path), f"step {step} (edit kind {kind})"
        read_again.append((kind, read))
    assert all(read == 1 for kind, read in read_again if kind in (0, 5)), read_again
    assert any(read == 1 for kind, read in read_again if kind == 7)  # lines moved, one read
    # the compiled files are the fresh ones (they are a function of the plan)
    d = dialect.get("duckdb")
    assert emit.build(through_cache(path, cache)[0], d) == emit.build(fresh(path), d)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            ("      age: {transform: bucket, width: 10}\n", "      age: {transform: buckett}\n"),
            "bucket",
        ),
        (("    target: anon.t5\n", "    target: anon.t2\n"), "written twice"),
        (("key: staff}", "key: noise}"), "noise"),  # the release's noise key, as a pseudonym
        (("  t7:\n", "  t3:\n"), "t3"),  # a table id twice
        (("versions: {customer: 2}", "versions: {customer: 2, gone: 1}"), "gone"),
    ],
    ids=["transform", "target twice", "key purpose", "id twice", "unused version"],
)
def test_an_edit_with_an_error_is_reported_as_a_fresh_compile_reports_it(
    tmp_path: Path, edit: tuple[str, str], message: str
) -> None:
    for h in range(3):
        (tmp_path / f"h{h}.csv").write_text("clerk;office;*\n")
    path = tmp_path / "policy.yml"
    text = HEADER + "".join(table(i) for i in range(8))
    path.write_text(text)
    cache = tmp_path / "cache"
    through_cache(path, cache)
    assert edit[0] in text
    path.write_text(text.replace(edit[0], edit[1], 1))
    want = errors(lambda: fresh(path))
    assert want is not None and message in want
    assert errors(lambda: through_cache(path, cache)) == want
    path.write_text(text)  # fixed again: the plan of the original text
    assert through_cache(path, cache)[0] == fresh(path)


@pytest.mark.parametrize(
    "text",
    [
        "tables:\n  a: &x {source: raw.a}\n  b: *x\n",  # an alias: another entry's text
        "tables:\n  a:\n    <<: {source: raw.a}\n",  # a merge key
        "tables: {a: {source: raw.a}}\n",  # flow style
        "tables:\n\ta:\n",  # a tab
        "tables:\n  a:\n    x: 1\n a2: {}\n",  # an entry less indented than the first
        "tables:\n  a:\n    x: 1\n  a:\n    x: 2\n",  # an id twice
        "---\ntables:\n  a:\n    x: 1\n",  # a document marker
    ],
)
def test_text_that_could_be_misread_is_not_cut(text: str) -> None:
    """The cut reads no YAML: whatever it could misread is left to the full parse."""
    assert cut_tables(text) is None


def test_the_cut_keeps_every_line_in_place() -> None:
    text = HEADER + "  # a comment\n" + table(0) + "\n" + table(1) + "  't 2':\n    x: 1\n"
    text += "synthetic:\n  s: {}\n"
    cut = cut_tables(text)
    assert cut is not None
    assert [c.id for c in cut.chunks] == ["t0", "t1", "t 2"]
    assert cut.blanked({0, 1, 2}) == text
    blank = cut.blanked({1})
    assert blank.count("\n") == text.count("\n")
    assert "t0:" not in blank and "t1:" in blank and "synthetic:" in blank
    assert text.splitlines()[cut.chunks[1].line - 1] == "  t1:"
