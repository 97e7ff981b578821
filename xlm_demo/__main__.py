"""Run the command line: python -m xlm_demo."""

from .cli import main

raise SystemExit(main())
