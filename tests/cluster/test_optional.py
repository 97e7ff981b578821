"""Ray is an optional extra: the demo in one process (what `make run` starts) never imports it."""

import subprocess
import sys

from xlm_demo.model.checkpoint import BUNDLED_MODEL

ONE_PROCESS = f"""
import sys
from xlm_demo.cli import build_parser
from xlm_demo.server import create_app
create_app({str(BUNDLED_MODEL)!r}, device="cpu")
build_parser().parse_args(["serve", "--replicas", "2"])
print(sorted(name for name in sys.modules if name == "ray" or name.startswith("ray.")))
"""


def test_the_page_in_one_process_imports_no_ray():
    done = subprocess.run([sys.executable, "-c", ONE_PROCESS], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
