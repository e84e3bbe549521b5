"""spark-submit entry point: spark-submit jobs/prepare.py SOURCE --out DIR [options] [key=value].

Example: spark-submit --master local[2] jobs/prepare.py fashion-mnist --out data/fashion-mnist
"""

import sys

try:
    from sparkdl_tune.cli import main
except ImportError:  # run from a checkout without the package installed
    import pathlib

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
    from sparkdl_tune.cli import main

if __name__ == "__main__":
    sys.exit(main(["prepare", *sys.argv[1:]]))
