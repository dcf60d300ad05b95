"""Command line of gbloss: ``python -m gbloss <command>`` (or ``gbloss <command>``).

Commands:

* ``compare``: cross-validate the gbloss losses side by side on a data set (:mod:`gbloss.compare`).
"""

import os
import sys
import tempfile

_COMMANDS = {
    "compare": "cross-validate the losses side by side on your data (default: an embedded "
               "90:10 data set) and print one table",
}


class OutError(ValueError):
    """``--out`` cannot become a directory of results."""


def check_out(out):
    """Raise :class:`OutError` if ``out`` cannot become a directory of results: an existing
    file, a path under a file, no permission, a read-only file system. Creates nothing.

    It lives here, with no import beyond the standard library, so that the command line can
    check ``--out`` before it loads the engines."""
    existing = os.path.abspath(out)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        where = "" if existing == os.path.abspath(out) else f" ({existing} is one)"
        raise OutError(f"--out {out}: a file is in the way{where}; give a directory")
    try:  # what writing the results needs: a file in it, or a directory created in the parent
        if existing == os.path.abspath(out):
            tempfile.TemporaryFile(dir=existing).close()
        else:
            tempfile.TemporaryDirectory(dir=existing).cleanup()
    except OSError as exc:
        raise OutError(f"--out {out}: cannot write in {existing} "
                       f"({exc.strerror or exc})") from exc


def _out_argument(argv):
    """The value of ``--out`` in ``argv``, or None; read before the parser is built."""
    for i, arg in enumerate(argv):
        if arg in ("--", "-h", "--help"):
            return None
        if arg == "--out" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--out="):
            return arg[len("--out="):]
    return None


def build_parser():
    from .compare import ArgumentParser

    parser = ArgumentParser(
        prog="gbloss",
        description="gbloss: class-imbalance losses (focal, asymmetric, logit-adjusted) as "
                    "training objectives for XGBoost and LightGBM.",
        epilog="run 'gbloss <command> --help' for the options of a command",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"gbloss {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    from . import compare

    p = sub.add_parser("compare", help=_COMMANDS["compare"], **compare.parser_kwargs())
    compare.add_arguments(p)
    return parser


def main(argv=None):
    """Entry point; returns the exit status (0 success, 2 usage or input error), also for
    ``--help`` and argparse's errors, so that ``main([...])`` never raises SystemExit."""
    argv = sys.argv[1:] if argv is None else list(argv)
    out = _out_argument(argv) if argv[:1] == ["compare"] else None
    if out:
        try:
            check_out(out)
        except OutError as exc:
            print(f"gbloss compare: error: {exc}", file=sys.stderr)
            return 2
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version (0) and argparse's one-line errors (2)
        return exc.code
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    from . import compare

    return compare.run_safely(compare.run, args, f"gbloss {args.command}")


if __name__ == "__main__":
    sys.exit(main())
