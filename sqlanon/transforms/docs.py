"""docs/transforms.md, generated from the transform registry and the conformance vectors so
the reference can never drift from the code: `python -m sqlanon.transforms.docs`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlanon.review.conformance import load_cases
from sqlanon.review.explain import CLASS_LABELS
from sqlanon.transforms import REGISTRY

INTRO = Path(__file__).with_name("docs_intro.md")


def _value(v: Any) -> str:
    if v is None:
        return "NULL"
    return json.dumps(v, ensure_ascii=False) if isinstance(v, str) else str(v)


def render() -> str:
    cases = load_cases()
    parts = [INTRO.read_text(encoding="utf-8")]
    parts.append("| transform | what it does | default type | class |\n|---|---|---|---|\n")
    for name, t in sorted(REGISTRY.items()):
        first = t.summary.split(". ")[0].rstrip(".") + "."
        parts.append(
            f"| [`{name}`](#{name}) | {first} | {t.default_type} | "
            f"{CLASS_LABELS[t.privacy_class]} |\n"
        )
    for name, t in sorted(REGISTRY.items()):
        parts.append(f"\n## {name}\n\n{t.summary}\n\n```yaml\n{t.example}\n```\n\n")
        parts.append(f"- **NULLs:** {t.nulls}\n- **Types:** {t.types_doc}\n")
        parts.append(f"- **Accepts:** {', '.join(t.accepts)} (default `{t.default_type}`)\n")
        parts.append(f"- **Privacy class:** {CLASS_LABELS[t.privacy_class]}\n")
        if t.uses_key:
            parts.append("- **Key:** read at query time from the policy's `keys.table`\n")
        if t.params:
            parts.append("\n| parameter | kind | default | meaning |\n|---|---|---|---|\n")
            for p in t.params:
                default = (
                    "required"
                    if p.required
                    else ("—" if p.default is None else f"`{_value(p.default)}`")
                )
                parts.append(f"| `{p.name}` | {p.kind.doc} | {default} | {p.doc} |\n")
        examples = [c for c in cases if c.transform == name and name != "drop"][:3]
        if examples:
            parts.append(
                "\nExamples (conformance vectors):\n\n"
                "| parameters | type | input | output |\n|---|---|---|---|\n"
            )
            for c in examples:
                params = json.dumps(c.params, ensure_ascii=False, default=str) if c.params else "{}"
                for value, expected in c.vectors[:4]:
                    parts.append(
                        f"| `{params}` | {c.type or t.default_type} | "
                        f"`{_value(value)}` | `{_value(expected)}` |\n"
                    )
    return "".join(parts)


if __name__ == "__main__":
    import sys

    sys.stdout.write(render())
