"""Keep the message catalogs in step with the code.

    python scripts/i18n.py update   extract messages, update zh_Hans_CN (zh_CN) and en, fill en from the English source
    python scripts/i18n.py check    exit 1 if a catalog has untranslated or fuzzy entries, or the
                                    Chinese breaks the glossary (docs/glossary.md)

Chinese translations are written by hand in portal/translations/zh_Hans_CN/LC_MESSAGES/messages.po.
"""

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "portal" / "translations"
POT = TRANSLATIONS / "messages.pot"
#: Directory names are what Babel derives from the locales: zh_CN is zh_Hans_CN to it.
LOCALES = ("zh_Hans_CN", "en")
GLOSSARY = ROOT / "docs" / "glossary.md"
#: Where Chinese is written outside the catalog (PDF texts, demo data, factor sets).
SOURCES = ("portal/**/*.py", "portal/**/*.html", "portal/**/*.json", "portal/**/*.txt")


def catalog_path(locale: str) -> Path:
    return TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po"


def pybabel(*args: str) -> None:
    subprocess.run(
        [str(Path(sys.executable).with_name("pybabel")), *args],
        check=True,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )


def extract(pot: Path) -> None:
    """Every translatable message in the code and templates, into ``pot``."""
    pybabel(
        "extract",
        "-F",
        "babel.cfg",
        "-k",
        "_l",
        "-k",
        "lazy_gettext",
        "-o",
        str(pot),
        "--no-location",
        "--sort-output",
        ".",
    )


def update() -> None:
    extract(POT)
    for locale in LOCALES:
        if catalog_path(locale).exists():
            pybabel(
                "update",
                "-i",
                str(POT),
                "-d",
                str(TRANSLATIONS),
                "-l",
                locale,
                "--no-fuzzy-matching",
                "--ignore-obsolete",
            )
        else:
            pybabel("init", "-i", str(POT), "-d", str(TRANSLATIONS), "-l", locale)
    # pybabel wraps at 76 columns; the catalogs are kept at 100 (as written here), so that an
    # update changes only the messages that changed.
    for locale in LOCALES:
        path = catalog_path(locale)
        with path.open("rb") as f:
            catalog = read_po(f, locale=locale)
        with path.open("wb") as f:
            write_po(f, catalog, sort_output=True, width=100)
    # English is the source language: its catalog repeats the source strings.
    path = catalog_path("en")
    with path.open("rb") as f:
        catalog = read_po(f, locale="en")
    for message in catalog:
        if not message.id:
            continue
        message.flags.discard("fuzzy")
        if message.pluralizable:
            message.string = tuple(message.id)
        else:
            message.string = message.id
    with path.open("wb") as f:
        write_po(f, catalog, sort_output=True, width=100)
    check(report_only=True)


def problems(locale: str) -> list[str]:
    with catalog_path(locale).open("rb") as f:
        catalog = read_po(f, locale=locale)
    found = []
    for message in catalog:
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if "fuzzy" in message.flags:
            found.append(f"{locale}: fuzzy: {message.id!r}")
        elif not all(strings):
            found.append(f"{locale}: untranslated: {message.id!r}")
    return found


@dataclass(frozen=True)
class Term:
    english: tuple[str, ...]  #: word stems: "retire" covers retired, retirement, retiring
    chinese: str
    never: tuple[str, ...]

    def in_english(self, text: str) -> bool:
        return any(re.search(rf"\b{re.escape(stem)}", text, re.IGNORECASE) for stem in self.english)


def glossary() -> list[Term]:
    """The terms of the glossary's table (between its start and end markers)."""
    text = GLOSSARY.read_text(encoding="utf-8")
    table = text.split("<!-- glossary:start -->")[1].split("<!-- glossary:end -->")[0]
    terms = []
    for line in table.strip().splitlines()[2:]:  # after the header and its rule
        english, chinese, never, _meaning = (cell.strip() for cell in line.strip().strip("|").split("|"))
        terms.append(
            Term(
                tuple(w.strip() for w in english.split(",") if w.strip()),
                chinese,
                tuple(w.strip() for w in never.split(",") if w.strip()),
            )
        )
    return terms


def glossary_problems() -> list[str]:
    """Chinese translations without the glossary's term for an English word they translate, and
    words the glossary rules out, in the catalog or in Chinese written in the code."""
    terms = glossary()
    with catalog_path("zh_Hans_CN").open("rb") as f:
        catalog = read_po(f, locale="zh_Hans_CN")
    found = []
    for message in catalog:
        if not message.id:
            continue
        english = " ".join(message.id) if isinstance(message.id, tuple) else message.id
        english = re.sub(r"%\(\w+\)[sd]", "", english)  # placeholders are not words
        chinese = " ".join(message.string) if isinstance(message.string, tuple) else message.string
        for term in terms:
            if term.in_english(english) and term.chinese not in chinese:
                found.append(f"glossary: {term.english[0]!r} is {term.chinese!r}: {english!r} -> {chinese!r}")
            for word in term.never:
                if word in chinese:
                    found.append(
                        f"glossary: never {word!r} (use {term.chinese!r}): {english!r} -> {chinese!r}"
                    )
    for pattern in SOURCES:
        for path in sorted(ROOT.glob(pattern)):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                for term in terms:
                    for word in term.never:
                        if word in line:
                            where = f"{path.relative_to(ROOT)}:{number}"
                            found.append(f"glossary: never {word!r} (use {term.chinese!r}): {where}")
    return found


def check(report_only: bool = False) -> int:
    found = [p for locale in LOCALES for p in problems(locale)] + glossary_problems()
    for line in found:
        print(line)
    if not found:
        print("catalogs complete: " + ", ".join(LOCALES))
    return 0 if report_only or not found else 1


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "check"
    if command == "update":
        update()
    else:
        sys.exit(check())
