"""Keep the message catalogs in step with the code.

    python scripts/i18n.py update   extract messages, update zh_Hans_CN (zh_CN) and en, fill en from the English source
    python scripts/i18n.py check    exit 1 if a catalog has untranslated or fuzzy entries

Chinese translations are written by hand in portal/translations/zh_Hans_CN/LC_MESSAGES/messages.po.
"""

import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "portal" / "translations"
POT = TRANSLATIONS / "messages.pot"
#: Directory names are what Babel derives from the locales: zh_CN is zh_Hans_CN to it.
LOCALES = ("zh_Hans_CN", "en")


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


def check(report_only: bool = False) -> int:
    found = [p for locale in LOCALES for p in problems(locale)]
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
