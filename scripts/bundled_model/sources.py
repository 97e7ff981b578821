"""The Debian packages the text comes from: which files, under which licence, fetched with `apt-get download`."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


class SourceError(RuntimeError):
    """A package that could not be fetched or unpacked."""


@dataclass(frozen=True)
class Source:
    """Files of one Debian package read as one language's text."""

    package: str
    lang: str
    kind: str  # "html" (one document per page) or "fortunes" (one document per fortune)
    patterns: tuple[str, ...]  # globs inside the unpacked package
    licence: str  # as debian/copyright states it for these files
    skip: frozenset[str] = frozenset()  # file names left out (ASCII art, jokes unfit for a talk)


LIBREOFFICE_LICENCE = "MPL-2.0 (help content, debian/copyright `Files: *`)"
HANDBOOK_LICENCE = "GPL-2.0+ or CC-BY-SA-3.0 (The Debian Administrator's Handbook, Hertzog & Mas)"
REFERENCE_LICENCE = "GPL-2+ (Debian Reference, Osamu Aoki and translators)"

SOURCES = (
    Source("libreoffice-help-de", "de", "html", ("usr/share/libreoffice/help/de/text/**/*.html",), LIBREOFFICE_LICENCE),
    Source("debian-handbook", "de", "html", ("usr/share/doc/debian-handbook/html/de-DE/*.html",), HANDBOOK_LICENCE),
    Source("debian-reference-de", "de", "html", ("usr/share/debian-reference/*.de.html",), REFERENCE_LICENCE),
    Source(
        "fortunes-de",
        "de",
        "fortunes",
        ("usr/share/games/fortunes/de/*",),
        "GPL-2+ (fortunes-de, Andreas Tille)",
        skip=frozenset({"asciiart", "witze", "warmduscher"}),
    ),
    Source(
        "libreoffice-help-en-us",
        "en",
        "html",
        ("usr/share/libreoffice/help/en-US/text/**/*.html",),
        LIBREOFFICE_LICENCE,
    ),
    Source("debian-handbook", "en", "html", ("usr/share/doc/debian-handbook/html/en-US/*.html",), HANDBOOK_LICENCE),
    Source("debian-reference-en", "en", "html", ("usr/share/debian-reference/*.en.html",), REFERENCE_LICENCE),
    Source(
        "fortunes",
        "en",
        "fortunes",
        ("usr/share/games/fortunes/*",),
        "BSD-3-clause (fortune-mod's data files, debian/copyright)",
        skip=frozenset({"ascii-art", "translate-me", "ethnic", "men-women", "drugs", "politics"}),
    ),
)


def packages(sources: tuple[Source, ...] = SOURCES) -> list[str]:
    """Each package once, in the order the sources name them."""
    return list(dict.fromkeys(source.package for source in sources))


def fetch(root: Path, sources: tuple[Source, ...] = SOURCES) -> dict[str, dict[str, str]]:
    """Download and unpack every package under root/<package>/; their versions and licences, by package."""
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise SourceError("the bundled model's text comes from Debian packages, and apt-get/dpkg-deb are missing")
    debs = root / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    fetched = {}
    for package in packages(sources):
        deb = download(package, debs)
        version = subprocess.run(
            ["dpkg-deb", "--field", str(deb), "Version"], check=True, capture_output=True, text=True
        ).stdout.strip()
        tree = root / package
        if not (tree / ".unpacked").is_file() or (tree / ".unpacked").read_text() != version:
            shutil.rmtree(tree, ignore_errors=True)
            subprocess.run(["dpkg-deb", "--extract", str(deb), str(tree)], check=True)
            (tree / ".unpacked").write_text(version)
        licences = sorted({s.licence for s in sources if s.package == package})
        fetched[package] = {"version": version, "licence": "; ".join(licences)}
    (root / "packages.json").write_text(json.dumps(fetched, indent=2) + "\n")
    return fetched


def download(package: str, debs: Path) -> Path:
    """The package's .deb in debs/, downloaded by apt-get (no root needed) unless already there."""
    have = sorted(debs.glob(f"{package}_*.deb"))
    if have:
        return have[-1]
    result = subprocess.run(["apt-get", "download", package], cwd=debs, capture_output=True, text=True)
    have = sorted(debs.glob(f"{package}_*.deb"))
    if result.returncode != 0 or not have:
        raise SourceError(
            f"apt-get could not download the Debian package {package} (run `apt-get update` first, on Debian 12): "
            + (result.stderr.strip().splitlines() or ["no error message"])[-1]
        )
    return have[-1]


def files(source: Source, root: Path) -> list[Path]:
    """The source's text files, sorted, symlinks to files already listed and skipped names left out."""
    tree = root / source.package
    seen, found = set(), []
    for pattern in source.patterns:
        for path in sorted(tree.glob(pattern)):
            if not path.is_file() or path.name in source.skip or path.suffix in {".dat", ".u8"}:
                continue
            real = path.resolve()
            if real not in seen:
                seen.add(real)
                found.append(path)
    if not found:
        raise SourceError(f"{source.package} holds no files matching {', '.join(source.patterns)}")
    return found
