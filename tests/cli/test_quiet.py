"""The start-up noise filter on fd 2: known noise goes, everything else (tracebacks too) stays."""

import subprocess
import sys

SCRIPT = """
import os, sys
sys.argv = ["ntr", *sys.argv[1:]]
from ntr.cli.quiet import StderrFilter
if "--verbose" not in sys.argv:
    StderrFilter().start()
os.write(2, b"E0000 cuda_platform.cc:51] failed call to cuInit: INTERNAL: CUDA error (303)\\n")
os.write(2, b"WARNING:root:apitools not found, and bigquery client libraries are not available\\n")
os.write(2, b"a real C++ error line\\n")
print("python stderr line", file=sys.stderr)
raise ValueError("the real failure")
"""


def _stderr(*flags: str) -> str:
    done = subprocess.run([sys.executable, "-c", SCRIPT, *flags], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    return done.stderr


def test_noise_is_dropped_and_real_errors_pass():
    err = _stderr()
    assert "cuInit" not in err and "apitools" not in err
    assert "a real C++ error line" in err and "python stderr line" in err
    assert "ValueError: the real failure" in err and err.index("a real C++") < err.index("Traceback")


def test_verbose_keeps_everything():
    err = _stderr("--verbose")
    assert "cuInit" in err and "apitools" in err and "ValueError: the real failure" in err


def test_console_script_is_quiet_by_default(tmp_path):
    import os

    exe = os.path.join(os.path.dirname(sys.executable), "ntr")
    done = subprocess.run([exe, "preprocess", "--workdir", str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 2
    assert "apitools" not in done.stderr and "ntr generate" in done.stderr
