"""Convert the LightGCN text format (``train.txt``, ``test.txt``) into a RecBole atomic ``.inter`` file.

Each input line is ``user item1 item2 ...`` (space separated, remapped ids).
The output holds every interaction with the header
``user_id:token<TAB>item_id:token``: first all of ``train.txt`` (users
ascending, items in file order), then all of ``test.txt`` the same way. That
is byte for byte the layout of the ``.inter`` files in ``../shared/datasets``,
which matters: RecBole's random split shuffles rows in file order, so the
same file and seed give the same split.
With ``--split``, ``<name>.train.inter`` and ``<name>.test.inter`` are
written too, to use the original split through RecBole's ``benchmark_filename``.

    python -m recbole_bet.convert --raw DIR/raw --out DIR --name gowalla
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HEADER = "user_id:token\titem_id:token\n"


def read_lightgcn(path) -> dict[str, list[str]]:
    """``{user: [items]}`` in file order; a user line without items is kept with none."""
    table: dict[str, list[str]] = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            tokens = line.split()
            if not tokens:
                continue
            if not all(t.isdigit() for t in tokens):
                raise ValueError(f"{path}:{number}: expected integer ids 'user item ...', got {line.strip()[:60]!r}")
            table.setdefault(tokens[0], []).extend(tokens[1:])
    return table


def write_inter(path, rows) -> int:
    count = 0
    with open(path, "w", encoding="utf-8") as out:
        out.write(HEADER)
        for user, item in rows:
            out.write(f"{user}\t{item}\n")
            count += 1
    return count


def convert(raw_dir, out_dir, name: str, split: bool = False) -> dict:
    """Write ``out_dir/<name>.inter`` (and the split files); return counts."""
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    parts = {}
    for part in ("train", "test"):
        file = raw_dir / f"{part}.txt"
        if not file.is_file():
            raise FileNotFoundError(f"missing {file}: expected LightGCN-format train.txt and test.txt in {raw_dir}")
        parts[part] = read_lightgcn(file)
    out_dir.mkdir(parents=True, exist_ok=True)
    users = sorted(set(parts["train"]) | set(parts["test"]), key=int)

    def rows(which):
        for part in which:
            for user in users:
                for item in parts[part].get(user, []):
                    yield user, item

    counts = {"interactions": write_inter(out_dir / f"{name}.inter", rows(("train", "test")))}
    if split:
        for part in ("train", "test"):
            counts[part] = write_inter(out_dir / f"{name}.{part}.inter", rows((part,)))
    counts["users"] = len(users)
    counts["items"] = len({i for p in parts.values() for items in p.values() for i in items})
    return counts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", required=True, help="folder with LightGCN-format train.txt and test.txt")
    parser.add_argument("--out", required=True, help="output folder, e.g. DATA/gowalla")
    parser.add_argument("--name", required=True, help="dataset name, e.g. gowalla")
    parser.add_argument("--split", action="store_true", help="also write <name>.train.inter and <name>.test.inter")
    args = parser.parse_args(argv)
    try:
        counts = convert(args.raw, args.out, args.name, args.split)
    except (OSError, ValueError) as error:
        print(f"recbole-bet-convert: error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {Path(args.out) / (args.name + '.inter')}: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
