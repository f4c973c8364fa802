"""Write docs/configuration.md from the settings dataclasses and properties/, so that a key's default and meaning
are written once.

    python -m bench.config_docs            # write docs/configuration.md
    python -m bench.config_docs --check    # write nothing; exit 1 if it is stale or the sources disagree

Where each part comes from:

- our keys, their defaults and the values allowed: the settings dataclasses (:class:`recbole_bet.config.RunSettings`
  and each method's ``REGISTRY[name].settings_class``), their fields and their rules;
- what each key means: the ``Attributes:`` section of its dataclass's docstring;
- profiles, per-backbone values and the RecBole keys we set: ``properties/`` (for RecBole's keys, the meaning is the
  comment beside the key in its property file).

:func:`problems` lists where the sources disagree: a method's ``properties/method/<name>.yaml`` whose keys or values
differ from its dataclass's defaults, a key without a meaning in the docstring (or a meaning for no key), a profile or
backbone file that sets a method key that does not exist or holds a value its rule refuses.
"""

from __future__ import annotations

import argparse
import fnmatch
import inspect
import re
import sys
from dataclasses import MISSING, fields
from pathlib import Path

import yaml
from recbole.config import Config

from recbole_bet.config import RunSettings, per_backbone, properties_dir
from recbole_bet.errors import ConfigError
from recbole_bet.methods import REGISTRY

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "configuration.md"
COMMAND = "python -m bench.config_docs"
# RecBole reads property files with this loader (YAML 1.1 plus floats such as 1e-5); so do we, to see what it sees
LOADER = Config._build_yaml_loader(None)
ENTRY = re.compile(r"^(?P<head>[\w*]+(?: \([^)]*\))?(?:, [\w*]+(?: \([^)]*\))?)*): (?P<text>.*)$")
NAME = re.compile(r"([\w*]+)(?: \(([^)]*)\))?")


def load(path: Path) -> dict:
    return yaml.load(path.read_text(), Loader=LOADER) or {}


def attribute_entries(cls) -> list[tuple[list[str], str, str]]:
    """``(names, type, meaning)`` of each entry of ``cls``'s ``Attributes:`` docstring section, in order; an entry
    may name several keys (``a, b (float): ...``) or a pattern (``bet_beta_max_* (float): ...``)."""
    lines = inspect.cleandoc(cls.__doc__ or "").splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == "Attributes:"), None)
    if start is None:
        return []
    entries, indent = [], None
    for line in lines[start + 1:]:
        if not line.strip():
            break
        depth = len(line) - len(line.lstrip())
        indent = depth if indent is None else indent
        if depth < indent:
            break
        match = ENTRY.match(line.strip()) if depth == indent else None
        if match:
            names = NAME.findall(match["head"])
            kind = next((t for _, t in reversed(names) if t), "")
            entries.append(([name for name, _ in names], kind, match["text"]))
        elif entries:
            names, kind, text = entries[-1]
            entries[-1] = (names, kind, f"{text} {line.strip()}")
    return entries


def rst_to_markdown(text: str) -> str:
    text = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", text)
    return re.sub(r"``([^`]+)``", r"`\1`", text)


def meanings(cls) -> tuple[dict[str, tuple[str, str]], list[str]]:
    """``{key: (type, meaning)}`` for every key of ``cls`` its docstring explains, and the docstring's names that
    match no key (a stale or misspelt entry)."""
    keys = cls.key_names()
    found, stale = {}, []
    for names, kind, text in attribute_entries(cls):
        for name in names:
            matched = [key for key in keys if fnmatch.fnmatchcase(key, name)]
            stale += [] if matched else [name]
            for key in matched:
                found.setdefault(key, (kind, rst_to_markdown(text)))
    return found, stale


def default(f):
    return f.default_factory() if f.default is MISSING else f.default


def show(value) -> str:
    """A value as a property file writes it."""
    if value is None:
        return "`~`"
    if isinstance(value, (list, tuple)):
        return "`[" + ", ".join(str(v) for v in value) + "]`"
    if isinstance(value, dict):
        return "`" + yaml.safe_dump(value, default_flow_style=True, sort_keys=False).strip() + "`"
    return f"`{value}`"


