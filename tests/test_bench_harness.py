"""The sweep harness (ray tasks, failures recorded, skip on rerun) and the table generator on fixed inputs."""

import json
from pathlib import Path

import pytest

from bench import sweep, table

from conftest import ROOT


def fake_result(method, seed, ndcg20, sparsity=0.9, model="LightGCN"):
    test = {m: 0.1 for m in table.METRICS}
    test["ndcg@20"] = ndcg20
    return {
        "dataset": "toy", "model": model, "method": method, "sparsity": sparsity, "seed": seed, "test": test,
        "used_params": 100, "budget_params": 100, "seconds": 10.0 + seed,
        "protocol": {"learner": "adam", "learning_rate": 0.01, "train_batch_size": 2048, "epochs": 300,
                     "stopping_step": 20, "valid_metric": "NDCG@20", "split": {"RS": [0.5, 0.25, 0.25]}, "embedding_size": 128},
        # the best score at epoch indices 2 + seed and 3 + seed (a tie: RecBole keeps the later), stopped at 5 + seed
        "curve": [{"epoch": e, "train_loss": 1.0, "valid_score": 0.5 - max(0.0, abs(e - 2.5 - seed) - 0.5) * 0.01}
                  for e in range(6 + seed)],
        "measured": f"2026-11-2{5 + seed} 10:00:00",
    }


BET_SETTINGS = {"bet_iterations": 20, "bet_candidates": 100, "bet_finetune_epochs": 2, "bet_finetune_lr": 0.03,
                "bet_predictor_updates": 2, "bet_retrain_top": 2, "bet_retrain_from": "pretrained", "bet_profile": "fast"}


def test_table_means_ratios_and_paired_t_test(tmp_path):
    values = {"es": [0.30, 0.31, 0.32], "mr": [0.20, 0.21, 0.22], "bet": [0.31, 0.33, 0.35]}
    for method, per_seed in values.items():
        for seed, v in enumerate(per_seed):
            result = fake_result(method, seed, v)
            if method == "bet":
                result["bet"] = {"settings": BET_SETTINGS}
            (tmp_path / f"{method}-{seed}.json").write_text(json.dumps(result))
    (tmp_path / "broken.error.json").write_text("{}")  # failures are not results
    table.main(["--results", str(tmp_path), "--out", str(tmp_path / "out"), "--machine", "a test box"])
    text = (tmp_path / "out" / "table-toy.md").read_text()
    assert "Measured 2026-11-25 to 2026-11-27 on a test box." in text
    assert "BET schedule (profile fast): T=20 iterations, m=100 candidates, h=2" in text and "top-2 retrained from pretrained" in text
    assert "; selection hybrid, predictor deepsets." in text  # Table 2's keys, as recorded (the defaults where absent)
    # best epochs 4, 5, 6 (1-based, the later of each tie) -> 5; stopped at 6, 7, 8 -> 7
    bet_row = next(line for line in text.splitlines() if line.startswith("| 0.9 | bet |"))
    assert bet_row.split("|")[-4].strip() == "5 / 7"
    assert "| 0.9 | bet | 0.1000 ± 0.0000 |" in text
    assert "0.3300 ± 0.0200" in text  # BET's N@20: mean 0.33, sample std 0.02
    assert "| 0.9 | BET ÷ ES | 1.000 | 1.000 | 1.000 | 1.000 | 1.000 | 1.065 |" in text  # 0.33 / 0.31
    assert "BET ÷ best (ES)" in text
    # differences 0.01, 0.02, 0.03: t = 0.02 / (0.01 / sqrt 3) = 3.464 with 2 degrees of freedom: p = 0.0742
    p_row = next(line for line in text.splitlines() if "p, BET vs ES" in line)
    assert p_row.split("|")[-7].strip() == "0.0742"
    assert p_row.split("|")[3].strip() == "n/a"  # no variance in the difference: no test
    assert "lr 0.01, batch 2048" in text and "patience 20" in text
    assert "NeuMF's loss" not in text  # no NeuMF row here
    neumf = [fake_result("full", 0, 0.3, model="NeuMF"), fake_result("full", 0, 0.3, model="NeuMF")]
    neumf[0]["protocol"]["neumf_loss"] = "bpr"  # the second has no record: a result from before the key, BCE
    assert table.protocol_line(neumf).endswith(" NeuMF's loss: BCE and BPR.")
    assert table.protocol_line(neumf[:1]).endswith(" NeuMF's loss: BPR.")
    head = (tmp_path / "out" / "headline.md").read_text().splitlines()
    assert head[2] == "| toy | LightGCN | 0.9 | 3 | - | 0.3100 | 0.2100 | - | - | - | - | - | - | 0.3300 | 1.065 (ES) | 0.074 |  |"
    rows = (tmp_path / "out" / "table-toy.csv").read_text().splitlines()
    assert rows[0].startswith("dataset,model,method,sparsity,seeds") and len(rows) == 1 + 3


def test_table_names_the_machine_the_runs_recorded():
    runs = [dict(fake_result("es", seed, 0.3), machine="box A") for seed in (0, 1)]
    text, _ = table.dataset_tables("toy", runs, machine="the machine making the table")
    assert "Measured 2026-11-25 to 2026-11-26 on box A." in text


