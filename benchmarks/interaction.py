"""make bench's interaction section: what a person does on the page, timed in the server's requests and in Chromium.

Server: the view route's work in this process on the real-size checkpoint (the request read, its action, the record
encoded), without HTTP; for a keystroke also the CPU time of the thread that asked, which is the request's work
outside the model's batches (those run on the scheduler's thread).
Browser: the demo as a separate server process, driven in Debian's Chromium through Playwright; each time runs from
the key (as Playwright presses it) or, in the page's own clock, from the click to the page showing its result.
"""

from __future__ import annotations

import math
import re
import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.server_process import free_port, start_server, stop, wait_until_up
from xlm_demo.engine import Engine
from xlm_demo.page.next_token import actions, side_by_side
from xlm_demo.page.next_token.record import ViewRecord
from xlm_demo.page.requests import ModelFacts, read_view_request

PASSAGE = str.split(
    "The weather in Berlin was cold that winter, and the trains ran late almost every morning. People waited on "
    "the platforms with their hands in their pockets, reading the news on their phones or talking quietly about "
    "the prices of bread and coal. In the evenings the streets were dark early, and the small shops near the "
    "river closed before six. My grandmother lived in a narrow house on the corner, where she had lived since the "
    "war. She kept a garden behind the house, with apple trees and a bench under the window, and in summer she "
    "sold the apples to the neighbours for a few coins. She told us stories about the city as it had been, when "
    "the wall still stood and her brother lived on the other side. Every Sunday we visited her, took the long "
    "tram ride across the city, and ate cake at the table by the stove. She asked about school, about our "
    "friends, and about the books we were reading. When we left she stood at the door and waved until the tram "
    "turned the corner. Years later, when the house was sold, I found a box of her letters in the attic. They "
    "were written in a careful hand, on thin blue paper, and most of them were addressed to her brother. She "
    "wrote about the garden, the weather, the price of coal and the long winters, and she always ended with the "
    "same sentence: we will see each other again when the spring comes. I read them slowly, one each evening, "
    "and I thought about how much of a life fits into a few pages, and how little of it we ever say aloud to "
    "the people we love. The letters are on my desk now, beside the window, and when the trains run late in "
    "winter I think of her waiting on the platform with her basket of apples and her patient smile."
)
WORD_COUNTS = (8, 32, 128, 300)
TYPED_WORD = "weather"  # typed a letter at a time after each text
KEYSTROKE_CPU = "keystroke, CPU outside the model's batches"
CONTINUE_TOKENS = 32
CONTINUE_WORDS = (8, 300)  # Continue is timed after a short text and a long one
# Between two interactions in the browser, as a person types or clicks (and as ../shared/measurements timed a bare
# Gradio page): the page has drawn the last result before the next keystroke, so no event waits for another's.
PAUSE_MS = 500
# The page's clock when each answer to the view route had come (Performance API resource entries): the rest of a
# keystroke's time is the page drawing.
ANSWER_TIMES = """() => {
  window.answers = [];
  new PerformanceObserver(list => {
    for (const entry of list.getEntries())
      if (entry.name.endsWith('/view')) window.answers.push(entry.responseEnd);
  }).observe({type: 'resource'});
}"""
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def text_of(n_words: int) -> str:
    return " ".join(PASSAGE[:n_words])


def ask(engine: Engine, text: str, action: str = "show", after: ViewRecord | None = None, **body) -> ViewRecord:
    """What the view route answers a page's request (read, acted on and encoded), without HTTP."""
    carried = {"appended": after.appended, "appended_langs": after.appended_langs} if after else {}
    drawn = {"ids": after.ids, "langs": after.langs, "typed": after.typed} if after else None
    request = read_view_request(
        ModelFacts.of(engine), {"prompt": text, "lang": "en", "action": action, "drawn": drawn, **carried, **body}
    )
    record = actions.answer(engine, request)
    record.to_json()
    return record


def summary(seconds: list[float]) -> dict:
    """Median and 95th percentile (nearest rank) in milliseconds."""
    ordered = sorted(seconds)
    return {"p50_ms": statistics.median(ordered) * 1e3, "p95_ms": ordered[math.ceil(0.95 * len(ordered)) - 1] * 1e3}


def timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def bench_server(engine: Engine, repeats: int = 3) -> dict:
    """Each interaction through the page's callbacks, at each text length, the prefix cache as the page leaves it."""
    rows = {}
    for n_words in WORD_COUNTS:
        times = {name: [] for name in ("keystroke", KEYSTROKE_CPU, "edit", "step", "pick", "undo")}
        for _ in range(repeats):
            time_one_text(engine, text_of(n_words), times)
        rows[n_words] = {name: summary(values) for name, values in times.items()}
    continued = {n_words: continue_rates(engine, text_of(n_words), repeats) for n_words in CONTINUE_WORDS}
    text = text_of(300)
    # The first Compare runs the other id over the whole text; after a Step, both ids need one position more.
    first = timed(lambda: side_by_side.compare({"prompt": text, "lang": "en"}, engine=engine))
    stepped = ask(engine, text, "step")
    chosen = {"prompt": text, "lang": "en", "appended": stepped.appended, "appended_langs": stepped.appended_langs}
    after_step = timed(lambda: side_by_side.compare(chosen, engine=engine))
    compare = {"first_ms": first * 1e3, "after_step_ms": after_step * 1e3}
    cache = engine.prefix_cache
    held = {"positions": cache.positions, "capacity": cache.capacity, "hits": cache.hits, "misses": cache.misses,
            "megabytes": cache.positions * cache.bytes_per_position / 1e6,
            "budget_megabytes": cache.budget_bytes / 1e6}  # fmt: skip
    return {"by_words": rows, "continue": continued, "compare": compare, "prefix_cache": held}


def continue_rates(engine: Engine, text: str, repeats: int) -> dict[str, float]:
    """Tokens per second of the route's Continue (each token's record encoded) and of the engine's own continuation
    of the same text, with the same settings, in turns; medians."""
    ask(engine, text)
    body = {"prompt": text, "lang": "en", "action": "continue", "n_tokens": CONTINUE_TOKENS}
    rates: dict[str, list[float]] = {"page": [], "engine": []}
    request = read_view_request(ModelFacts.of(engine), body)
    for _ in range(repeats):
        records = lambda: [r.to_json() for r in actions.continuation(engine, request)]  # noqa: E731
        rates["page"].append(CONTINUE_TOKENS / timed(records))
        rates["engine"].append(engine_rate(engine, text))
    return {f"{name}_tokens_per_s": statistics.median(values) for name, values in rates.items()}


def engine_rate(engine: Engine, text: str) -> float:
    """Tokens per second of the engine's own continuation of a text, with the page's default settings."""
    encoded = engine.encode(text, "en", reserve=CONTINUE_TOKENS)
    steps = lambda: list(engine.generate(encoded, CONTINUE_TOKENS, top_k=10))  # noqa: E731
    return CONTINUE_TOKENS / timed(steps)