def profiles(method: str, properties: Path) -> dict[str, Path]:
    folder = properties / "method" / method
    return {path.stem: path for path in sorted(folder.glob("*.yaml"), key=lambda path: path.stem)}


def flow(value) -> str:
    """A profile's value as YAML writes it inline: ``~``, ``{default: 2, NGCF: 3}``, ``[1, 1, 0]``."""
    if value is None:
        return "~"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    return str(value)


def cell(text: str) -> str:
    """Text for a Markdown table cell (a ``|`` would end it, even inside backticks)."""
    return text.replace("|", "\\|")


def kind_words(kind: str) -> str:
    """A docstring's type in words: ``float | tuple[float]`` -> "number or list of numbers"."""
    words = {"None": "`~`", "str": "text", "float": "number", "int": "integer", "bool": "`True`, `False`",
             "tuple[float]": "list of numbers"}
    return " or ".join(words.get(part.strip(), part.strip()) for part in kind.split("|")) if kind else "-"


def allowed(f, kind: str, settings, properties: Path) -> str:
    """The values a key takes, from its rule (or, for a key without one, its type)."""
    rule, optional = f.metadata, " or `~`"
    if f.name == "method":
        return ", ".join(f"`{name}`" for name in REGISTRY)
    if settings.prefix and f.name == f"{settings.prefix}profile":
        names = profiles(settings.prefix[:-1], properties)
        return ", ".join(f"`{name}`" for name in names) + optional
    if "rule" not in rule:
        return kind_words(kind)
    none = optional if rule.get("optional") else ""
    if rule["rule"] == "boolean":
        return "`True`, `False`"
    if rule["rule"] == "choice":
        return ", ".join(f"`{value}`" for value in rule["allowed"]) + none
    if rule["rule"] == "choice_list":
        return "list of distinct " + ", ".join(f"`{value}`" for value in rule["allowed"]) + none
    if rule["rule"] == "integer":
        return f"integer >= {rule['least']}{none}"
    if rule["rule"] == "integer_list":
        return f"list of integers >= {rule['least']}" + (", distinct" if rule["distinct"] else "")
    low, high = rule["low"], rule["high"]
    if rule["rule"] == "real_list":
        span = f"[{low}, {high}]" if high is not None else f">= {low}"
        return f"list of numbers in {span}" + (", distinct" if rule["distinct"] else "")
    if high is None:
        return "any number" if low is None else f"number {'>' if rule['low_open'] else '>='} {low}"
    return f"number in {'(' if rule['low_open'] else '['}{low}, {high}]"


def key_table(settings, properties: Path) -> str:
    found, _ = meanings(settings)
    lines = ["| key | default | allowed | meaning |", "|---|---|---|---|"]
    for f in fields(settings):
        kind, text = found.get(f.name, ("", "**undocumented**"))
        lines.append(f"| `{f.name}` | {cell(show(default(f)))} | {cell(allowed(f, kind, settings, properties))} | {cell(text)} |")
    return "\n".join(lines)


def comments(path: Path) -> tuple[str, dict[str, str]]:
    """A property file's leading comment and ``{top-level key: its comment}`` (a nested key's comments join its
    parent's), the ``(type)`` prefix dropped."""
    head, notes, key = [], {}, None
    for line in path.read_text().splitlines():
        if line.startswith("#") and key is None:
            head.append(line.lstrip("# ").rstrip())
            continue
        top = re.match(r"^(\w+):", line)
        key = top[1] if top else key
        if key is not None and " #" in line:
            note = re.sub(r"^\([^)]*\)\s*", "", line.split(" #", 1)[1].strip().lstrip("#").strip()).strip(". ")
            notes[key] = f"{notes[key]}; {note}" if key in notes else note
    return " ".join(part for part in head if part), notes


def owner(key: str):
    """The settings dataclass a key belongs to (None for RecBole's and the backbones' own keys)."""
    run = RunSettings.key_names()
    if key in run:
        return RunSettings
    return next((cls.settings_class for cls in REGISTRY.values()
                 if cls.settings_class is not None and key.startswith(cls.settings_class.prefix)), None)


