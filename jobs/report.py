"""spark-submit entry point for `sparkdl-tune report`; arguments as for the CLI.

Example: spark-submit jobs/report.py fashion-tune --out out/report mlflow.tracking_uri=...
"""

import sys

from _bootstrap import main

if __name__ == "__main__":
    sys.exit(main("report"))
