"""Waiting in a browser page for a condition that may read elements Gradio has not drawn yet."""


def wait_in_page(page, predicate: str, arg=None, timeout: float | None = None) -> None:
    """Wait until the JavaScript predicate holds; one that throws (an element not drawn yet) has not held yet,
    where Playwright's wait_for_function would stop at the error."""
    guarded = f"(arg) => {{ try {{ return ({predicate})(arg); }} catch (error) {{ return false; }} }}"
    page.wait_for_function(guarded, arg=arg, timeout=timeout)