def meaning_of(key: str, note: str) -> str:
    cls = owner(key)
    if cls is None:
        return rst_to_markdown(note) if note else "RecBole's key"
    return meanings(cls)[0].get(key, ("", "**undocumented**"))[1]


def link(path: Path) -> str:
    """A Markdown link to a repository file, relative to docs/."""
    relative = path.resolve().relative_to(ROOT).as_posix()
    return f"[`{relative}`](../{relative})"


def file_table(path: Path, skip=()) -> str:
    values, (_, notes) = load(path), comments(path)
    lines = ["| key | value | meaning |", "|---|---|---|"]
    lines += [f"| `{key}` | {cell(show(value))} | {cell(meaning_of(key, notes.get(key, '')))} |"
              for key, value in values.items() if key not in skip]
    return "\n".join(lines)


def method_section(name: str, properties: Path) -> list[str]:
    cls = REGISTRY[name]
    source, settings = Path(inspect.getsourcefile(cls)), cls.settings_class
    if settings is None:
        return [f"### `{name}`", "", f"Code: {link(source)}. No keys of its own.", ""]
    keys = Path(inspect.getsourcefile(settings))
    code = f"code and keys: {link(source)}" if keys == source else f"code: {link(source)}; keys: {link(keys)}"
    out = [f"### `{name}`", "", f"{code[0].upper()}{code[1:]}; defaults: {link(properties / 'method' / f'{name}.yaml')}.",
           "", key_table(settings, properties), ""]
    for profile, path in profiles(name, properties).items():
        sets = ", ".join(f"`{key}: {flow(value)}`" for key, value in load(path).items())
        out.append(f"- `--{name}_profile={profile}` ({link(path)}) sets {sets or 'nothing'}.")
    for path in sorted((properties / "model").glob("*.yaml")):
        own = {key: value for key, value in load(path).items() if key.startswith(settings.prefix)}
        if own:
            sets = ", ".join(f"`{key}: {value}`" for key, value in own.items())
            out.append(f"- With {path.stem} ({link(path)}): {sets}.")
    return out + [""]


INTRO = """# Configuration

<!-- Generated by `{command}` from the settings dataclasses and properties/; edit those, then rerun it. -->

Every key passes as `--key=value` on the command line (one `=`), in `config_dict` from Python, or in a YAML file
given to `--config_files`. Values are laid one over the other in this order, the later winning:

1. RecBole's own property files (its `overall.yaml`, model and dataset files);
2. [`properties/overall.yaml`](../properties/overall.yaml): the run's keys and the protocol;
3. `properties/method/<method>.yaml`: the method's defaults, read for that method only;
4. `properties/model/<Model>.yaml`: the backbone's keys, and a method key it sets per backbone;
5. `properties/method/<method>/<profile>.yaml` when `--<method>_profile=<profile>` is given, for the keys it names; a key
   the backbone's file sets too is given there per backbone (`bet_finetune_epochs: {{default: 2, NGCF: 3}}`), so a
   profile never silently replaces a backbone's own value;
6. `properties/dataset/<dataset>.yaml`;
7. your `--config_files`, then `config_dict`, then the command line.

Our keys are checked once, before any training: a value out of range, an unknown key with a method's prefix
(`bet_candidate`: "did you mean `bet_candidates`?") or another method's key (`--bet_iterations` with `--method=es`)
stops the run with one line and exit code 2. `~` is YAML's none.
"""


