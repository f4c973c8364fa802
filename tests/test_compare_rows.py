"""bench.compare_rows: a re-run's rows beside the rows they replace, paired by file name."""

import json

from bench.compare_rows import main


def result(valid, test, used, seconds=60.0):
    return {"valid": {"ndcg@20": valid}, "test": {"ndcg@20": test, "recall@20": 2 * test}, "used_params": used,
            "budget_params": 1000, "seconds": seconds, "machine": "m"}


def test_pairs_rows_by_name_and_skips_the_unpaired_and_the_unfinished(tmp_path):
    old, new = tmp_path / "old" / "d", tmp_path / "new" / "d"
    old.mkdir(parents=True)
    new.mkdir(parents=True)
    (old / "A-x-0.9-s0.json").write_text(json.dumps(result(0.10, 0.12, 755)))
    (new / "A-x-0.9-s0.json").write_text(json.dumps(result(0.11, 0.13, 1000, 120.0)))
    (new / "A-y-0.9-s0.json").write_text(json.dumps(result(0.2, 0.2, 1000)))  # no old row
    (old / "A-z-0.9-s0.json").write_text(json.dumps(result(0.2, 0.2, 1000)))
    (new / "A-z-0.9-s0.json").write_text(json.dumps({"test": {}}))  # unfinished
    text = main([f"--old={tmp_path / 'old'}", f"--new={tmp_path / 'new'}", "--dataset=d", f"--out={tmp_path}"])
    lines = [line for line in text.splitlines() if line.startswith("| A-")]
    assert lines == ["| A-x-0.9-s0 | 0.1 | 0.11 | 0.12 | 0.13 | +0.0100 | 0.24 | 0.26 | 755 (75.5%) | 1,000 (100.0%) | 1.0 | 2.0 |"]
    assert (tmp_path / "compare-d.md").read_text() == text