def test_a_row_key_is_its_method_and_variant_tag_and_sorts_each_variant_after_its_method():
    assert table.split_key("bet-scratch") == ("bet", "scratch") and table.split_key("pep") == ("pep", "")
    assert table.label("bet-scratch") == "BET (scratch)" and table.label("pep") == "PEP"
    keys = ["bet-scratch", "pep-pretrained", "bet", "es", "pep"]
    assert sorted(keys, key=table.order) == ["es", "pep", "pep-pretrained", "bet", "bet-scratch"]
    assert table.bet_rows(keys) == ["bet", "bet-scratch"]
    # a tag may hold '-' (a profile's name): only the first '-' separates the method
    assert table.split_key(table.row_key("bet", "plus-fast")) == ("bet", "plus-fast")
    assert table.label("bet-plus-fast") == "BET (plus-fast)"
    assert table.bet_rows(["bet-plus-fast", "bet", "es"]) == ["bet", "bet-plus-fast"]


def test_paired_p_needs_two_pairs():
    one = table.summary({0: fake_result("bet", 0, 0.3)})
    assert table.paired_p(one, one, "ndcg@20") is None


@pytest.mark.slow
def test_sweep_runs_ray_tasks_records_failures_and_skips_finished_runs(tmp_path, capsys):
    out = tmp_path / "sweep"
    args = [
        "--dataset=ml-100k", "--models=LightGCN", "--methods=es", "--sparsities=0.9,0.999", "--seeds=0", "--baselines=Pop",
        f"--out={out}", "--keys=--epochs=1 --state=WARNING", "--num_cpus=2",
    ]
    assert sweep.main(args) == 1  # sparsity 0.999 cannot give every row a dimension: that run fails
    done = out / "ml-100k" / "LightGCN-es-0.9-s0.json"
    failed = out / "ml-100k" / "LightGCN-es-0.999-s0.error.json"
    assert sweep.is_complete(done) and json.loads(done.read_text())["used_params"] == 33600
    reference = out / "ml-100k" / "Pop-recbole-0.0-s0.json"  # RecBole's own model: no budget, no sparsity passed
    assert sweep.is_complete(reference) and json.loads(reference.read_text())["method"] == "recbole"
    error = json.loads(failed.read_text())
    assert error["status"] == "failed" and "every row needs at least 1" in error["stderr"]
    first_mtime = done.stat().st_mtime
    capsys.readouterr()

    assert sweep.main(args) == 1  # the failure is retried, the finished run is not
    assert "3 runs, 2 already complete, 1 to run" in capsys.readouterr().out
    assert done.stat().st_mtime == first_mtime


def test_plan_adds_reference_rows_and_one_full_table_per_seed():
    class Args:
        dataset, models, methods, sparsities, seeds, baselines = "ml-100k", "LightGCN,NGCF", "full,es", "0.8,0.9", "0,1", "BPR,Pop"

    runs = sweep.plan(Args)
    names = sorted(r.name for r in runs)
    assert sum(r.method == "full" for r in runs) == 2 * 2  # models x seeds, not x sparsities
    Args.sparsities = "0.9,0.8"  # another order of the same budgets: the same full runs
    assert sorted(r.name for r in sweep.plan(Args)) == names
    assert sum(r.method == "es" for r in runs) == 2 * 2 * 2
    assert "BPR-recbole-0.0-s1" in names and "Pop-recbole-0.0-s0" in names
    assert str(runs[0].result_file(ROOT)).endswith(f"ml-100k/{runs[0].name}.json")


def test_plots_from_fixed_results(tmp_path):
    """Quality, search and curve plots are drawn from result JSONs alone (no exported tables here)."""
    import matplotlib.image

    from bench import plots

    for method in ("full", "es", "mr", "bet"):
        result = fake_result(method, 0, 0.3)
        if method == "bet":
            result["search"] = [{"t": t, "strategy": "I" if t < 3 else "II", "measured": 0.8 + 0.01 * t, "predictor_loss": 0.1 / (t + 1)}
                                for t in range(5)]
        (tmp_path / f"{method}.json").write_text(json.dumps(result))
    (tmp_path / "pop.json").write_text(json.dumps(dict(fake_result("recbole", 0, 0.2, sparsity=0.0), model="Pop")))
    # a backbone with only its full table: nothing to plot against sparsity, so no quality plot
    (tmp_path / "neumf.json").write_text(json.dumps(fake_result("full", 0, 0.2, sparsity=0.0, model="NeuMF")))
    plots.main(["--results", str(tmp_path), "--out", str(tmp_path / "out")])
    written = sorted(p.name for p in (tmp_path / "out").glob("*.png"))
    assert written == ["curves-toy-LightGCN-0.9.png", "curves-toy-recbole.png", "quality-toy-LightGCN.png", "search-toy-LightGCN-0.9.png"]
    assert matplotlib.image.imread(tmp_path / "out" / "curves-toy-LightGCN-0.9.png").shape[:2] == (440, 770)
    # --variant: BET's runs in another folder are a line of their own in the quality plot (not mixed with BET's), and
    # a backbone that only a variant ran beside its full table gets one (here NeuMF)
    scratch = tmp_path.with_name(tmp_path.name + "-scratch")  # beside the results folder, not inside it
    scratch.mkdir()
    (scratch / "bet.json").write_text(json.dumps(fake_result("bet", 0, 0.25)))
    (scratch / "neumf-bet.json").write_text(json.dumps(fake_result("bet", 0, 0.25, model="NeuMF")))
    plots.main(["--results", str(tmp_path), "--out", str(tmp_path / "out2"), "--variant", f"scratch={scratch}"])
    assert sorted(p.name for p in (tmp_path / "out2").glob("quality-*.png")) == ["quality-toy-LightGCN.png", "quality-toy-NeuMF.png"]
    # ... and in the curve plots, where a budget that only a variant ran also gets one (NeuMF at 0.9)
    assert sorted(p.name for p in (tmp_path / "out2").glob("curves-*.png")) == [
        "curves-toy-LightGCN-0.9.png", "curves-toy-NeuMF-0.9.png", "curves-toy-recbole.png"]
    results = table.load(tmp_path) + table.load(scratch, "scratch")
    drawn = plots.plot_quality([r for r in results if r["model"] == "LightGCN"], tmp_path / "q.png", "toy")
    assert drawn == ["ES", "MR", "BET", "BET (scratch)"]
    pep = dict(fake_result("pep", 0, 0.3), curve=[])  # a run without a curve draws no line
    runs = {"bet-scratch": results[-1], "es": results[0], "pep": pep, "LightGCN": results[0]}
    assert plots.plot_curves(runs, tmp_path / "c.png", "toy") == ["BET (scratch)", "ES", "LightGCN"]
    with pytest.raises(SystemExit):
        plots.main(["--results", str(tmp_path), "--out", str(tmp_path / "out2"), "--variant", str(scratch)])


