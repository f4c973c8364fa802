"""The documentation: docs/configuration.md is what the code and properties/ say now, the property files agree with
the settings dataclasses, every link resolves, and the README is a front page whose numbers come from the tables."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bench import config_docs
from recbole_bet.settings import CheckedSettings, integer

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = [README, ROOT / "CHANGELOG.md", ROOT / "bench" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def test_the_configuration_doc_is_what_the_generator_writes_now():
    """A key, default or meaning changed in the code or properties/ without rerunning the generator: fail here."""
    assert (ROOT / "docs" / "configuration.md").read_text() == config_docs.document(), "run: python -m bench.config_docs"


def test_the_property_files_the_dataclasses_and_their_docstrings_agree():
    assert config_docs.problems() == []


def test_a_default_changed_in_one_place_or_a_key_in_one_place_only_is_found(tmp_path):
    properties = tmp_path / "properties"
    shutil.copytree(config_docs.properties_dir(), properties)
    assert config_docs.problems(properties) == []
    pep = properties / "method" / "pep.yaml"
    pep.write_text(pep.read_text().replace("pep_max_epochs: 300", "pep_max_epochs: 200"))
    mde = properties / "method" / "mde.yaml"
    mde.write_text(mde.read_text().replace("mde_alphas:", "mde_betas:"))
    fast = properties / "method" / "bet" / "fast.yaml"
    fast.write_text(fast.read_text() + "bet_iteration: 3\nbet_candidates: 0\n")
    found = "\n".join(config_docs.problems(properties))
    pep_keys, mde_keys, bet_keys = (config_docs.REGISTRY[name].settings_class.__name__ for name in ("pep", "mde", "bet"))
    assert f"pep.yaml: pep_max_epochs: 200, but {pep_keys}'s default is 300" in found
    assert f"mde.yaml: mde_betas is not a key of {mde_keys}" in found
    assert "mde.yaml: mde_alphas is missing" in found
    assert f"bet/fast.yaml: bet_iteration is not a key of {bet_keys}" in found
    assert "bet/fast.yaml: bet_candidates=0; allowed: an integer >= 1" in found


@dataclass(frozen=True)
class Documented(CheckedSettings):
    """Keys of a made-up method.

    Attributes:
        made_a (int): the first key,
            over two lines.
        made_b, made_c (int): two keys at once.
        made_gone (int): a key that no longer exists.
    """

    prefix = "made_"

    made_a: int = field(default=1, metadata=integer(0))
    made_b: int = field(default=2, metadata=integer(0))
    made_c: int = field(default=3, metadata=integer(0))
    made_new: int = field(default=4, metadata=integer(0))


def test_a_key_without_a_meaning_or_a_meaning_without_a_key_is_found():
    found, stale = config_docs.meanings(Documented)
    assert found == {"made_a": ("int", "the first key, over two lines."), "made_b": ("int", "two keys at once."),
                     "made_c": ("int", "two keys at once.")}
    assert stale == ["made_gone"]  # and made_new, a key without a meaning, is missing from found
    assert "**undocumented**" in config_docs.key_table(Documented, config_docs.properties_dir())


def links(doc: Path) -> list[str]:
    return LINK.findall(FENCE.sub("", doc.read_text()))


def anchors(doc: Path) -> set[str]:
    """The anchors GitHub gives ``doc``'s headings (lower case, punctuation dropped, spaces to hyphens, -1 for twins)."""
    seen, found = {}, set()
    for heading in re.findall(r"^#+ (.+)$", FENCE.sub("", doc.read_text()), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.replace("`", "").strip().lower()).replace(" ", "-")
        found.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return found


@pytest.mark.parametrize("doc", DOCS, ids=lambda doc: doc.relative_to(ROOT).as_posix())
def test_every_link_resolves_to_a_file_of_the_repository_and_every_anchor_to_a_heading(doc):
    broken = []
    for target in links(doc):
        if re.match(r"^[a-z]+:", target):
            continue  # https:, mailto:
        path, _, anchor = target.partition("#")
        resolved = (doc.parent / path).resolve() if path else doc
        relative = resolved.relative_to(ROOT).as_posix() if resolved.is_relative_to(ROOT) else str(resolved)
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and resolved.exists() and anchor not in anchors(resolved):
            broken.append(f"{target}: no heading #{anchor} in {relative}")
    assert not broken, f"{doc.relative_to(ROOT)}: " + "; ".join(broken)


