"""Bad policies: every error at once, each at the right file:line:column with what was
expected and a suggestion; exit code 2 and never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sqlanon.policy.diagnostics import PolicyError
from sqlanon.policy.load import load_policies

CASES = yaml.safe_load((Path(__file__).parent / "policy_errors.yml").read_text())


def _write(root: Path, text: str) -> Path:
    folder = root / "examples" / "bad"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "policy.yml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_error_locations(case, workdir):
    path = _write(workdir, case["policy"])
    with pytest.raises(PolicyError) as info:
        load_policies([str(path.relative_to(workdir))])
    got = [(d.loc.line, d.loc.column, d.message) for d in info.value.diagnostics if d.loc]
    assert len(got) == len(info.value.diagnostics), "every diagnostic has a location"
    assert [(g[0], g[1]) for g in got] == [(e[0], e[1]) for e in case["errors"]], got
    for (_, _, message), (_, _, text) in zip(got, case["errors"], strict=True):
        assert text in message
    for d in info.value.diagnostics:
        assert d.loc.file == "examples/bad/policy.yml"
        assert d.expected or d.hint or "syntax" in d.message or "twice" in d.message
    if "hint" in case:
        assert any(case["hint"] in (d.hint or "") for d in info.value.diagnostics)


def test_cli_reports_all_errors_with_exit_2_and_no_traceback(workdir, cli):
    bad = next(c for c in CASES if c["name"].startswith("many mistakes"))
    path = _write(workdir, bad["policy"])
    for command in ("validate", "explain", "compile"):
        result = cli(command, str(path.relative_to(workdir)))
        assert result.exit_code == 2, result.output
        text = result.output + (result.stderr if result.stderr_bytes is not None else "")
        assert "Traceback" not in text
        for line, column, _ in bad["errors"]:
            assert f"examples/bad/policy.yml:{line}:{column}: error:" in text
        assert "6 errors in 1 file" in text
        assert "did you mean 'pseudonymize'?" in text
        assert "^" in text  # the offending line is shown with a caret


def test_missing_file_is_an_error_not_a_traceback(workdir, cli):
    result = cli("compile", "nope.yml")
    assert result.exit_code == 2
    assert "policy file 'nope.yml' not found" in result.output
    assert "Traceback" not in result.output


def test_valid_examples_validate(cli, workdir):
    result = cli("validate", "policies", "examples/retail/policy.yml", "examples/adult")
    assert result.exit_code == 0, result.output
    assert "ok: 3 policies, 1 fragment" in result.output  # adult: views and synthetic


def test_policies_compiled_together_must_not_collide(workdir):
    folder = workdir / "examples" / "two"
    folder.mkdir()
    body = (
        "sqlanon: 1\nname: {name}\ntables: {{t: {{source: raw.t, target: {target}, "
        "columns: {{a: keep}}}}}}\n"
    )
    (folder / "a.yml").write_text(body.format(name="same", target="anon.t"))
    (folder / "b.yml").write_text(body.format(name="same", target="ANON.T"))
    with pytest.raises(PolicyError) as info:
        load_policies(["examples/two"])
    messages = [(d.loc.file, d.loc.line, d.message) for d in info.value.diagnostics]
    assert (
        "examples/two/b.yml",
        1,
        "policy name 'same' is also used by examples/two/a.yml",
    ) in messages
    assert any(m[0] == "examples/two/b.yml" and "written twice" in m[2] for m in messages)


def test_exponent_numbers_read_as_numbers_as_in_yaml_1_2():
    """YAML 1.1 (PyYAML) reads `1e-6` as a string; every user writing a delta means 1.0e-6."""
    from decimal import Decimal

    from sqlanon.policy.yamltree import load_tree

    tree = load_tree('a: 1e-6\nb: "1e-6"\nc: 2E3\nd: 1e\ne: -.5e-2\n', "x.yml")
    values = {k: tree.get(k).value for k in "abcde"}  # type: ignore[union-attr]
    assert values == {
        "a": Decimal("0.000001"),
        "b": "1e-6",  # quoted: a string, as written
        "c": Decimal("2000"),
        "d": "1e",
        "e": Decimal("-0.005"),
    }