def test_table_compares_bet_with_the_best_of_every_baseline_and_reports_bytes_and_cost(tmp_path):
    values = {"full": [0.40, 0.40], "es": [0.30, 0.31], "pep": [0.34, 0.36], "optembed": [0.20, 0.21], "bet": [0.33, 0.35]}
    for method, per_seed in values.items():
        for seed, v in enumerate(per_seed):
            result = fake_result(method, seed, v, sparsity=0.0 if method == "full" else 0.9)
            result["export"] = {"bytes": {"pep": 700}.get(method, 500)}
            result["seconds"] = {"full": 600.0, "pep": 2400.0}.get(method, 1200.0)
            result["test"]["recall@20"] = {"optembed": 0.2}.get(method, 0.1)  # OptEmbed: the best R@20, not N@20
            if method == "bet":
                result["bet"] = {"settings": BET_SETTINGS}
            (tmp_path / f"{method}-{seed}.json").write_text(json.dumps(result))
    table.main(["--results", str(tmp_path), "--out", str(tmp_path / "out"), "--machine", "a test box"])
    text = (tmp_path / "out" / "table-toy.md").read_text()
    assert "BET ÷ best (PEP)" in text and "p, BET vs PEP" in text  # 0.35 mean beats ES's 0.305
    pep_row = next(line for line in text.splitlines() if line.startswith("| 0.9 | pep |")).split("|")
    assert [c.strip() for c in pep_row[-6:-1]] == ["100 / 100", "700", pep_row[-4].strip(), "2400", "4.0"]
    head = (tmp_path / "out" / "headline.md").read_text().splitlines()
    assert head[2].endswith("| 0.3400 | 0.971 (PEP) | n/a |  |")  # BET loses to PEP here, and says so
    assert "| 0.2050 |" in head[2]  # OptEmbed's column
    compact = (tmp_path / "out" / "methods-toy-LightGCN.md").read_text().splitlines()
    # epochs: best at 4 and 5 (1-based), stopped at 6 and 7, means rounded half to even
    assert compact[2] == "| 0 | full | - | 2 | 0.4000 ± 0.0000 | 0.1000 ± 0.0000 | 4 / 6 | 500 | 10 | 1.0 | - |"
    # the best N@20 and the best R@20 of the budget in bold, each on its own method; the profile where a method has one
    # the wall time over OptEmbed's at the same budget (PEP's 2400 s against OptEmbed's 1200 s)
    assert "| 0.9 | PEP | - | 2 | **0.3500 ± 0.0141** | 0.1000 ± 0.0000 | 4 / 6 | 700 | 40 | 4.0 | 2.00 |" in compact
    assert "| 0.9 | OptEmbed | - | 2 | 0.2050 ± 0.0071 | **0.2000 ± 0.0000** | 4 / 6 | 500 | 20 | 2.0 | 1.00 |" in compact
    assert "| 0.9 | BET | fast | 2 | 0.3400 ± 0.0141 | 0.1000 ± 0.0000 |" in "\n".join(compact)


def test_sweep_passes_a_method_key_to_that_method_only():
    keys = ["--bet_profile=fast", "--epochs=5", "--mde_alphas=[0.1]", "--pep_max_epochs=3"]
    assert sweep.keys_for("es", keys) == ["--epochs=5"]
    assert sweep.keys_for("bet", keys) == ["--bet_profile=fast", "--epochs=5"]
    assert sweep.keys_for("mde", keys) == ["--epochs=5", "--mde_alphas=[0.1]"]
    run = sweep.Run("ml-100k", "LightGCN", "pep", 0.9, 0)
    assert "--pep_max_epochs=3" in run.command(sweep.DEFAULT_OUT, "data", keys) and "--bet_profile=fast" not in run.command(sweep.DEFAULT_OUT, "data", keys)


