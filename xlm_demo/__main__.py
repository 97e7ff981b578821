"""Run the command line: python -m xlm_demo, or the xlm-demo script that `make setup` installs."""

from .server import settle_blas_threads


def run() -> int:
    """The command line's exit status, OpenBLAS settled before numpy loads."""
    settle_blas_threads()
    from .cli import main

    return main()


if __name__ == "__main__":
    raise SystemExit(run())