def document(properties: Path | None = None) -> str:
    properties = properties or properties_dir()
    out = [INTRO.format(command=COMMAND), "## The run's keys", "",
           f"Whatever the method; the dataclass is {link(Path(inspect.getsourcefile(RunSettings)))}, the values "
           f"{link(properties / 'overall.yaml')} sets are its defaults.", "", key_table(RunSettings, properties), "",
           "## Each method's keys", "", "Each method's keys carry its name as a prefix.", ""]
    for name in REGISTRY:
        out += method_section(name, properties)
    out += ["## The backbones", "",
            "What each backbone's property file sets (our budgeted LightGCN, NGCF and NeuMF; `NCF` is NeuMF).", ""]
    for path in sorted((properties / "model").glob("*.yaml")):
        out += [f"### {path.stem}", "", f"{comments(path)[0]} ({link(path)})", "", file_table(path), ""]
    overall = properties / "overall.yaml"
    out += ["## The protocol: RecBole's keys we set", "",
            f"RecBole's keys whose value {link(overall)} changes, for every run and method (the paper's protocol, "
            "section 4.2). Every other RecBole key keeps RecBole's default.", "",
            file_table(overall, skip=RunSettings.key_names()), "", "## Datasets", ""]
    for path in sorted((properties / "dataset").glob("*.yaml")):
        sets = ", ".join(f"`{key}`: {show(value)}" for key, value in load(path).items())
        out.append(f"- `{path.stem}` ({link(path)}): {comments(path)[0]} Sets {sets}.")
    return "\n".join(out).rstrip("\n") + "\n"


def value_problem(settings, key: str, value, where: str) -> list[str]:
    """A method key set in a profile or backbone file that its dataclass does not have or refuses."""
    if key not in settings.key_names():
        return [f"{where}: {key} is not a key of {settings.__name__}"]
    try:
        settings(**{key: value})
    except ConfigError as error:
        return [f"{where}: {error}"]
    return []


def problems(properties: Path | None = None) -> list[str]:
    """Every place where the dataclasses, their docstrings and the property files disagree (empty: none)."""
    properties = properties or properties_dir()
    found = []
    classes = [("run", RunSettings)] + [(name, cls.settings_class) for name, cls in REGISTRY.items() if cls.settings_class]
    for name, settings in classes:
        documented, stale = meanings(settings)
        found += [f"{settings.__name__}: key {key} has no meaning in its Attributes docstring"
                  for key in settings.key_names() if key not in documented]
        found += [f"{settings.__name__}: the docstring explains {key}, which is no key" for key in stale]
    overall = load(properties / "overall.yaml")
    for f in fields(RunSettings):
        if f.name in overall and RunSettings(**{f.name: overall[f.name]}) != RunSettings():
            found.append(f"overall.yaml: {f.name}: {overall[f.name]!r}, but RunSettings's default is {default(f)!r}")
    for name, settings in classes[1:]:
        path = properties / "method" / f"{name}.yaml"
        given = load(path) if path.is_file() else {}
        keys = settings.key_names()
        found += [f"{path.name}: {key} is not a key of {settings.__name__}" for key in given if key not in keys]
        found += [f"{path.name}: {key} is missing (its dataclass default: {default(f)!r})"
                  for f in fields(settings) if (key := f.name) not in given]
        for f in fields(settings):
            if f.name in given:
                try:
                    same = getattr(settings(**{f.name: given[f.name]}), f.name) == getattr(settings(), f.name)
                except ConfigError as error:
                    same, error_text = False, str(error)
                else:
                    error_text = ""
                if not same:
                    found.append(f"{path.name}: {f.name}: {given[f.name]!r}, but {settings.__name__}'s default is "
                                 f"{default(f)!r} {error_text}".rstrip())
        sources = list(profiles(name, properties).values()) + sorted((properties / "model").glob("*.yaml"))
        for source in sources:
            for key, value in load(source).items():
                if key.startswith(settings.prefix):  # a value given per backbone ({default: 2, NGCF: 3}): each one
                    for entry in (value.values() if per_backbone(value) else [value]):
                        found += value_problem(settings, key, entry, source.relative_to(properties).as_posix())
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 where the doc is stale or the sources disagree")
    parser.add_argument("--out", default=str(DOC), help="the file to write (default: docs/configuration.md)")
    args = parser.parse_args(argv)
    found = problems()
    for problem in found:
        print(f"disagree: {problem}", file=sys.stderr)
    out, text = Path(args.out), document()
    current = out.is_file() and out.read_text() == text
    if args.check:
        print(f"{out}: " + ("current" if current else f"stale: run {COMMAND}"))
        return 0 if current and not found else 1
    if not current:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
    print(f"{out}: {'unchanged' if current else 'written'}")
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
