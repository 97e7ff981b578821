"""The README and docs/ against the code: every command line and Python example in them runs as printed, from
another folder, offline; every link between them resolves; the CLI's options and JSON tables match the parser and
the output; and the README stays short."""

import argparse
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from benchmarks.server_process import free_port
from tests.checkpoints import write_hub_checkpoint
from tests.hub_server import Hub, HubServer
from xlm_demo.cli import EXAMPLES, HelpFormatter, build_parser, main
from xlm_demo.model.checkpoint import DEFAULT_MODEL

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
CONTRIBUTING = ROOT / "CONTRIBUTING.md"  # for those building the demo: its links are checked, its commands not run
VENV_BIN = Path(sys.executable).parent  # the environment the tests run in, the one the README activates
MAX_README_LINES = 250
# A command line: a program the docs tell people to run, with at least one argument (`xlm-demo` alone is a name).
COMMAND = re.compile(
    r"^(?:echo [^|]*\| )?(?:xlm-demo|python3? -m [\w.]+|python3? app\.py|make|hf|source|\.venv/bin/[\w-]+) \S"
)
SHELL_STOPS = {"|", "||", "&&", ";", ">", "<", "2>", ">>"}
# Printed commands the tests do not run, and why; any other command line must run.
NOT_RUN = {
    "make test": "the test suite itself",
    "make clean": "it removes the environment the tests run in",
    "make setup TORCH_INDEX=": "it replaces torch in the environment the tests run in, from an index on the network",
    "make bench": "a benchmark: minutes of CPU on a quiet machine, measured rather than checked",
    "make room": "a benchmark: minutes of CPU on a quiet machine, measured rather than checked",
    "make loadtest": "a benchmark: minutes of CPU on a quiet machine, measured rather than checked",
    "python -m benchmarks.": "a benchmark: minutes of CPU on a quiet machine, measured rather than checked",
}
PAGE_TITLE = "XLM English/German explorer"
SERVER_START_SECONDS = 240  # imports, the model and its products timing, on a busy 2-core machine
COMMAND_SECONDS = 300
# Words that mean something only to those who built the demo, not to those who use it.
INSIDER_WORDS = re.compile(r"\bissues? \d+|\.\./shared|\bCI machines?\b|\bthis (?:session|task)\b", re.IGNORECASE)


def fenced_blocks_and_prose(markdown: str) -> tuple[list[str], list[str]]:
    """The lines inside ``` fences (backslash continuations joined) and the lines outside them."""
    code, prose, inside, pending = [], [], False, ""
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            inside = not inside
            continue
        if not inside:
            prose.append(line)
        elif line.endswith("\\"):
            pending += line[:-1] + " "
        else:
            code.append(pending + line)
            pending = ""
    return code, prose


def python_examples(markdown: str) -> list[str]:
    """The code of every ```python fence."""
    return re.findall(r"^```python\n(.*?)^```", markdown, flags=re.MULTILINE | re.DOTALL)


def command_lines(markdown: str) -> list[tuple[str, bool]]:
    """Each command line, and whether it is a whole line of code (else a span in the prose)."""
    code, prose = fenced_blocks_and_prose(markdown)
    found = [(line.strip(), True) for line in code if COMMAND.match(line.strip())]
    spans = re.findall(r"`([^`\n]+)`", "\n".join(prose))
    return found + [(span, False) for span in spans if COMMAND.match(span)]


def words_of(command: str) -> list[str]:
    """The words of a command line's demo command: comments dropped, an `echo ... |` before it left out."""
    words = shlex.split(command, comments=True)
    if "|" in words:
        words = words[words.index("|") + 1 :]
    return words[: next((i for i, w in enumerate(words) if w in SHELL_STOPS), len(words))]


def arguments(command: str) -> list[str] | None:
    """The arguments a command line passes to xlm_demo's parser (`make run` and app.py start `serve`); None when
    it is no command of the demo's."""
    words = words_of(command)
    if words[:2] in (["make", "run"], ["make", "talk"]):
        given = dict(w.split("=", 1) for w in words[2:] if "=" in w)
        model = ["--model", given["MODEL"]] if "MODEL" in given else []
        return ["serve" if words[1] == "run" else "talk", *model, *shlex.split(given.get("ARGS", ""))]
    if words[0].endswith("xlm-demo"):
        return words[1:]
    if words[:3] == ["python", "-m", "xlm_demo"]:
        return words[3:]
    if words[:2] == ["python", "app.py"]:
        return ["serve", *words[2:]]
    return None