def test_whole_run_of_several_budgets_sums_the_budgets_and_sits_them_beside_the_separate_runs(tmp_path, monkeypatch):
    from bench import common, whole_run

    monkeypatch.setattr(whole_run, "RESULTS", tmp_path)
    monkeypatch.setattr(common, "RESULTS", tmp_path)
    sweep_dir = tmp_path / "sweep" / "toy"
    sweep_dir.mkdir(parents=True)
    for seed, values in enumerate([(0.30, 0.20), (0.32, 0.24)]):  # separate runs: 0.8 spans 0.30-0.32, 0.9 0.20-0.24
        for sparsity, ndcg in zip((0.8, 0.9), values):
            (sweep_dir / f"LightGCN-bet-{sparsity}-s{seed}.json").write_text(json.dumps({"test": {"ndcg@20": ndcg}}))

    def fake_run(name, keys, seed, args, sparsity=None):
        if name == "full":
            return [dict(fake_result("full", 0, 0.3), seconds=100.0)]
        bet = {"seconds": {"pretrain": 50.0, "search": 20.0, "retrain": 30.0}}
        # one run of both budgets: 0.8 holds the pretraining (200 s), 0.9 does not (100 s): 3x the full table
        return [dict(fake_result("bet", seed, 0.31, 0.8), seconds=200.0, bet=bet),
                dict(fake_result("bet", seed, 0.25, 0.9), seconds=100.0, bet=dict(bet, seconds=dict(bet["seconds"], pretrain=0.0)))]

    monkeypatch.setattr(whole_run, "run", fake_run)
    whole_run.main(["--dataset=toy", "--sparsity=0.8,0.9", "--profiles=fast", "--seeds=0,1"])
    text = (tmp_path / "whole_run-toy-0.8-0.9.md").read_text()
    assert "| BET, profile fast | 300 | 3.00 | 50 / 40 / 60 | 0.1000 / 0.1000 | 0.3100 / 0.2500 |" in text
    assert "| 0.8 | BET, profile fast | 0.3100 | 0.3100 ± 0.0141 (0.3000-0.3200, 2 seeds) | yes |" in text
    assert "| 0.9 | BET, profile fast | 0.2500 | 0.2200 ± 0.0283 (0.2000-0.2400, 2 seeds) | above |" in text


def test_paper_ratios_compare_like_with_like_and_read_the_misprints_as_meant(tmp_path):
    from bench import paper_ratios

    paper = tmp_path / "table1.csv"
    paper.write_text(
        "dataset,model,method,sparsity,R@5,N@5,R@20,N@20\n"
        "gowalla,NGCF,ES,95%,0.1,0.1,0.1,0.0800\n"
        "gowalla,NGCF,CIESS,95%,0.1,0.1,0.1,0.1100\n"
        "gowalla,NGCF,BET,95%,0.1,0.1,0.1,0.9980\n"      # misprinted: 0.0998
        "gowalla,NGCF,p-value,95%,0.01,0.01,0.01,0.01\n"
    )
    cells, notes = paper_ratios.read_paper(paper)
    assert cells[("gowalla", "NGCF", "BET", 0.95)]["N@20"] == 0.0998 and len(notes) == 1
    folder = tmp_path / "sweep"
    folder.mkdir()
    ours = {"es": [0.10, 0.12], "ciess": [0.13, 0.13], "optembed": [0.20, 0.20], "bet": [0.12, 0.14]}
    for method, values in ours.items():
        for seed, value in enumerate(values):
            r = dict(fake_result(method, seed, value, 0.95, "NGCF"), dataset="gowalla-s")
            (folder / f"{method}-{seed}.json").write_text(json.dumps(r))
    rows = paper_ratios.rows_for(cells, table.group(table.load(folder)), "N@20")
    assert len(rows) == 1
    row = rows[0]
    assert row[3] == f"{0.0998 / 0.08:.3f}" and row[4] == f"{0.13 / 0.11:.3f}" and row[5] == "agree"
    # paper: BET below CIESS (0.0998 < 0.11); ours: BET 0.13 = CIESS 0.13 -> on neither side: they disagree
    assert row[6].startswith(f"{0.0998 / 0.11:.3f} (CIESS)") and row[7].startswith("1.000 (CIESS") and row[8] == "disagree"
    assert row[9] == f"{0.13 / 0.20:.3f} (OptEmbed)"  # over every baseline, OptEmbed (not run by the paper at budget)

    # --bet_results: BET's runs from another folder (retrained from scratch) replace the sweep's BET
    scratch = tmp_path.with_name(tmp_path.name + "-scratch")  # beside the results folder, not inside it
    scratch.mkdir()
    for seed, value in enumerate([0.09, 0.09]):
        (scratch / f"bet-{seed}.json").write_text(json.dumps(dict(fake_result("bet", seed, value, 0.95, "NGCF"), dataset="gowalla-s")))
    (scratch / "es-0.json").write_text(json.dumps(dict(fake_result("es", 0, 0.5, 0.95, "NGCF"), dataset="gowalla-s")))  # not BET: ignored
    paper_ratios.main(["--results", str(folder), "--bet_results", str(scratch), "--paper", str(paper), "--out", str(tmp_path / "out")])
    text = (tmp_path / "out" / "paper-ratios.md").read_text()
    assert f"| {0.09 / 0.11:.3f} | disagree |" in text  # ours BET ÷ ES now 0.09 / 0.11, below 1 where the paper is above
    assert "--bet_results=" in text

    # a run on the paper's own full dataset is a row of its own beside the subsample's, read against the same cells
    full = tmp_path / "full"
    full.mkdir()
    for method, value in (("es", 0.10), ("bet", 0.12)):
        (full / f"{method}.json").write_text(json.dumps(dict(fake_result(method, 0, value, 0.95, "NGCF"), dataset="gowalla")))
    rows = paper_ratios.rows_for(cells, table.group(table.load(full)), "N@20")
    assert [r[0] for r in rows] == ["gowalla (gowalla)"] and rows[0][3] == f"{0.0998 / 0.08:.3f}" and rows[0][4] == "1.200"


