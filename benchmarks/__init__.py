"""Benchmarks: python -m benchmarks.NAME from the clone's folder, with the development install (make setup-dev)."""

import importlib.util

if importlib.util.find_spec("psutil") is None:
    raise SystemExit("The benchmarks need the development install: run make setup-dev, then . .venv/bin/activate.")
