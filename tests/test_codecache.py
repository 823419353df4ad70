"""The compiled template code kept between runs (sqlanon/sql/codecache.py): read back only when
it is the user's own, private and whole; any other entry is compiled afresh; a dialect loaded
from it writes the same bytes as one compiled from its templates."""

from __future__ import annotations

import os
from pathlib import Path

import jinja2
import pytest

from sqlanon.output.emit import build
from sqlanon.plan.build import build_plan
from sqlanon.policy.load import load_policy
from sqlanon.resources import dialects_dir, retail_policy
from sqlanon.sql import codecache, dialect
from sqlanon.sql.dialect import Dialect

SOURCE = "{% macro twice(x) %}{{ x }} {{ x }}{% endmacro %}"


def env() -> jinja2.Environment:
    return jinja2.Environment(trim_blocks=True, lstrip_blocks=True, autoescape=False)


def render(code) -> str:  # type: ignore[no-untyped-def]
    e = env()
    return str(e.template_class.from_code(e, code, e.make_globals(None), None).module.twice(3))


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SQLANON_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(codecache, "_LOADED", {})
    return tmp_path / "cache" / "templates"


def new_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget what this process compiled or read: the next call goes to the cache folder."""
    monkeypatch.setattr(codecache, "_LOADED", {})


def compiles(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    real = codecache._compile

    def counted(e: jinja2.Environment, source: str):  # type: ignore[no-untyped-def]
        seen.append(source)
        return real(e, source)

    monkeypatch.setattr(codecache, "_compile", counted)
    return seen


def test_code_is_compiled_once_and_read_back_from_a_private_folder(store, monkeypatch):
    seen = compiles(monkeypatch)
    assert render(codecache.compiled(env(), SOURCE)) == "3 3"
    new_process(monkeypatch)
    assert render(codecache.compiled(env(), SOURCE)) == "3 3"
    assert len(seen) == 1
    assert oct(store.stat().st_mode & 0o777) == "0o700"
    (entry,) = store.iterdir()
    assert not entry.stat().st_mode & 0o077  # readable by the user alone
    store.chmod(0o777)  # loosened by hand: the next entry written tightens it again
    codecache.compiled(env(), SOURCE + " ")
    assert oct(store.stat().st_mode & 0o777) == "0o700"


@pytest.mark.parametrize(
    "spoil", ["writable by others", "garbage", "truncated", "not code", "a link"]
)
def test_an_entry_that_is_not_safe_and_whole_is_compiled_afresh(store, monkeypatch, spoil):
    codecache.compiled(env(), SOURCE)
    (entry,) = store.iterdir()
    if spoil == "writable by others":
        entry.chmod(0o666)
    elif spoil == "garbage":
        entry.write_bytes(os.urandom(64))
    elif spoil == "truncated":
        entry.write_bytes(entry.read_bytes()[:40])
    elif spoil == "a link":  # to a file of the user's own that someone else chose
        elsewhere = store.parent / "elsewhere"
        entry.rename(elsewhere)
        entry.symlink_to(elsewhere)
    else:
        import marshal

        entry.write_bytes(marshal.dumps({"a": 1}))
    new_process(monkeypatch)
    seen = compiles(monkeypatch)
    assert render(codecache.compiled(env(), SOURCE)) == "3 3"
    assert seen == [SOURCE]


def test_another_template_text_or_environment_is_another_entry(store, monkeypatch):
    seen = compiles(monkeypatch)
    codecache.compiled(env(), SOURCE)
    codecache.compiled(env(), SOURCE.replace("{{ x }} {{ x }}", "{{ x }}-{{ x }}"))
    other = env()
    other.trim_blocks = False
    codecache.compiled(other, SOURCE)
    assert len(seen) == 3 and len(list(store.iterdir())) == 3


def test_off_keeps_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("SQLANON_CACHE_DIR", "off")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert render(codecache.compiled(env(), SOURCE)) == "3 3"
    assert list(tmp_path.iterdir()) == []


def test_a_dialect_loaded_from_the_cache_writes_the_same_bytes(store, tmp_path, monkeypatch):
    plan = build_plan([load_policy(retail_policy())])
    for name in dialect.available():
        folder = dialects_dir() / name
        new_process(monkeypatch)
        seen = compiles(monkeypatch)
        compiled = build(plan, Dialect(folder))
        assert seen  # compiled from the templates, and stored
        new_process(monkeypatch)
        seen = compiles(monkeypatch)
        assert build(plan, Dialect(folder)) == compiled
        assert seen == []  # every template read back
