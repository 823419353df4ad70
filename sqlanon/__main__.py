"""`python -m sqlanon`, and the `sqlanon` command (pyproject.toml)."""

import sys


def main() -> None:
    """The commands, imported here so that a Ctrl-C while they load (half a second) ends as
    one later does: a line saying so and exit code 130, not a traceback."""
    try:
        from sqlanon.cli import main as run
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)  # cli.base.EXIT_INTERRUPTED, whose import is what was interrupted
    run()


if __name__ == "__main__":
    main()