@pytest.mark.slow
def test_sensitivity_retraining_the_whole_population_gives_the_run_itself(tmp_path, monkeypatch):
    """Figure 5's point at t = T is the run's own selective retraining: the same winner and test metrics."""
    from bench import common, sensitivity

    monkeypatch.setattr(sensitivity, "OUT", tmp_path / "runs")
    monkeypatch.setattr(sensitivity, "RESULTS", tmp_path)
    monkeypatch.setattr(common, "SCRATCH", tmp_path / "scratch")
    keys = "--epochs=2 --bet_iterations=4 --bet_finetune_epochs=1 --bet_retrain_top=2 --state=WARNING"
    sensitivity.main(["--dataset=ml-100k", "--sparsity=0.9", "--seed=3", "--candidates=4,6", "--every=2", f"--keys={keys}"])
    run = json.loads((tmp_path / "runs" / "ml-100k-0.9-s3-m6.json").read_text())
    whole = json.loads((tmp_path / "runs" / "ml-100k-0.9-s3-m6-t4.json").read_text())
    assert whole["test"] == run["test"]
    assert (tmp_path / "runs" / "ml-100k-0.9-s3-m6-t2.json").is_file() and (tmp_path / "sensitivity-ml-100k-0.9.png").stat().st_size > 0
    text = (tmp_path / "sensitivity-ml-100k-0.9.md").read_text()
    assert "| 4 |" in text and "| 6 |" in text


def test_table_variant_folder_gives_its_own_rows_and_comparisons(tmp_path):
    """--variant=scratch=FOLDER: BET's runs there are the row "bet-scratch", compared with the best baseline on their own,
    and never mixed with the plain BET's runs of the same seeds."""
    main, variant = tmp_path / "main", tmp_path / "scratch"
    main.mkdir(), variant.mkdir()
    for seed, (es, bet, scratch) in enumerate([(0.30, 0.33, 0.29), (0.31, 0.35, 0.30)]):
        (main / f"es-{seed}.json").write_text(json.dumps(fake_result("es", seed, es)))
        (main / f"bet-{seed}.json").write_text(json.dumps(fake_result("bet", seed, bet)))
        (variant / f"bet-{seed}.json").write_text(json.dumps(fake_result("bet", seed, scratch)))
    (main / "recbole.json").write_text(json.dumps(fake_result("recbole", 0, 0.2, sparsity=0.0)))  # RecBole's LightGCN
    out = tmp_path / "out"
    table.main(["--results", str(main), "--variant", f"scratch={variant}", "--out", str(out), "--machine", "a box"])
    text = (out / "table-toy.md").read_text()
    assert "| 0.9 | bet | 0.1000 ± 0.0000 | 0.1000 ± 0.0000 | 0.1000 ± 0.0000 | 0.1000 ± 0.0000 | 0.1000 ± 0.0000 | 0.3400 ± 0.0141 |" in text
    assert "| 0.9 | bet-scratch | 0.1000 ± 0.0000 | 0.1000 ± 0.0000 | 0.1000 ± 0.0000 | 0.1000 ± 0.0000 | 0.1000 ± 0.0000 | 0.2950 ± 0.0071 |" in text
    assert "| 0.9 | BET ÷ best (ES) | 1.000 | 1.000 | 1.000 | 1.000 | 1.000 | 1.115 |" in text  # 0.34 / 0.305
    assert "| 0.9 | BET (scratch) ÷ best (ES) | 1.000 | 1.000 | 1.000 | 1.000 | 1.000 | 0.967 |" in text  # 0.295 / 0.305
    # the variant against BET as it is (the ablation's question); plain BET is not compared with itself
    assert "| 0.9 | BET (scratch) ÷ BET | 1.000 | 1.000 | 1.000 | 1.000 | 1.000 | 0.868 |" in text  # 0.295 / 0.34
    assert "| 0.9 | p, BET (scratch) vs BET | n/a | n/a | n/a | n/a | n/a | 0.0704 |" in text  # differences -0.04, -0.05
    assert "BET ÷ BET" not in text and "p, BET vs BET" not in text
    head = (out / "headline.md").read_text().splitlines()
    assert "| BET | BET (scratch) | BET ÷ best | p (N@20) | BET (scratch) ÷ best | p (N@20) |" in head[0]
    assert "| 0.3400 | 0.2950 | 1.115 (ES) | 0.090 | 0.967 (ES) | n/a |" in head[2]  # scratch: equal differences, no test
    compact = (out / "methods-toy-LightGCN.md").read_text() if (out / "methods-toy-LightGCN.md").exists() else ""
    assert compact == ""  # only ES and BET ran (and RecBole's own model, no method): no every-method table
    with pytest.raises(SystemExit):
        table.main(["--results", str(main), "--variant", str(variant), "--out", str(out)])


