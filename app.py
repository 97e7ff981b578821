"""The web demo: `python app.py [--model M] [--device D] [--host H] [--port P] [--share]` (what `make run` starts)."""

import sys

from xlm_demo.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))
