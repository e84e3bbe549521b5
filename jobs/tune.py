"""spark-submit entry point for `sparkdl-tune tune`; arguments as for the CLI.

Example: spark-submit --master local[2] jobs/tune.py conf/jobs/fashion_tune.yaml
"""

import sys

from _bootstrap import main

if __name__ == "__main__":
    sys.exit(main("tune"))
