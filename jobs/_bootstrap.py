"""Makes ``sparkdl_tune`` importable from a checkout when it is not installed (or shipped
with ``--py-files``), then hands over to the CLI."""

import pathlib
import sys


def main(command: str) -> int:
    try:
        from sparkdl_tune.cli import main as cli_main
    except ImportError:
        sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
        from sparkdl_tune.cli import main as cli_main
    return cli_main([command, *sys.argv[1:]])
