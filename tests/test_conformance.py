"""Every transform's conformance vectors, executed on every engine with exact expected
outputs, and compared across engines."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from sqlanon.review.conformance import load_cases, run_case
from sqlanon.sql import dialect
from sqlanon.transforms import REGISTRY
from sqlanon.warehouse import ENGINES

CASES = load_cases()
TARGETS = [e for e in ENGINES if e in dialect.available()]
# outcomes are kept for the cross-engine comparison; the group keeps this module on one worker
pytestmark = pytest.mark.xdist_group("conformance")
_OUTCOMES: dict[tuple[str, str], object] = {}


def outcome_of(case, engine_name, live):  # type: ignore[no-untyped-def]
    key = (engine_name, case.id)
    if key not in _OUTCOMES:
        _OUTCOMES[key] = run_case(case, dialect.get(engine_name), live.get(engine_name))
    return _OUTCOMES[key]


@pytest.mark.parametrize("engine_name", TARGETS)
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_vectors(case, engine_name, live):
    outcome = outcome_of(case, engine_name, live)
    assert outcome.failures == []
    if outcome.unsupported:  # allowed only where the dialect or the case declares the gap
        declared = dialect.get(engine_name).features.unsupported_canonical
        assert case.type in declared or engine_name in dict(case.skip), outcome.unsupported


def test_engines_agree_with_each_other(live):
    """The same vectors through every engine give the same outputs, value for value."""
    results: dict[str, list] = {}
    for name in TARGETS:
        results[name] = [outcome_of(c, name, live).actual for c in CASES]
    reference = results[TARGETS[0]]
    for name, actual in results.items():
        diff = [
            (c.id, r, a)
            for c, r, a in zip(CASES, reference, actual, strict=True)
            if r != a and a != ()
        ]  # () = declared unsupported on that dialect
        assert diff == [], f"{name} differs from {TARGETS[0]}"
    assert len(results) == len(TARGETS)


def test_every_transform_has_vectors():
    assert {c.transform for c in CASES} == set(REGISTRY)


def test_vectors_cover_the_edge_cases_the_contract_names():
    inputs = [v[0] for c in CASES for v in c.vectors]
    assert None in inputs and "" in inputs
    assert any(isinstance(v, str) and "\u0301" in v for v in inputs)  # combining character
    assert "2024-02-29" in inputs and "9999-12-31" in inputs  # leap day, far future
    assert "9223372036854775807" in inputs  # extreme integer
    assert any(c.session_time_zone for c in CASES)  # time zone independence


def test_pseudonym_vectors_match_python_hmac_over_the_canonical_text():
    """The expected pseudonyms are not copied from an engine: they follow from the documented
    canonical text, the purpose tag and RFC 2104 HMAC, recomputed here."""
    import yaml

    from sqlanon import resources

    doc = yaml.safe_load((resources.dialects_dir() / "conformance/pseudonymize.yml").read_text())
    key = bytes.fromhex(doc["key"])
    checked = 0
    for case in doc["cases"]:
        length = (case.get("params") or {}).get("length", 64)
        for value, expected, canonical in case["vectors"]:
            if value is None:
                assert expected is None
                continue
            message = f"pseudonym|{canonical}".encode()
            digest = hmac.new(key, message, hashlib.sha256).hexdigest()
            assert expected == digest[:length], (value, canonical)
            checked += 1
    assert checked >= 25