def test_compare_table_ranks_each_method_under_both_starts_on_the_seeds_both_ran(tmp_path, capsys):
    """--compare=pretrained --headline_variant=scratch: every method's pretrained-start row beside its headline row
    (BET's is BET from scratch, not the warm-started sweep row), ranked on the seeds both ran; the ranks show which
    conclusions change."""
    main, scratch, pretrained = tmp_path / "main", tmp_path / "scratch", tmp_path / "pretrained"
    for folder in (main, scratch, pretrained):
        folder.mkdir()
    headline = {"es": [0.30, 0.32, 0.90], "optembed": [0.35, 0.35], "bet": [0.40, 0.40]}  # ES's seed 2 has no pair
    for method, values in headline.items():
        for seed, v in enumerate(values):
            (main / f"{method}-{seed}.json").write_text(json.dumps(fake_result(method, seed, v)))
    for seed, v in enumerate([0.33, 0.33]):
        (scratch / f"bet-{seed}.json").write_text(json.dumps(fake_result("bet", seed, v)))
    for seed in (0, 1):  # a backbone and a dataset the pretrained variant did not run on: no tables of them here
        for method in ("es", "pep"):
            (main / f"ngcf-{method}-{seed}.json").write_text(json.dumps(fake_result(method, seed, 0.2, model="NGCF")))
            (main / f"other-{method}-{seed}.json").write_text(json.dumps(dict(fake_result(method, seed, 0.2), dataset="other")))
    for method, values in {"es": [0.31, 0.31], "optembed": [0.34, 0.36], "bet": [0.36, 0.37]}.items():
        for seed, v in enumerate(values):
            (pretrained / f"{method}-{seed}.json").write_text(json.dumps(fake_result(method, seed, v)))
    out = tmp_path / "out"
    args = ["--results", str(main), "--variant", f"scratch={scratch}", "--variant", f"pretrained={pretrained}",
            "--out", str(out), "--machine", "a box"]
    table.main(args + ["--compare", "pretrained", "--headline_variant", "scratch"])
    rows = (out / "compare-pretrained-toy-LightGCN.md").read_text().splitlines()
    assert rows[0].startswith("| sparsity | method | seeds | N@20, headline | rank | N@20, pretrained | rank |")
    # ES on seeds 0 and 1 only (mean 0.31, not 0.51 with its unpaired seed): third under both starts
    assert rows[2] == "| 0.9 | ES | 2 | 0.3100 ± 0.0141 | 3 | 0.3100 ± 0.0000 | 3 | 1.000 | 1.000 |"  # differences +0.01, -0.01
    # OptEmbed first from its own start, second from the pretrained table; BET (scratch) the other way round
    assert rows[3] == "| 0.9 | OptEmbed | 2 | 0.3500 ± 0.0000 | 1 | 0.3500 ± 0.0141 | 2 | 1.000 | 1.000 |"
    assert rows[4] == "| 0.9 | BET (scratch) | 2 | 0.3300 ± 0.0000 | 2 | 0.3650 ± 0.0071 | 1 | 1.106 | 0.090 |"  # differences 0.03, 0.04
    assert len(rows) == 5
    assert sorted(path.name for path in out.iterdir()) == [
        "compare-pretrained-toy-LightGCN.md", "headline.md", "layouts-toy-LightGCN.md", "methods-toy-LightGCN.md", "table-toy.csv", "table-toy.md"]
    assert "NGCF" not in (out / "table-toy.md").read_text()
    capsys.readouterr()
    with pytest.raises(SystemExit):  # refused before any table is written
        table.main(args[:-4] + ["--out", str(tmp_path / "refused"), "--machine", "a box", "--compare", "pretrainde"])
    assert not (tmp_path / "refused").exists()
    assert "--compare='pretrainde': no --variant has that tag; tags given: ['pretrained', 'scratch']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        table.main(args + ["--headline_variant", "scratch"])
    assert "needs --compare=TAG" in capsys.readouterr().err


def test_evaluation_benchmark_writes_its_table_to_out_and_refuses_an_empty_batch(tmp_path, capsys, monkeypatch):
    """bench.evaluation (which bench/gpu_check.sh runs on a GPU): RecBole's batch as given, every path with RecBole's
    metrics, the table in --out (not bench/results), and a bad --recbole_users refused before any data is read."""
    from bench import common, evaluation

    monkeypatch.setattr(common, "SCRATCH", tmp_path / "scratch")
    with pytest.raises(SystemExit):
        evaluation.main(["--dataset=ml-100k", "--recbole_users=0", f"--out={tmp_path}"])
    assert "--recbole_users=0; allowed: 1 or more users a batch" in capsys.readouterr().err
    evaluation.main(["--dataset=ml-100k", "--repeats=1", "--recbole_users=3", "--ours=1048576", f"--out={tmp_path}"])
    rows = [line for line in (tmp_path / "evaluation-ml-100k.md").read_text().splitlines() if line.startswith("| ")]
    assert [row.split(" | ")[2] for row in rows if "RecBole LightGCN" in row] == ["3"] * 4
    assert sum(row.endswith("| identical |") for row in rows) == 6 and not any("DIFFERENT" in row for row in rows)


