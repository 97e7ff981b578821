"""The web demo: `python app.py [--model M] [--device D] [--host H] [--port P] [--share]` (what `make run` starts)."""

import sys

from xlm_demo.server import settle_blas_threads

settle_blas_threads()  # before numpy loads

from xlm_demo.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))
