"""The README and docs/ against the code: every command line in them has flags its command takes, every link
between them resolves, the CLI's options and JSON tables match the parser and the output, and the README stays
short."""

import argparse
import json
import re
import shlex
from pathlib import Path

import pytest

from xlm_demo.cli import EXAMPLES, HelpFormatter, build_parser, main

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
MAX_README_LINES = 250
COMMAND_START = re.compile(r"python3? (?:-m xlm_demo|app\.py)\b|make run\b")
SHELL_STOPS = {"|", "||", "&&", ";", ">", "<", "2>", ">>"}
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


def command_lines(markdown: str) -> list[tuple[str, bool]]:
    """Each `python -m xlm_demo`, `python app.py` and `make run` command, and whether it is a whole line of code."""
    code, prose = fenced_blocks_and_prose(markdown)
    found = [(line[match.start() :], True) for line in code if (match := COMMAND_START.search(line))]
    for span in re.findall(r"`([^`\n]+)`", "\n".join(prose)):
        if match := COMMAND_START.search(span):
            found.append((span[match.start() :], False))
    return found


def arguments(command: str) -> list[str]:
    """The arguments the command line passes to xlm_demo's parser (app.py and make run start `serve`)."""
    words = shlex.split(command, comments=True)
    words = words[: next((i for i, w in enumerate(words) if w in SHELL_STOPS), len(words))]
    if words[:2] == ["make", "run"]:
        given = dict(w.split("=", 1) for w in words[2:] if "=" in w)
        return [
            "serve",
            *(["--model", given["MODEL"]] if "MODEL" in given else []),
            *shlex.split(given.get("ARGS", "")),
        ]
    if words[1] == "app.py":
        return ["serve", *words[2:]]
    return words[3:]


def commands_parsers() -> dict[str, argparse.ArgumentParser]:
    """Each sub-command's own parser, by name."""
    (subparsers,) = (a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(subparsers.choices)


def placeholder(word: str) -> bool:
    """A word that stands for others in a synopsis: COMMAND, TEXT, [options]."""
    return bool(re.fullmatch(r"[A-Z_]+|\[.*\]", word))


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


def test_the_documentation_shows_command_lines_of_every_kind():
    found = documented_commands()
    assert len(found) >= 20
    assert {"README.md", "docs/cli.md"} <= {page for page, _, _ in found}
    shown = {arguments(command)[0] for _, command, whole in found if whole}
    assert set(commands_parsers()) <= shown


@pytest.mark.parametrize("page, command, whole", documented_commands(), ids=lambda v: str(v)[:60])
def test_every_documented_command_takes_the_flags_it_is_shown_with(page, command, whole):
    argv = arguments(command)
    assert unknown_flags(argv) == [], f"{page}: {command}"
    if whole and not any(placeholder(word) for word in argv) and "--help" not in argv:
        assert parses(argv), f"{page}: the parser refuses {command}"


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_each_command_help_shows_two_examples_that_parse(name):
    epilog = commands_parsers()[name].epilog
    lines = [line.strip() for line in epilog.splitlines() if line.strip().startswith("python -m xlm_demo")]
    assert len(lines) == 2
    for line in lines:
        assert unknown_flags(arguments(line)) == [] and parses(arguments(line)), line


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


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
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