def test_readme_tables_fills_each_marked_block_from_its_file_and_nothing_else(tmp_path, capsys):
    from bench import readme_tables

    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "a.md").write_text("| x |\n|---|\n| 1 |\n")
    (tmp_path / "results" / "b.md").write_text("| y |\n|---|\n| 2 |\n")
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- table: results/a.md -->\n| x |\n|---|\n| old |\n<!-- /table -->\nmiddle | kept\n"
                      "<!-- table: results/b.md -->\n<!-- /table -->\nend\n")
    assert readme_tables.main(["--readme", str(readme), "--check"]) == 1  # a's table is stale, b's is empty
    assert readme_tables.main(["--readme", str(readme)]) == 0
    assert readme.read_text() == ("intro\n<!-- table: results/a.md -->\n| x |\n|---|\n| 1 |\n<!-- /table -->\nmiddle | kept\n"
                                  "<!-- table: results/b.md -->\n| y |\n|---|\n| 2 |\n<!-- /table -->\nend\n")
    assert readme_tables.main(["--readme", str(readme), "--check"]) == 0
    assert readme_tables.main(["--readme", str(readme)]) == 0 and "unchanged" in capsys.readouterr().out
    # bad markers: one-line errors naming the line and the file, and the README is left as it was
    kept = readme.read_text()
    for text, message in (("<!-- table: results/none.md -->\n<!-- /table -->\n", "line 1: results/none.md does not exist"),
                          ("x\n<!-- table: results/a.md -->\n| 1 |\n", "line 2: the table from results/a.md has no <!-- /table -->"),
                          ("<!-- table: results/a.md -->\n<!-- table: results/b.md -->\n<!-- /table -->\n", "line 1: the table from results/a.md has no"),
                          ("<!-- /table -->\n", "line 1: <!-- /table --> without")):
        bad = tmp_path / "BAD.md"
        bad.write_text(text)
        with pytest.raises(SystemExit):
            readme_tables.main(["--readme", str(bad)])
        assert message in capsys.readouterr().err and bad.read_text() == text
    assert readme.read_text() == kept


def test_readme_tables_takes_one_table_of_a_file_and_dates_it(tmp_path, capsys):
    """part=N fills the file's N-th table only; date=FILE puts first a line that links the source and quotes FILE's
    "Measured ..." line. A part the file lacks, a date line it lacks or an unknown option is a one-line error."""
    from bench import readme_tables

    results = tmp_path / "results"
    results.mkdir()
    (results / "t.md").write_text("# t\n\nMeasured 2026-12-01 on 2 cores (X).\n\n| a |\n|---|\n| 1 |\n\ntext\n| b |\n|---|\n| 2 |\n")
    (results / "m.md").write_text("| c |\n|---|\n| 3 |\n")
    doc = tmp_path / "docs" / "r.md"
    doc.parent.mkdir()
    doc.write_text("x\n<!-- table: ../results/t.md part=2 -->\n<!-- /table -->\n"
                   "<!-- table: ../results/m.md date=../results/t.md -->\n<!-- /table -->\n")
    assert readme_tables.main(["--doc", str(doc)]) == 0
    assert doc.read_text() == (
        "x\n<!-- table: ../results/t.md part=2 -->\n| b |\n|---|\n| 2 |\n<!-- /table -->\n"
        "<!-- table: ../results/m.md date=../results/t.md -->\n"
        "From [results/m.md](../results/m.md); measured 2026-12-01 on 2 cores (X) ([results/t.md](../results/t.md)).\n\n"
        "| c |\n|---|\n| 3 |\n<!-- /table -->\n")
    assert readme_tables.main(["--doc", str(doc), "--check"]) == 0
    (results / "t.md").write_text("Measured 2026-12-02 on 2 cores (X).\n\n| a |\n|---|\n| 1 |\n\n| b |\n|---|\n| 9 |\n")
    assert readme_tables.main(["--doc", str(doc), "--check"]) == 1  # the table and the date both changed
    for marker, message in (("../results/t.md part=3", "part=3; allowed: 1 to 2"),
                            ("../results/t.md part=0", "part=0; allowed: 1 to 2"),
                            ("../results/m.md date=../results/m.md", "m.md has no 'Measured ...' line"),
                            ("../results/m.md date=../results/none.md", "date=../results/none.md does not exist"),
                            ("../results/m.md size=2", "unknown option 'size'")):
        bad = tmp_path / "docs" / "bad.md"
        bad.write_text(f"<!-- table: {marker} -->\n<!-- /table -->\n")
        with pytest.raises(SystemExit):
            readme_tables.main(["--doc", str(bad)])
        assert message in capsys.readouterr().err


def test_the_results_docs_tables_are_the_committed_result_files():
    """A results file regenerated without `python -m bench.readme_tables` leaves docs/results.md behind: fail here."""
    from bench import readme_tables

    doc = Path(__file__).resolve().parents[1] / "docs" / "results.md"
    filled, paths = readme_tables.fill(doc.read_text(), doc.parent)
    assert len(paths) >= 10 and filled == doc.read_text(), "run: python -m bench.readme_tables"


def test_layouts_table_gives_the_user_share_and_width_spread_over_seeds():
    def with_sizes(method, seed, users, items, layout="prefix"):
        result = dict(fake_result(method, seed, 0.3), n_users=10, n_items=30)
        result["sizes"] = {"layout": layout, "users": users, "items": items}
        return result

    field = lambda lo, hi, mean: {"min": lo, "max": hi, "mean": mean, "median": mean}  # noqa: E731
    shared = lambda buckets, params: {"partitions": [{"buckets": b} for b in buckets], "params": params}  # noqa: E731
    results = [with_sizes("optembed", 0, field(42, 42, 42.0), field(1, 1, 1.0)),  # 420 / (420 + 30)
               with_sizes("optembed", 1, field(40, 44, 42.0), field(1, 2, 1.5)),  # 420 / (420 + 45)
               with_sizes("qr", 0, shared([11, 479], 300), shared([20, 30], 100), layout="shared"),
               dict(fake_result("recbole", 0, 0.2), sizes={})]
    lines = table.layouts_table(results, "toy", "LightGCN").splitlines()
    share = (420 / 450 + 420 / 465) / 2
    assert lines[2] == "| 0.9 | QR | 1 | 0.75 | 490 buckets | 50 buckets |"
    assert lines[3] == f"| 0.9 | OptEmbed | 2 | {share:.2f} | 40-44 (42.0) | 1-2 (1.2) |"
    assert len(lines) == 4  # RecBole's own model: no layout row


