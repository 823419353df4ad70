"""Fuzzing the policy loader: whatever the file holds, the outcome is a plan that compiles or
located errors — never a traceback, never a hang.

The default run tries a few hundred policies; `SQLANON_FUZZ_EXAMPLES=10000` (what CI sets)
runs the full count. Each strategy's count is printed at the end of the run (-s or -rA).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sqlanon.output import emit
from sqlanon.plan.build import build_plan
from sqlanon.policy.diagnostics import PolicyError
from sqlanon.policy.load import load_policies
from sqlanon.sql import dialect
from sqlanon.sql.dialect import DialectError

TOTAL = int(os.environ.get("SQLANON_FUZZ_EXAMPLES", "400"))
# the examples are split between the strategies below
SHARES = {"documents": 0.3, "data_mutations": 0.4, "text_mutations": 0.3}
SLOW = 5.0  # seconds: one policy taking longer than this is a hang
COUNTS: dict[str, dict[str, int]] = {}

EXAMPLES = [
    "examples/retail/policy.yml",
    "examples/adult/policy.yml",
    "examples/diff/after.yml",
    "policies/pii.yml",
]


def fuzz_settings(name: str):  # type: ignore[no-untyped-def]
    return settings(
        max_examples=max(10, int(TOTAL * SHARES[name])),
        deadline=None,  # timed by `outcome` instead: a first call compiles templates
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=True,
    )


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The examples with what they include (fragments, hierarchies), so mutations of them
    resolve their includes as the originals do."""
    root = tmp_path_factory.mktemp("fuzz")
    for folder in ("examples/retail", "examples/adult", "examples/diff", "policies"):
        shutil.copytree(
            REPO / folder,
            root / folder,
            ignore=shutil.ignore_patterns("build", "*.csv", "*.duckdb"),
        )
    for csv in (REPO / "examples").rglob("hierarchies/*.csv"):
        target = root / csv.relative_to(REPO)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(csv, target)
    return root


def outcome(path: Path, text: str | bytes, strategy: str) -> str:
    """Load, plan and lower `text` as a policy at `path`; the only acceptable failures are
    located policy errors and dialect refusals."""
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
    else:
        path.write_bytes(text)
    counts = COUNTS.setdefault(strategy, {"tried": 0, "valid": 0, "errors": 0, "refused": 0})
    counts["tried"] += 1
    started = time.perf_counter()
    try:
        plan = build_plan(load_policies([str(path)], check_fragments=True))
        emit.build(plan, dialect.get("duckdb"))
        result = "valid"
    except PolicyError as exc:
        for d in exc.diagnostics:
            assert d.loc is not None, f"an error without a location: {d.message}"
            assert d.message.strip()
        rendered = exc.render()
        assert "Traceback" not in rendered and str(path.name) in rendered
        result = "errors"
    except DialectError as exc:
        assert str(exc).strip()
        result = "refused"
    elapsed = time.perf_counter() - started
    assert elapsed < SLOW, f"{elapsed:.1f}s for one policy"
    counts[result] += 1
    return result


# -- 1. random YAML documents ---------------------------------------------------------------

WORDS = [
    "sqlanon", "name", "tables", "source", "target", "columns", "transform", "keys", "table",
    "include", "rules", "defaults", "k_anonymity", "quasi_identifiers", "k", "action", "releases",
    "budget", "epsilon", "delta", "measures", "group_by", "privacy_unit", "grants", "utility",
    "keep", "drop", "pseudonymize", "bucket", "mask", "generalize", "hierarchy", "level",
    "width", "min", "max", "length", "key", "type", "class", "rule", "retention", "sample",
]  # fmt: skip
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(WORDS),
    st.text(max_size=30),
    st.dates(),
)
keys = st.one_of(st.sampled_from(WORDS), st.text(max_size=12), st.integers(), st.booleans())
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(keys, inner, max_size=6)),
    max_leaves=40,
)
policyish = st.fixed_dictionaries(
    {"sqlanon": st.one_of(st.just(1), scalars), "name": st.one_of(st.just("p"), scalars)},
    optional={w: documents for w in ("tables", "keys", "defaults", "releases", "budget", "rules")},
)


@fuzz_settings("documents")
@given(doc=st.one_of(documents, policyish))
def test_random_documents(tree: Path, doc: Any) -> None:
    text = yaml.safe_dump(doc, allow_unicode=True)
    outcome(tree / "examples/retail/fuzz_doc.yml", text, "documents")


# -- 2. mutations of the example policies (as data) ------------------------------------------


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


def _get(node: Any, path: tuple) -> Any:
    for p in path:
        node = node[p]
    return node


REPLACEMENTS = st.one_of(
    scalars,
    documents,
    st.sampled_from([0, -1, 10**400, 1e308, -0.0, "", " ", "ǅ\u0301", "a" * 5000, [], {}]),
    st.integers(min_value=1, max_value=60).map(lambda n: _deep(n)),
)


def _deep(n: int) -> Any:
    value: Any = "x"
    for i in range(n):
        value = [value] if i % 2 else {"k": value}
    return value


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, str]:
    example = draw(st.sampled_from(EXAMPLES))
    data = yaml.safe_load((REPO / example).read_text())
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        paths = _paths(data)[1:]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = _get(data, path[:-1])
        op = draw(st.sampled_from(["remove", "replace", "rename", "duplicate"]))
        if op == "remove":
            del parent[path[-1]]
        elif op == "replace":
            parent[path[-1]] = draw(REPLACEMENTS)
        elif op == "rename" and isinstance(parent, dict):
            parent[draw(keys)] = parent.pop(path[-1])
        elif op == "duplicate" and isinstance(parent, list):
            parent.append(parent[path[-1]])
    return example, yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


