"""A policy as it was at a git revision, for `sqlanon diff --git REV`."""

from __future__ import annotations

from pathlib import Path


class GitError(RuntimeError):
    """git could not give the revision (not a repository, an unknown revision)."""


def at_revision(paths: list[str], rev: str, into: Path) -> list[str]:
    """The repository's tree at `rev` unpacked into `into`; the same policy paths there
    (a policy that did not exist at `rev` is left out: everything in it is new)."""
    import io
    import subprocess
    import tarfile

    first = Path(paths[0]).resolve()
    try:
        top = subprocess.run(
            ["git", "-C", str(first.parent), "rev-parse", "--show-toplevel"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        archive = subprocess.run(
            ["git", "-C", top, "archive", "--format=tar", rev],
            check=True,
            capture_output=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        text = detail.decode(errors="replace").strip() if isinstance(detail, bytes) else detail
        raise GitError(f"--git {rev}: {text or exc}") from None
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    out = []
    for p in paths:
        rel = Path(p).resolve().relative_to(Path(top).resolve())
        if (into / rel).exists():
            out.append(str(into / rel))
    return out