def commands_parsers() -> dict[str, argparse.ArgumentParser]:
    """Each sub-command's own parser, by name."""
    (subparsers,) = (a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(subparsers.choices)


def placeholder(word: str) -> bool:
    """A word that stands for others in a synopsis: COMMAND, TEXT, [options], MODEL=…."""
    return bool(re.fullmatch(r"[A-Z_]+|\[.*\]", word)) or "…" in word


def unknown_flags(argv: list[str]) -> list[str]:
    """The flags in argv that its command does not take (for a COMMAND placeholder: that not every command takes)."""
    parsers = commands_parsers()
    if not argv or argv[0].startswith("-"):
        known = set(build_parser()._option_string_actions)
    elif placeholder(argv[0]):
        known = set.intersection(*(set(p._option_string_actions) for p in parsers.values()))
    elif argv[0] in parsers:
        known = set(parsers[argv[0]]._option_string_actions)
    else:
        return [f"no command in {argv}"]
    return [word for word in argv if word.startswith("-") and word != "-" and word.split("=")[0] not in known]


def parses(argv: list[str]) -> bool:
    """Whether the whole command line is accepted by the real parser (values included)."""
    try:
        build_parser().parse_args(argv)
    except SystemExit:
        return False
    return True


def documented_commands() -> list[tuple[str, str, bool]]:
    """(page, command, whole line of code) for every command line in the README and docs/."""
    return [
        (page.relative_to(ROOT).as_posix(), command, whole)
        for page in PAGES
        for command, whole in command_lines(page.read_text(encoding="utf-8"))
    ]


def runnable_commands() -> list[tuple[str, list[str]]]:
    """Each distinct complete command line the pages print, as first printed, with the pages that print it."""
    found: dict[str, tuple[str, list[str]]] = {}
    for page, command, _ in documented_commands():
        words = shlex.split(command, comments=True)
        if not any(placeholder(word) for word in words):
            found.setdefault(shlex.join(words), (command, []))[1].append(page)
    return sorted(found.values())


def not_run_because(command: str) -> str | None:
    """Why a printed command is not run here, or None: it runs."""
    return next((why for start, why in NOT_RUN.items() if command.startswith(start)), None)


def test_the_documentation_shows_command_lines_of_every_kind():
    found = documented_commands()
    assert len(found) >= 20
    assert {"README.md", "docs/cli.md"} <= {page for page, _, _ in found}
    shown = {argv[0] for _, command, whole in found if whole and (argv := arguments(command))}
    assert set(commands_parsers()) <= shown


@pytest.mark.parametrize("page, command, whole", documented_commands(), ids=lambda v: str(v)[:60])
def test_every_documented_command_takes_the_flags_it_is_shown_with(page, command, whole):
    argv = arguments(command)
    if argv is None:
        return  # make setup, hf download ...: run below, not the demo's parser
    assert unknown_flags(argv) == [], f"{page}: {command}"
    if not any(placeholder(word) for word in argv) and "--help" not in argv:
        assert parses(argv), f"{page}: the parser refuses {command}"


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_each_command_help_shows_two_examples_that_parse(name):
    epilog = commands_parsers()[name].epilog
    lines = [line.strip() for line in epilog.splitlines() if line.strip().startswith("xlm-demo ")]
    assert len(lines) == 2
    for line in lines:
        assert unknown_flags(arguments(line)) == [] and parses(arguments(line)), line


def user_env(home: Path, activated: bool = True) -> dict[str, str]:
    """A user's shell, offline, with an empty Hugging Face cache of its own; with .venv active, or with no
    environment active at all."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING", "VIRTUAL_ENV", "GRADIO_"))}
    path = [folder for folder in env["PATH"].split(os.pathsep) if Path(folder) != VENV_BIN]
    env |= {
        "PATH": os.pathsep.join([str(VENV_BIN), *path] if activated else path),
        "HF_HOME": str(home / "hf-home"),
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
    }
    return env | ({"VIRTUAL_ENV": str(VENV_BIN.parent)} if activated else {})


def shell(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """The command line run by bash, as a person pastes it."""
    return subprocess.run(
        ["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=COMMAND_SECONDS
    )


def in_the_clone(words: list[str]) -> bool:
    """Whether a command is one the docs say to type in the clone: make, activating .venv, .venv/bin/... ."""
    return words[0] in ("make", "source") or words[0].startswith(".venv/")


def on_port(command: str, port: int) -> str:
    """The server command with its port moved to a free one: the one change made to a printed command."""
    words = shlex.split(command, comments=True)
    if words[:2] not in (["make", "run"], ["make", "talk"]):
        return shlex.join([*words, "--port", str(port)])
    given = next((w for w in words if w.startswith("ARGS=")), "ARGS=")
    return shlex.join([*(w for w in words if w != given), f"{given} --port {port}"])


@contextmanager
def served(command: str, cwd: Path, env: dict[str, str], log: Path) -> Iterator[str]:
    """The server a command line starts, on a free port, until it answers its page; yields its URL, stops it after."""
    port = free_port()
    with log.open("w") as output:
        server = subprocess.Popen(
            ["bash", "-c", on_port(command, port)],
            cwd=cwd,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # make, bash and the demo stop together
        )
    try:
        url = f"http://127.0.0.1:{port}/"
        assert answers(url, server), f"{command}: no page at {url}\n{log.read_text()[-3000:]}"
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


def answers(url: str, server: subprocess.Popen) -> bool:
    """Whether the demo's page comes from the URL before the server exits or its time is up."""
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return PAGE_TITLE in response.read().decode()
        except OSError:
            time.sleep(0.5)
    return False


@pytest.fixture(scope="module")
def examples_page(tmp_path_factory) -> Iterator[str]:
    """The page the API examples talk to, started as the docs start it (`xlm-demo serve`), from another folder."""
    home = tmp_path_factory.mktemp("examples-page")
    with served(EXAMPLES_SERVER, home, user_env(home), home / "server.log") as url:
        yield url


EXAMPLES_SERVER = "xlm-demo serve"
LOCAL_PAGE = "http://127.0.0.1:7860/"  # where the examples find the page; the one address changed when they run


def kind(command: str) -> str:
    """How a printed command is checked: not run, a download, a server, or run to its end."""
    words, argv = shlex.split(command, comments=True), arguments(command)
    if not_run_because(command):
        return "not run"
    if words[0] == "hf":
        return "download"
    return "server" if argv and argv[0] in ("serve", "talk") and "--help" not in argv else "to its end"


def run_to_its_end(command: str, home: Path) -> subprocess.CompletedProcess:
    """The command line from an empty folder (in the clone for make and .venv) in a user's offline shell."""
    words = shlex.split(command, comments=True)
    if words[0] == "source":  # then the demo's command is the environment's, wherever one is
        command += "\ncommand -v xlm-demo"
    return shell(command, ROOT if in_the_clone(words) else home, user_env(home, activated=not in_the_clone(words)))


@pytest.fixture(scope="module")
def finished(request, tmp_path_factory) -> dict[str, Future]:
    """The selected commands that run to their end, started two at a time when the first is asked for: each is its
    own process, as printed, and the suite waits for two at once (a process spends seconds importing torch)."""
    selected = [
        item.callspec.params["command"]
        for item in request.session.items
        if getattr(item, "originalname", "") == "test_every_command_line_runs_as_printed"
    ]
    pool = ThreadPoolExecutor(max_workers=2)
    yield {
        command: pool.submit(run_to_its_end, command, tmp_path_factory.mktemp("printed"))
        for command in selected
        if kind(command) == "to its end"
    }
    pool.shutdown(cancel_futures=True)  # after a failure with -x, the rest need not run


@pytest.mark.parametrize("command, pages", runnable_commands(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_command_line_runs_as_printed(command, pages, tmp_path, request):
    """Each in its own process, from an empty folder (in the clone for make and .venv), offline, on the bundled
    model: it exits 0 and prints what it promises; a server answers its page; a download fetches what it names."""
    how, words, argv = kind(command), shlex.split(command, comments=True), arguments(command)
    if how == "not run":
        pytest.skip(not_run_because(command))
    if how == "download":
        return check_download(command, tmp_path, user_env(tmp_path))
    if how == "server" and shlex.join(words) == EXAMPLES_SERVER:
        return assert_page(request.getfixturevalue("examples_page"))
    if how == "server":
        cwd = ROOT if in_the_clone(words) else tmp_path
        env = user_env(tmp_path, activated=not in_the_clone(words))
        with served(command, cwd, env, tmp_path / "server.log") as url:
            return assert_page(url)
    result = request.getfixturevalue("finished")[command].result()
    assert result.returncode == 0, f"{pages}: {command}\n{result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr and "error:" not in result.stderr
    if words[0] == "source":
        assert result.stdout.strip() == str(ROOT / ".venv" / "bin" / "xlm-demo")
    if argv:
        assert result.stdout.strip(), f"{command} printed nothing"
    if "--json" in words:
        json.loads(result.stdout)
    if "--help" in words:
        assert result.stdout.startswith("usage: xlm-demo")


def assert_page(url: str) -> None:
    """The demo's page, a second time: the server kept answering."""
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200 and PAGE_TITLE in response.read().decode()


def check_download(command: str, home: Path, env: dict[str, str]) -> None:
    """A download command, run against a local server holding a stand-in for the hub's repository: it fetches
    exactly the files it names, into the Hugging Face cache, and the demo then loads them offline."""
    repo = home / "repo"
    repo.mkdir()
    write_hub_checkpoint(repo)
    (repo / "tf_model.h5").write_bytes(b"\0" * 1024)  # a file the hub holds that the demo never reads
    hub = Hub(repos={DEFAULT_MODEL: repo})
    with HubServer(hub) as url:
        online = {k: v for k, v in env.items() if k != "HF_HUB_OFFLINE"} | {"HF_ENDPOINT": url}
        result = shell(command, home, online)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(hub.gets()) == sorted(shlex.split(command)[3:])
    loaded = shell(f"xlm-demo tokenize -v --model {DEFAULT_MODEL} x", home, env)
    assert loaded.returncode == 0 and "bundled" not in loaded.stderr, loaded.stderr[-3000:]


def documented_examples() -> list[tuple[str, str]]:
    """(page, code) for every Python example in the README and docs/."""
    return [
        (page.relative_to(ROOT).as_posix(), code)
        for page in PAGES
        for code in python_examples(page.read_text(encoding="utf-8"))
    ]


@pytest.mark.parametrize("page, code", documented_examples(), ids=lambda v: v if v.endswith(".md") else "")
def test_every_python_example_runs_as_printed(page, code, tmp_path, request):
    """Each as a script of its own, from an empty folder, offline; the API's examples against a running page."""
    if LOCAL_PAGE in code:
        code = code.replace(LOCAL_PAGE, request.getfixturevalue("examples_page"))
    (tmp_path / "example.py").write_text(code, encoding="utf-8")
    result = shell("python example.py", tmp_path, user_env(tmp_path))
    assert result.returncode == 0, f"{page}\n{result.stderr[-3000:]}"
    assert result.stdout.strip()


def manifests() -> list[tuple[str, dict]]:
    """(page, document) for every YAML document in a ```yaml fence of the README and docs/."""
    return [
        (page.relative_to(ROOT).as_posix(), document)
        for page in PAGES
        for block in re.findall(
            r"^```yaml\n(.*?)^```", page.read_text(encoding="utf-8"), flags=re.MULTILINE | re.DOTALL
        )
        for document in yaml.safe_load_all(block)
    ]


def demo_command(script: str) -> list[str]:
    """The arguments of the one `xlm-demo` command in a container's script."""
    (line,) = [line for line in script.splitlines() if "xlm-demo " in line]
    return shlex.split(line[line.index("xlm-demo ") :], comments=True)[1:]


def test_the_kuberay_manifest_serves_as_many_replicas_as_it_starts_workers_for():
    """Not run on Kubernetes here: its YAML parses, its front's command is one the demo's parser takes, and the
    front asks for the replicas and cores that the worker group gives."""
    (cluster,) = [document for _, document in manifests() if document["kind"] == "RayCluster"]
    (head,) = cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"]
    argv = demo_command("\n".join(head["args"]))
    assert unknown_flags(argv) == [] and parses(argv), argv
    asked = build_parser().parse_args(argv)
    (workers,) = cluster["spec"]["workerGroupSpecs"]
    assert asked.replicas == workers["replicas"] == workers["minReplicas"] == workers["maxReplicas"]
    assert asked.replica_cpus == float(workers["rayStartParams"]["num-cpus"])
    (worker,) = workers["template"]["spec"]["containers"]
    assert float(worker["resources"]["requests"]["cpu"]) >= asked.replica_cpus
    assert cluster["spec"]["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"  # no replica beside the front


def test_the_examples_show_how_to_choose_the_model():
    examples = "\n".join(code for _, code in documented_examples())
    assert "Engine.load()" in examples  # the real model where it can be had, else the bundled one
    for page in (README, ROOT / "docs" / "api.md"):
        assert 'Engine.load("bundled")' in page.read_text(encoding="utf-8")


def test_every_option_has_help_that_gives_its_default():
    for name, parser in commands_parsers().items():
        for action in parser._actions:
            if action.option_strings and not isinstance(action, argparse._HelpAction):
                shown = HelpFormatter(name)._expand_help(action) if action.help else ""
                assert "default" in shown and "default: None" not in shown, f"{name} {action.option_strings[0]}"


def options_table(markdown: str) -> dict[str, set[str]]:
    """docs/cli.md's options table: each option and the commands its rows name."""
    rows = re.findall(r"^\| (`-[^|]*) \| ([^|]*) \|", markdown, flags=re.MULTILINE)
    every = set(commands_parsers())
    table: dict[str, set[str]] = {}
    for option_cell, commands_cell in rows:
        named = set(re.findall(r"`(\w+)`", commands_cell))
        commands = every - named if commands_cell.startswith("every command") else named
        for option in re.findall(r"`(-[-\w]+)", option_cell):
            table.setdefault(option, set()).update(commands)
    return table


def test_the_cli_reference_lists_exactly_the_commands_each_option_belongs_to():
    taken: dict[str, set[str]] = {}
    for name, parser in commands_parsers().items():
        for option in parser._option_string_actions:
            if option not in ("-h", "--help"):
                taken.setdefault(option, set()).add(name)
    assert options_table((ROOT / "docs" / "cli.md").read_text(encoding="utf-8")) == taken


def keys(value) -> set[str]:
    """Every key of a JSON value, at any depth."""
    if isinstance(value, dict):
        return set(value) | set().union(*(keys(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(keys(v) for v in value))
    return set()


def json_table(markdown: str) -> dict[str, set[str]]:
    """docs/cli.md's JSON table: each command and every key its row names."""
    rows = re.findall(r"^\| `(\w+)` \| (`\{.*)\|$", markdown, flags=re.MULTILINE)
    return {command: set(re.findall(r'"(\w+)"', cell)) for command, cell in rows}


@pytest.mark.parametrize(
    "command", ["tokenize", "score", "predict", "fill", "generate", "attention", "attribute", "lens"]
)
def test_the_cli_reference_names_every_key_a_command_prints(capsys, command):
    documented = json_table((ROOT / "docs" / "cli.md").read_text(encoding="utf-8"))
    extra = ["--max-new-tokens", "2"] if command == "generate" else []
    text = "Guten <special1> Morgen" if command == "fill" else "Guten Morgen"
    assert main([command, "--model", str(ROOT / "assets" / "xlm-mini-ende"), "--json", *extra, text]) == 0
    assert documented[command] == keys(json.loads(capsys.readouterr().out))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the text as shown, lowercased, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link shows its text
    text = text.replace("`", "").replace("*", "")
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """Every heading's anchor in a page, a repeated one numbered as GitHub numbers it."""
    _, prose = fenced_blocks_and_prose(markdown)
    seen: dict[str, int] = {}
    found = set()
    for line in prose:
        if match := re.match(r"#{1,6} (.+)", line):
            base = slug(match.group(1))
            found.add(f"{base}-{seen[base]}" if base in seen else base)
            seen[base] = seen.get(base, 0) + 1
    return found


def links(markdown: str) -> list[str]:
    """Every link and image target in a page's prose, but those that leave the repository."""
    _, prose = fenced_blocks_and_prose(markdown)
    text = re.sub(r"`[^`\n]*`", "", "\n".join(prose))
    targets = re.findall(r"\]\(([^)\s]+)\)", text) + re.findall(r'src="([^"]+)"', text)
    return [t for t in targets if not re.match(r"[a-z]+:", t)]


def resolves(page: Path, target: str) -> bool:
    """Whether a relative link from a page reaches a file that is there, and the anchor a heading of that file."""
    path, _, anchor = target.partition("#")
    linked = (page.parent / path).resolve() if path else page
    if not linked.exists():
        return False
    return not anchor or (linked.suffix == ".md" and anchor in anchors(linked.read_text(encoding="utf-8")))


def broken_links(page: Path) -> list[str]:
    """The page's links to a file that is not there or to an anchor its page does not have."""
    return [target for target in links(page.read_text(encoding="utf-8")) if not resolves(page, target)]


def test_the_readme_links_into_docs_and_docs_link_to_each_other():
    readme_links = links(README.read_text(encoding="utf-8"))
    assert sum(target.startswith("docs/") for target in readme_links) >= 8
    assert any("#" in target for target in readme_links)


@pytest.mark.parametrize("page", [*PAGES, CONTRIBUTING], ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_link_resolves(page):
    assert broken_links(page) == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_pages_speak_to_users(page):
    assert INSIDER_WORDS.findall(page.read_text(encoding="utf-8")) == []


def test_the_readme_is_read_in_five_minutes():
    assert len(README.read_text(encoding="utf-8").splitlines()) <= MAX_README_LINES


def test_the_anchor_rules_follow_github():
    markdown = "# Fidelity: why each choice\n## `--lang` and `--json`\n## Notes\n## Notes\n```\n# not a heading\n```\n"
    assert anchors(markdown) == {"fidelity-why-each-choice", "--lang-and---json", "notes", "notes-1"}
