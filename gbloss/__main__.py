"""Command line of gbloss: ``python -m gbloss <command>`` (or ``gbloss <command>``).

Commands:

* ``compare``: cross-validate the gbloss losses side by side on a data set (:mod:`gbloss.compare`).
"""

import sys

_COMMANDS = {
    "compare": "cross-validate the losses side by side on your data (default: an embedded "
               "90:10 data set) and print one table",
}


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
