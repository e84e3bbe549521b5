"""spark-submit entry point for `sparkdl-tune train`; arguments as for the CLI.

Example: spark-submit --master local[2] jobs/train.py --help
"""

import sys

from _bootstrap import main

if __name__ == "__main__":
    sys.exit(main("train"))
