"""Run the command line: python -m xlm_demo."""

from .server import settle_blas_threads

settle_blas_threads()  # before numpy loads

from .cli import main  # noqa: E402

raise SystemExit(main())