def time_one_text(engine: Engine, text: str, times: dict[str, list[float]]) -> None:
    """Paste a text, type a word after it, edit its middle word; then Step, pick the second candidate, Undo."""
    shown = ask(engine, text)  # the text as pasted
    for end in range(1, len(TYPED_WORD) + 1):
        typed = f"{text} {TYPED_WORD[:end]}"
        cpu = time.thread_time()
        times["keystroke"].append(timed(lambda: ask(engine, typed, after=shown)))  # noqa: B023
        times[KEYSTROKE_CPU].append(time.thread_time() - cpu)
    words = text.split()
    edited = " ".join([*words[: len(words) // 2], "snow", *words[len(words) // 2 + 1 :]])
    times["edit"].append(timed(lambda: ask(engine, edited, after=shown)))
    shown = ask(engine, text)
    shown = run_and_keep(times["step"], lambda: ask(engine, text, "step", after=shown))
    second = shown.candidates[1]["id"]
    shown = run_and_keep(times["pick"], lambda: ask(engine, text, "pick", after=shown, choice=second))
    run_and_keep(times["undo"], lambda: ask(engine, text, "undo", after=shown))


def run_and_keep(times: list[float], request: Callable[[], ViewRecord]) -> ViewRecord:
    """Time a request, keep its time, and return the record it answers."""
    start = time.perf_counter()
    record = request()
    times.append(time.perf_counter() - start)
    return record


def bench_browser(model: Path, log_path: Path, engine: Engine, repeats: int = 2, only_continue: bool = False) -> dict:
    """The same interactions in Chromium against a server process: keystroke or click to the updated page;
    `only_continue`: Continue alone, in turns with `engine` (in this process) continuing the same text."""
    from playwright.sync_api import sync_playwright

    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    server = start_server(model, port, log_path)
    try:
        wait_until_up(base, server, log_path)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
            )
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(base)
            page.wait_for_selector("#output .tok", timeout=120_000)
            page.evaluate(ANSWER_TIMES)
            found = {}
            if not only_continue:
                found["by_words"] = {n: browse_text(page, text_of(n), repeats) for n in WORD_COUNTS}
                found["compare_ms"] = browse_compare(page, text_of(300))
            found["continue_tokens_per_s"], found["engine_tokens_per_s"] = {}, {}
            for n_words in CONTINUE_WORDS:
                shown, alone = [], []
                for _ in range(repeats):
                    shown.append(browse_continue(page, text_of(n_words)))
                    alone.append(engine_rate(engine, text_of(n_words)))
                found["continue_tokens_per_s"][n_words] = statistics.median(shown)
                found["engine_tokens_per_s"][n_words] = statistics.median(alone)
            browser.close()
    finally:
        stop(server)
    return found


# From a click, in the page's own clock, until the page shows its result: no driver's round trips in the time.
CLICK_TO_SHOWN = """([selector, index, expected]) => new Promise((done) => {
  const shown = () => +(document.querySelector('#status').innerText.match(/(\\d+) positions/) ?? [0, -1])[1];
  const start = performance.now();
  document.querySelectorAll(selector)[index].click();
  const poll = () => (shown() === expected ? done(performance.now() - start) : requestAnimationFrame(poll));
  poll();
})"""


def click_ms(page, selector: str, expected_positions: int, index: int = 0) -> float:
    """Milliseconds from a click on the element until the status line counts `expected_positions`."""
    return page.evaluate(CLICK_TO_SHOWN, [selector, index, expected_positions])


def positions(page) -> int:
    """The count of positions the status line reports."""
    return int(re.search(r"(\d+) positions", page.inner_text("#status")).group(1))


def wait_positions(page, expected: int) -> None:
    page.wait_for_function(
        "n => /(\\d+) positions/.test(document.querySelector('#status').innerText) && "
        "+document.querySelector('#status').innerText.match(/(\\d+) positions/)[1] === n",
        arg=expected,
        timeout=60_000,
        polling="raf",
    )


def paste(page, text: str) -> None:
    """Put a text in the box as a paste would, and wait until the page shows it."""
    box = page.locator("#prompt textarea")
    box.fill(text)
    shows_end(page, text.split()[-1])
    box.press("End")


def shows_end(page, word: str) -> None:
    """Wait until the coloured text ends with a word (Moses may have split its punctuation off: spaces ignored)."""
    page.wait_for_function(
        "w => document.querySelector('#output .tokens').innerText.replace(/\\s/g, '').endsWith(w)",
        arg=word,
        timeout=60_000,
        polling="raf",
    )


def browse_text(page, text: str, repeats: int) -> dict:
    """Keystrokes at the end, an edit in the middle, Step, pick and Undo on one text, each to its visible result."""
    times = {name: [] for name in ("keystroke", "keystroke_answer", "step", "pick", "undo")}
    for _ in range(repeats):
        paste(page, text)
        page.keyboard.type(" ")
        for end in range(1, len(TYPED_WORD) + 1):
            page.wait_for_timeout(PAUSE_MS)
            typed_at = page.evaluate("() => performance.now()")
            start = time.perf_counter()
            page.keyboard.type(TYPED_WORD[end - 1])
            shows_end(page, TYPED_WORD[:end])
            times["keystroke"].append(time.perf_counter() - start)
            answered = page.evaluate("t => Math.min(...window.answers.filter(a => a > t))", typed_at)
            times["keystroke_answer"].append((answered - typed_at) / 1e3)  # Infinity if none: shows in the table
        paste(page, text)
        n = positions(page)
        for name, selector, index, expected in (
            ("step", "#step", 0, n + 1),
            ("pick", "#candidate-list input", 1, n + 2),
            ("undo", "#undo", 0, n + 1),
        ):
            page.wait_for_timeout(PAUSE_MS)
            times[name].append(click_ms(page, selector, expected, index) / 1e3)
        page.click("#reset")
        wait_positions(page, n)
    return {name: summary(values) for name, values in times.items()}


def browse_compare(page, text: str) -> dict[str, float]:
    """Milliseconds from a click on Compare to its new chart: the first time for a text, then after a Step."""
    paste(page, text)
    first = compare_ms(page)
    n = positions(page)
    page.click("#step")
    wait_positions(page, n + 1)
    after_step = compare_ms(page)
    page.click("#reset")
    return {"first_ms": first, "after_step_ms": after_step}


def compare_ms(page) -> float:
    """Milliseconds from a click on Compare until its chart's title (which gives the KL divergence) changes."""
    page.wait_for_timeout(PAUSE_MS)
    title = "() => document.querySelector('#compare-plot .gtitle')?.textContent ?? ''"
    shown = page.evaluate(title)
    start = time.perf_counter()
    page.click("#compare")
    page.wait_for_function(f"old => ({title})() !== old", arg=shown, timeout=60_000, polling="raf")
    return (time.perf_counter() - start) * 1e3


def browse_continue(page, text: str) -> float:
    """Tokens per second that Continue shows on the page, from the click to the last token on screen; Reset after."""
    paste(page, text)
    n = positions(page)
    page.locator("#n-tokens input[type=number]").fill(str(CONTINUE_TOKENS))
    page.locator("#n-tokens input[type=number]").press("Enter")
    page.wait_for_timeout(PAUSE_MS)
    rate = CONTINUE_TOKENS / (click_ms(page, "#continue", n + CONTINUE_TOKENS) / 1e3)
    page.click("#reset")
    wait_positions(page, n)
    return rate


def report(server: dict, browser: dict | None) -> str:
    """The interaction table of docs/benchmarks.md: server callbacks and Chromium, median (p95) in ms."""
    lines = ["| words | interaction | server p50 (p95) | browser p50 (p95) |", "|---|---|---|---|"]
    for n_words, row in server.get("by_words", {}).items():
        for name, times in row.items():
            seen = (browser or {}).get("by_words", {}).get(n_words, {}).get(name)
            shown = f"{seen['p50_ms']:.0f} ({seen['p95_ms']:.0f})" if seen else ""
            lines.append(f"| {n_words} | {name} | {times['p50_ms']:.0f} ({times['p95_ms']:.0f}) | {shown} |")
    for n_words, row in (browser or {}).get("by_words", {}).items():
        answer, drawn = row["keystroke_answer"]["p50_ms"], row["keystroke"]["p50_ms"]
        shown = f"{answer:.0f} / {drawn - answer:.0f}"
        lines.append(f"| {n_words} | keystroke: answer in the page / page drawn after it | | {shown} |")
    for n_words, rates in server["continue"].items():
        engine_rate = rates["engine_tokens_per_s"]
        seen = (browser or {}).get("continue_tokens_per_s", {}).get(n_words)
        beside = (browser or {}).get("engine_tokens_per_s", {}).get(n_words)
        shown = f"{seen:.1f}, {seen / beside:.2f}× the engine's {beside:.1f} in turns" if seen else ""
        lines.append(f"| {n_words} | Continue, tokens/s (the engine alone: {engine_rate:.1f}) | "
                     f"{rates['page_tokens_per_s']:.1f} | {shown} |")  # fmt: skip
    if "compare" not in server:
        return "\n".join(lines)
    compare, seen = server["compare"], (browser or {}).get("compare_ms", {})
    shown = f"{seen['first_ms']:.0f} / {seen['after_step_ms']:.0f}" if seen else ""
    server_shown = f"{compare['first_ms']:.0f} / {compare['after_step_ms']:.0f}"
    lines.append(f"| 300 | Compare, first / after a Step | {server_shown} | {shown} |")
    cache = server["prefix_cache"]
    lines += ["", f"Prefix cache after the run: {cache['positions']:,} of {cache['capacity']:,} positions "
              f"({cache['megabytes']:.0f} of {cache['budget_megabytes']:.0f} MB), {cache['hits']:,} positions "
              f"found and {cache['misses']:,} run."]  # fmt: skip
    return "\n".join(lines)


def continue_report(model: Path, log_path: Path, repeats: int) -> str:
    """Continue alone: the page's callback and the engine in this process, then the page in Chromium."""
    engine = Engine.load(str(model), device="cpu")
    server = {"continue": {n: continue_rates(engine, text_of(n), repeats) for n in CONTINUE_WORDS}}
    return report(server, bench_browser(model, log_path, engine, repeats, only_continue=True))
