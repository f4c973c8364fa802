"""Put the tables the benches wrote into docs/results.md, so that its tables are the files' and never a hand copy.

    python -m bench.readme_tables              # fill docs/results.md
    python -m bench.readme_tables --check      # write nothing; exit 1 where a table differs from its file

A table sits between two markers that name the file it comes from (relative to the document):

    <!-- table: ../bench/results/methods-gowalla-s-NeuMF.md date=../bench/results/table-gowalla-s.md -->
    From methods-gowalla-s-NeuMF.md; measured 2026-12-03 to ... on 2 cores (AMD EPYC), ...
    | sparsity | method | ...
    <!-- /table -->

Each such block is replaced by the file's text as it is now; everything outside the markers is left alone. Options:

- ``part=N``: only the file's N-th table (1 for the first; a table is a run of lines that start with ``|``);
- ``date=FILE``: a line first that links the source and quotes the ``Measured ...`` line (date and machine) of FILE,
  which may be the source itself (a results table of ``bench.table`` is dated in its dataset's ``table-*.md``).

A marker naming a missing file, a part or a date line the file lacks, or one without its end, is a one-line error and
the document is not written.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

START = re.compile(r"^<!-- table: (?P<path>\S+)(?P<options>(?: \w+=\S+)*) -->$")
END = "<!-- /table -->"
OPTIONS = ("part", "date")
DOCS = (str(Path(__file__).resolve().parents[1] / "docs" / "results.md"),)


class MarkerError(ValueError):
    """A table marker the document cannot be filled from."""


def tables(text: str) -> list[list[str]]:
    """Every Markdown table of ``text``: each a run of lines starting with ``|``."""
    found, current = [], []
    for line in text.split("\n") + [""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            found.append(current)
            current = []
    return found


def measured(path: Path, where: str) -> str:
    line = next((line for line in path.read_text().split("\n") if line.startswith("Measured ")), None)
    if line is None:
        raise MarkerError(f"{where}: {path.name} has no 'Measured ...' line to date the table by")
    return line.rstrip(".")


def block(start: re.Match, root: Path, where: str) -> list[str]:
    """The lines a marker's block holds now."""
    path = start["path"]
    options = dict(option.split("=", 1) for option in start["options"].split())
    unknown = [name for name in options if name not in OPTIONS]
    if unknown:
        raise MarkerError(f"{where}: unknown option {unknown[0]!r}; allowed: {', '.join(OPTIONS)}")
    source = root / path
    if not source.is_file():
        raise MarkerError(f"{where}: {path} does not exist; a marker names a file relative to {root}")
    lines = source.read_text().strip("\n").split("\n")
    if "part" in options:
        found, part = tables(source.read_text()), options["part"]
        if not part.isdigit() or not 1 <= int(part) <= len(found):
            raise MarkerError(f"{where}: part={part}; allowed: 1 to {len(found)}, the tables of {path}")
        lines = found[int(part) - 1]
    if "date" not in options:
        return lines
    dated = root / options["date"]
    if not dated.is_file():
        raise MarkerError(f"{where}: date={options['date']} does not exist")
    date = measured(dated, where)
    by = f" ([{shown(options['date'])}]({options['date']}))" if options["date"] != path else ""
    return [f"From [{shown(path)}]({path}); {date[0].lower()}{date[1:]}{by}.", ""] + lines


def shown(path: str) -> str:
    """A marker's path as a reader names it: from the repository's root (``../bench/x.md`` -> ``bench/x.md``)."""
    return re.sub(r"^(\.\./)+", "", path)


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
        out.extend(block(start, root, f"line {i + 1}"))
        out.append(END)
        filled.append(path)
        i = end + 1
    return "\n".join(out), filled


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--doc", "--readme", dest="docs", action="append",
                        help="a document to fill (repeatable; default: docs/results.md)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 where a table differs from its file")
    args = parser.parse_args(argv)
    status = 0
    for name in args.docs or DOCS:
        doc = Path(name)
        if not doc.is_file():
            parser.error(f"--doc={name!r}: no such file")
        text = doc.read_text()
        try:
            new, filled = fill(text, doc.parent)
        except MarkerError as error:
            parser.error(f"{doc}: {error}")
        changed = new != text
        if args.check:
            print(f"{doc}: {len(filled)} tables, " + ("some differ from their files" if changed else "all as in their files"))
            status = max(status, int(changed))
            continue
        if changed:
            doc.write_text(new)
        print(f"{doc}: {len(filled)} tables filled ({'changed' if changed else 'unchanged'}): " + ", ".join(filled))
    return status


if __name__ == "__main__":
    raise SystemExit(main())
