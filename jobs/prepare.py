"""spark-submit entry point for `sparkdl-tune prepare`; arguments as for the CLI.

Example: spark-submit --master local[2] jobs/prepare.py --help
"""

import sys

from _bootstrap import main

if __name__ == "__main__":
    sys.exit(main("prepare"))
