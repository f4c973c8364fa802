"""Put the tables the benches wrote into the README, so that its tables are the files' and never a hand copy.

    python -m bench.readme_tables --readme=README.md

A table in the README sits between two markers that name the file it comes from (relative to the README):

    <!-- table: bench/results/methods-gowalla-s-NeuMF.md -->
    | sparsity | method | ...
    <!-- /table -->

Each such block is replaced by the file's text as it is now; everything outside the markers is left alone. A marker
naming a missing file, or one without its end, is a one-line error and the README is not written.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

START = re.compile(r"^<!-- table: (?P<path>\S+) -->$")
END = "<!-- /table -->"


class MarkerError(ValueError):
    """A table marker the README cannot be filled from."""


def fill(text: str, root: Path) -> tuple[str, list[str]]:
    """``text`` with every marked block replaced by its file's content (paths relative to ``root``), and the paths
    filled, in order. Raises :class:`MarkerError` for a missing file or an unterminated or nested block."""
    out, filled, lines, i = [], [], text.split("\n"), 0
    while i < len(lines):
        line = lines[i]
        out.append(line)
        start = START.match(line.strip())
        if line.strip() == END:
            raise MarkerError(f"line {i + 1}: {END} without a '<!-- table: FILE -->' before it")
        if not start:
            i += 1
            continue
        path = start["path"]
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == END or START.match(lines[j].strip())), None)
        if end is None or lines[end].strip() != END:
            raise MarkerError(f"line {i + 1}: the table from {path} has no {END} after it (before the next table or the end)")
        source = root / path
        if not source.is_file():
            raise MarkerError(f"line {i + 1}: {path} does not exist; a marker names a file relative to {root}")
        out.extend(source.read_text().strip("\n").split("\n"))
        out.append(END)
        filled.append(path)
        i = end + 1
    return "\n".join(out), filled


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme", default="README.md")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 where a table differs from its file")
    args = parser.parse_args(argv)
    readme = Path(args.readme)
    if not readme.is_file():
        parser.error(f"--readme={args.readme!r}: no such file")
    text = readme.read_text()
    try:
        new, filled = fill(text, readme.parent)
    except MarkerError as error:
        parser.error(f"{readme}: {error}")
    changed = new != text
    if args.check:
        print(f"{readme}: {len(filled)} tables, " + ("some differ from their files" if changed else "all as in their files"))
        return 1 if changed else 0
    if changed:
        readme.write_text(new)
    print(f"{readme}: {len(filled)} tables filled ({'changed' if changed else 'unchanged'}): " + ", ".join(filled))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