@fuzz_settings("data_mutations")
@given(case=mutated())
def test_mutated_examples(tree: Path, case: tuple[str, str]) -> None:
    example, text = case
    target = tree / example
    outcome(target.with_name("fuzz_mutated.yml"), text, "data_mutations")


# -- 3. mutations of the example policies (as text) ------------------------------------------

SNIPPETS = [
    "&a x", "*a", "!!python/object:os.system", "<<: *a", "? ", "- ", ": ", "{", "[", "'", '"',
    "\t", "\\", "%YAML 1.1\n---\n", "\n---\n", "\x00", "\ufeff", "\u2028", "#", "|", ">",
    "1e999", "0x10", "~", ".nan", "-.inf", "2026-02-30", "!!binary AAAA",
]  # fmt: skip


@st.composite
def text_mutated(draw: st.DrawFn) -> tuple[str, str]:
    example = draw(st.sampled_from(EXAMPLES))
    lines = (REPO / example).read_text().splitlines(keepends=True)
    for _ in range(draw(st.integers(min_value=1, max_value=5))):
        i = draw(st.integers(min_value=0, max_value=max(0, len(lines) - 1)))
        op = draw(st.sampled_from(["delete", "duplicate", "insert", "indent", "dedent", "cut"]))
        if not lines:
            break
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "insert":
            at = draw(st.integers(min_value=0, max_value=len(lines[i])))
            piece = draw(st.one_of(st.sampled_from(SNIPPETS), st.text(max_size=8)))
            lines[i] = lines[i][:at] + piece + lines[i][at:]
        elif op == "indent":
            lines[i] = "  " + lines[i]
        elif op == "dedent":
            lines[i] = lines[i].lstrip(" ")
        else:
            lines[i] = lines[i][: draw(st.integers(min_value=0, max_value=len(lines[i])))]
    return example, "".join(lines)


@fuzz_settings("text_mutations")
@given(case=text_mutated())
def test_text_mutations_of_examples(tree: Path, case: tuple[str, str]) -> None:
    example, text = case
    target = tree / example
    outcome(target.with_name("fuzz_text.yml"), text, "text_mutations")


# -- hostile shapes, once each -----------------------------------------------------------------


def test_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    levels = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):
        refs = ", ".join([f"*a{i - 1}"] * 9)
        levels.append(f"a{i}: &a{i} [{refs}]")
    text = "sqlanon: 1\nname: bomb\n" + "\n".join(levels) + "\ntables: {t: *a9}\n"
    started = time.perf_counter()
    assert outcome(tmp_path / "bomb.yml", text, "hostile") == "errors"
    assert time.perf_counter() - started < 1.0
    with pytest.raises(PolicyError) as info:
        load_policies([str(tmp_path / "bomb.yml")])
    assert "alias" in info.value.render()


@pytest.mark.parametrize("depth", [100, 10_000, 100_000])
def test_deep_nesting_is_an_error_not_a_crash(tmp_path: Path, depth: int) -> None:
    text = "sqlanon: 1\nname: deep\ntables: " + "[" * depth + "]" * depth + "\n"
    assert outcome(tmp_path / "deep.yml", text, "hostile") == "errors"
    text = "sqlanon: 1\nname: deep\ntables: " + "{a: " * depth + "1" + "}" * depth + "\n"
    assert outcome(tmp_path / "deep.yml", text, "hostile") == "errors"


@pytest.mark.parametrize(
    "text",
    [
        b"\xff\xfe\x00s\x00q",  # UTF-16 with a BOM
        b"sqlanon: 1\nname: \xc3\x28\n",  # invalid UTF-8
        b"",
        b"\x00" * 100,
        b"sqlanon: 1\nname: x\ntables:\n  t:\n    source: a.b\n    target: c.d\n    columns: {"
        + b"c: keep, " * 20000
        + b"}\n",  # twenty thousand duplicate keys
        ("sqlanon: 1\nname: " + "x" * 2_000_000 + "\n").encode(),
        b"sqlanon: .inf\nname: x\n",  # found by the full run: a float in a message
        b"sqlanon: 1\nname: .nan\ntables: -.inf\n",
    ],
    ids=["utf16", "bad-utf8", "empty", "nul", "duplicates", "huge-scalar", "inf", "nan"],
)
def test_hostile_bytes(tmp_path: Path, text: bytes) -> None:
    assert outcome(tmp_path / "hostile.yml", text, "hostile") == "errors"


@pytest.mark.parametrize("epsilon", ["1e-12", "5e-324", "1e300", "0.000001"])
def test_extreme_epsilons_plan_quickly(tree: Path, epsilon: str) -> None:
    """A noise scale of 1/ε units once made the interval search take ~1/ε steps."""
    text = (tree / "examples/retail/policy.yml").read_text()
    text = text.replace("epsilon: 1.0", f"epsilon: {epsilon}", 1)
    outcome(tree / "examples/retail/fuzz_epsilon.yml", text, "hostile")


def test_report_counts(request: pytest.FixtureRequest) -> None:
    """Printed so a run's note can quote it; runs last in this module."""
    total = sum(c["tried"] for c in COUNTS.values())
    print(f"\nfuzzed policies: {total}")
    for name, c in sorted(COUNTS.items()):
        print(f"  {name}: {c}")