def test_table_rerun_replaces_a_cell_only_where_every_seed_was_re_run(tmp_path, capsys):
    """--rerun=FOLDER: a cell whose every seed was re-run shows the new runs (and says so); a cell re-run on some of its
    seeds keeps the old ones, so that a mean never mixes a method before and after a fix."""
    old, new, out = tmp_path / "sweep", tmp_path / "sweep-v2", tmp_path / "out"
    old.mkdir(), new.mkdir()
    for seed in (0, 1):
        (old / f"es-{seed}.json").write_text(json.dumps(fake_result("es", seed, 0.30)))
        (old / f"optembed-0.8-{seed}.json").write_text(json.dumps(fake_result("optembed", seed, 0.20, sparsity=0.8)))
        (new / f"optembed-0.8-{seed}.json").write_text(json.dumps(fake_result("optembed", seed, 0.40, sparsity=0.8)))
        (old / f"optembed-0.9-{seed}.json").write_text(json.dumps(fake_result("optembed", seed, 0.20)))
    (new / "optembed-0.9-0.json").write_text(json.dumps(fake_result("optembed", 0, 0.50)))  # seed 1 not re-run
    table.main(["--results", str(old), "--rerun", str(new), "--out", str(out), "--machine", "a box"])
    text = (out / "table-toy.md").read_text()
    assert "| 0.8 | optembed | 0.1000 ± 0.0000 | 0.1000 ± 0.0000 | 0.1000 ± 0.0000 | 0.1000 ± 0.0000 | 0.1000 ± 0.0000 | 0.4000 ± 0.0000 |" in text
    assert "| 0.9 | optembed | 0.1000 ± 0.0000 | 0.1000 ± 0.0000 | 0.1000 ± 0.0000 | 0.1000 ± 0.0000 | 0.1000 ± 0.0000 | 0.2000 ± 0.0000 |" in text
    assert "Re-run after a fix, in place of the sweep's rows (which stay in the history): LightGCN OptEmbed 0.8." in text
    printed = capsys.readouterr().out
    assert "toy LightGCN OptEmbed 0.8: replaced" in printed
    assert "toy LightGCN OptEmbed 0.9: kept, seeds [0] of [0, 1] re-run" in printed
    head = (out / "headline.md").read_text().splitlines()
    row = next(line for line in head if "| 0.8 |" in line).split("|")
    assert row[head[0].split("|").index(" OptEmbed ")].strip() == "0.4000"  # the headline has the re-run row too
    with pytest.raises(SystemExit):
        table.main(["--results", str(old), "--rerun", str(tmp_path / "nowhere"), "--out", str(out)])


def test_headline_names_the_seeds_of_a_method_run_on_fewer_and_sets_it_against_the_best_on_those_seeds(tmp_path):
    """A BET variant run on seed 0 only, beside baselines on seeds 0-2: its cell says "(seed 0)" and its ratio to the
    best baseline is over seed 0 (not its one seed against their three-seed mean), and says so."""
    main, paper, out = tmp_path / "main", tmp_path / "paper", tmp_path / "out"
    main.mkdir(), paper.mkdir()
    for seed, (es, optembed) in enumerate([(0.30, 0.40), (0.31, 0.50), (0.32, 0.60)]):
        (main / f"es-{seed}.json").write_text(json.dumps(fake_result("es", seed, es)))
        (main / f"optembed-{seed}.json").write_text(json.dumps(fake_result("optembed", seed, optembed)))
        (main / f"bet-{seed}.json").write_text(json.dumps(fake_result("bet", seed, 0.45)))
    (paper / "bet-0.json").write_text(json.dumps(fake_result("bet", 0, 0.44)))
    table.main(["--results", str(main), "--variant", f"paper={paper}", "--out", str(out), "--machine", "a box"])
    head = (out / "headline.md").read_text().splitlines()
    row = dict(zip([c.strip() for c in head[0].strip("|").split("|")], [c.strip() for c in head[2].strip("|").split("|")]))
    assert row["seeds"] == "3" and row["BET (paper)"] == "0.4400 (seed 0)" and row["OptEmbed"] == "0.5000"
    assert row["BET (paper) ÷ best"] == "1.100 (OptEmbed, seed 0)"  # 0.44 / 0.40, OptEmbed's seed 0; not 0.44 / 0.50
    assert row["BET ÷ best"] == "0.900 (OptEmbed)"  # every seed in common: no seeds named


def test_ratio_on_common_seeds_names_the_seeds_whenever_either_side_has_seeds_the_other_lacks():
    def runs(values):
        return table.summary({seed: fake_result("x", seed, v) for seed, v in values.items()})

    three, one = runs({0: 0.40, 1: 0.50, 2: 0.60}), runs({0: 0.44})
    assert table.ratio_on_common_seeds(one, three, "OptEmbed") == "1.100 (OptEmbed, seed 0)"
    assert table.ratio_on_common_seeds(three, one, "PEP") == "0.909 (PEP, seed 0)"  # 0.40 / 0.44, seed 0 only
    assert table.ratio_on_common_seeds(three, three, "ES") == "1.000 (ES)"
    assert table.ratio_on_common_seeds(runs({1: 0.5}), one, "ES") == "n/a"  # no seed in common