def sections(text: str) -> list[str]:
    return re.split(r"^## ", FENCE.sub("", text), flags=re.M)


def test_the_readme_is_a_front_page():
    text = README.read_text()
    assert len(text.splitlines()) <= 250
    prose = FENCE.sub("", text)
    for pattern, what in ((r"\b20\d\d-\d\d-\d\d\b", "a date"), (r"\bp\s*[=<>≤≥]", "a p-value"),
                          (r"\bissue \d+", "an internal reference"), (r"\bitem \d+[a-z]?\b", "an internal reference")):
        found = re.search(pattern, prose, re.I)
        assert not found, f"the README holds {what} ({found[0]!r}): it belongs in docs/ or CHANGELOG.md"
    assert "python3 -m venv .venv && . .venv/bin/activate && pip install torch==2.13.0 && pip install . && " \
           "python run_recbole_bet.py --model=LightGCN --dataset=ml-100k --sparsity=0.9" in text
    assert 'python3 -m venv .venv && . .venv/bin/activate && pip install torch==2.13.0 && pip install ".[test]" && ' \
           "python -m pytest -q tests" in text  # .ci/run runs the README's test command


def test_every_number_in_the_readme_is_in_a_table_its_section_links():
    """A metric or ratio (a number with 3 or 4 decimals) in a section of the README must appear in one of the files
    that section links under bench/results/ or docs/: no number without its dated table."""
    missing = []
    for section in sections(README.read_text()):
        numbers = set(re.findall(r"(?<![\d.])\d\.\d{3,4}(?![\d.])", section))
        files = [(README.parent / target.partition("#")[0]) for target in LINK.findall(section)
                 if target.startswith(("bench/results/", "docs/"))]
        text = "".join(path.read_text() for path in files if path.is_file())
        missing += [f"{number} ({section.splitlines()[0]})" for number in sorted(numbers) if number not in text]
    assert not missing, "numbers in the README that no linked table holds: " + ", ".join(missing)


def markdown_rows(text: str) -> list[dict[str, str]]:
    """The rows of the first Markdown table of ``text``, as ``{column: cell}``."""
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("|"))
    end = next((i for i in range(first, len(lines)) if not lines[i].startswith("|")), len(lines))
    lines = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in lines[first:end]]
    return [dict(zip(lines[0], row)) for row in lines[2:]]


def test_the_readmes_results_table_is_the_headline_of_bench_results():
    """Each README row: BET from scratch (the fast profile), BET plus-fast and BET with the paper's profile where they
    ran, each one's rank among the other methods run at that budget, the best other method, ES and the full table, as
    bench/results/headline.md has them; and every headline row with BET from scratch is there."""
    names = {"power rule": "MDE"}
    others = ("ES", "MR", "power rule", "MDE", "magnitude pruning", "PEP", "OptEmbed", "ESAPN", "CIESS",  # MDE's old label too
              "DSL", "QR", "GraphHash")
    expected = set()
    for row in markdown_rows((ROOT / "bench" / "results" / "headline.md").read_text()):
        if row["BET (scratch)"] in ("", "-"):
            continue
        run = {method: float(row[method].split()[0]) for method in others if row.get(method, "-") not in ("", "-")}
        best = max(run, key=run.get)
        rank = lambda bet: str(1 + sum(value > float(bet.split()[0]) for value in run.values()))  # noqa: E731
        profiles = [row.get(f"BET ({profile})", "-") or "-" for profile in ("plus-fast", "paper")]
        expected.add((row["dataset"], row["model"], row["sparsity"], row["seeds"], row["BET (scratch)"],
                      rank(row["BET (scratch)"]), *(cell for bet in profiles for cell in (bet, "-" if bet == "-" else rank(bet))),
                      f"{names.get(best, best)} {row[best]}", row["ES"], row["full"]))
    section = next(part for part in sections(README.read_text()) if part.startswith("Results"))
    shown = {tuple(row.values()) for row in markdown_rows(section)}
    assert shown == expected, f"only in the README: {sorted(shown - expected)}; only in headline.md: {sorted(expected - shown)}"
