"""The driver's own Spark start is quiet: no banner, no Hadoop native-library warning."""

from __future__ import annotations

import subprocess
import sys

START = ("from sparkdl_tune.driver.session import get_spark\n"
         "print('rows', get_spark().range(7).count())\n")


def test_starting_spark_prints_no_banner_or_native_library_warning(tmp_path):
    done = subprocess.run([sys.executable, "-c", START], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "rows 7" in done.stdout
    for noise in ("Setting default log level", "log4j2-defaults", "NativeCodeLoader",
                  "To adjust logging level"):
        assert noise not in done.stderr, done.stderr
