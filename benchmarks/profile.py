"""Where a server's time goes: py-spy samples this process for a while, and each sample is counted under the part of
the work its innermost recognised frame belongs to (the model's products, attention, copies, tokenizing, the record,
HTTP, JSON ...). Waiting threads (a lock, a selector, a sleep) are not counted."""

from __future__ import annotations

import linecache
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RATE = 50  # samples a second
# A part that claims every sample with its frame anywhere on the stack, whatever runs inside it.
WHOLE = (("the output projection", r"^XLM\.logits "),)
# The other parts, checked from a sample's innermost frame outwards: the first frame that matches one names the part.
PARTS = (
    ("the blocks' products", r"^(Linear\.forward|linear|mixed_linear|Int8Linear\.forward) \(.*xlm_demo/model/"),
    ("attention", r"^(attend|Packed\.attend|causal_mask|.*\.gather_context) \(.*xlm_demo/"),
    ("copies of keys and values", r"^(KVPool\.(read|write)|PrefixCache\.read|KVCache\.(repeated|update)) "),
    ("the blocks' other work (norms, GELU, embeddings)", r"xlm_demo/model/xlm\.py"),
    ("vocabulary passes (scores, candidates)", r"xlm_demo/engine/scoring\.py"),
    ("the prefix cache's tree", r"xlm_demo/engine/prefix_cache\.py"),
    ("tokenizing", r"xlm_demo/model/(tokenizer|bpe|chunks)\.py|sacremoses"),
    ("JSON", r"orjson|json/|to_json "),
    ("the record (spans, candidates, link)", r"xlm_demo/page/(next_token/record|coloured_text|state)\.py"),
    ("scheduler and sessions", r"xlm_demo/engine/(scheduler|sessions|engine)\.py"),
    ("reading the request", r"xlm_demo/page/next_token/(requests|routes)\.py"),
    ("HTTP (uvicorn, starlette, anyio)", r"uvicorn|starlette|h11|httptools|anyio|gradio/|brotli"),
)
# A thread waiting, not working: its innermost frame is one of these, or a line that takes a lock.
WAITING = re.compile(
    r"^(select|EpollSelector\.select|wait|Condition\.wait|Event\.wait|sleep|acquire|get"
    r"|_wait_for_tstate_lock) "
)
TAKES_A_LOCK = re.compile(r"^\s*with .*(lock|arrived)\b")
FRAME = re.compile(r"\((?P<path>[^():]+):(?P<line>\d+)\)$")


def py_spy() -> str:
    """The py-spy command, beside this Python if installed there."""
    beside = Path(sys.executable).with_name("py-spy")
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if not found:
        raise SystemExit("py-spy is not installed: pip install py-spy (make setup-dev installs it).")
    return found


def start(pid: int, seconds: float, path: Path) -> subprocess.Popen:
    """py-spy sampling the process `pid` for `seconds` without pausing it, its stacks written to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    command = [py_spy(), "record", "--pid", str(pid), "--nonblocking", "--format", "raw", "--rate", str(RATE)]
    command += ["--duration", str(max(1, round(seconds))), "--output", str(path)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def split(path: Path) -> dict[str, float]:
    """Each part's share of the working samples in a py-spy raw file (collapsed stacks), largest first."""
    counts: Counter[str] = Counter()
    for line in path.read_text(encoding="utf-8").splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not frames or waiting(frames[-1]):
            continue
        counts[part_of(frames)] += int(count)
    total = sum(counts.values()) or 1
    return {part: count / total for part, count in counts.most_common()}


def waiting(frame: str) -> bool:
    """Whether a sample's innermost frame waits: on a selector, a condition, a sleep, or a lock."""
    if WAITING.match(frame):
        return True
    where = FRAME.search(frame)
    if where is None:
        return False
    for folder in (ROOT, *map(Path, sys.path)):
        if (folder / where["path"]).is_file():
            return bool(TAKES_A_LOCK.match(linecache.getline(str(folder / where["path"]), int(where["line"]))))
    return False


def part_of(frames: list[str]) -> str:
    """The part a sample belongs to: a whole part on its stack, else from its innermost frame outwards."""
    for part, pattern in WHOLE:
        if any(re.search(pattern, frame) for frame in frames):
            return part
    for frame in reversed(frames):
        for part, pattern in PARTS:
            if re.search(pattern, frame):
                return part
    return "other"


def table(shares: dict[str, float]) -> str:
    """The split as a Markdown table."""
    rows = [f"| {part} | {share:.0%} |" for part, share in shares.items()]
    return "\n".join(["| part of the server's work | share of its samples |", "|---|---|", *rows])
