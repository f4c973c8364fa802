"""A killed run continues where it stopped: rerunning the same command gives the uninterrupted result, bit for bit."""

import json
import pickle
import time
from pathlib import Path

import pytest

from recbole_bet.export import read_table
from recbole_bet.quick_start import run_recbole_bet
from recbole_bet.resume import RunState
from recbole_bet.methods.bet.search import BetTrainer
from recbole_bet.resume import KeptEpochs, KeptLoop
from recbole_bet.trainer import BudgetTrainer

pytestmark = pytest.mark.slow  # end-to-end runs: `pytest -m "not slow"` leaves them out

TINY = {"method": "bet", "bet_iterations": 4, "bet_candidates": 4, "bet_finetune_epochs": 1, "bet_retrain_top": 2, "epochs": 2}


class Killed(Exception):
    """Stands for kill -9: the process stops between two statements."""


def what_counts(result):
    """A run's outcome without its times and file names: the chosen sizes, metrics and the search's records."""
    _, _, sizes = read_table(result["export"]["path"])
    records = [{k: v for k, v in r.items() if k != "seconds"} for r in result["search"]]
    return {"sizes": {n: s.tolist() for n, s in sizes.items()}, "test": result["test"], "valid": result["valid"],
            "search": records, "full_quality": result["bet"]["full_quality"],
            "retrained": [{k: r[k] for k in ("index", "valid", "quality", "curve")} for r in result["bet"]["retrained"]]}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("whole")
    keys = dict(TINY, show_progress=False, state="WARNING", checkpoint_dir=str(folder))
    return what_counts(run_recbole_bet("LightGCN", "ml-100k", config_dict=keys))


def kill_at(monkeypatch, where: str):
    """Stop the run at a point: before search iteration 2 (iterations 0 and 1 finished), in the second retraining, or
    as a method's final training starts."""
    if where == "search":
        real = BetTrainer.select
        monkeypatch.setattr(BetTrainer, "select", lambda self, t, *a: (_ for _ in ()).throw(Killed()) if t == 2 else real(self, t, *a))
    else:
        real = BudgetTrainer.fit_phase
        phase = {"retraining": "retrain1", "final": None}[where]  # None: a method's final training

        def fit_phase(self, name, *args, **kwargs):
            if name == phase:
                raise Killed()
            return real(self, name, *args, **kwargs)

        monkeypatch.setattr(BudgetTrainer, "fit_phase", fit_phase)


@pytest.mark.parametrize("where", ["search", "retraining"])
def test_a_killed_run_continues_to_the_uninterrupted_result(where, uninterrupted, fast_config, monkeypatch):
    keys = dict(fast_config, **TINY)
    with monkeypatch.context() as patch:  # (monkeypatch itself also holds conftest's sys.argv for RecBole)
        kill_at(patch, where)
        with pytest.raises(Killed):
            run_recbole_bet("LightGCN", "ml-100k", config_dict=keys)
    phases, real = [], BudgetTrainer.fit_phase
    monkeypatch.setattr(BudgetTrainer, "fit_phase", lambda self, name, *a, **kw: phases.append(name) or real(self, name, *a, **kw))
    iterations, select = [], BetTrainer.select
    monkeypatch.setattr(BetTrainer, "select", lambda self, t, *a: iterations.append(t) or select(self, t, *a))
    rerun_started = time.time()
    again = run_recbole_bet("LightGCN", "ml-100k", config_dict=keys)
    # its wall time counts the killed run's too (its pretraining at least), not only the rerun's
    assert again["seconds"] > time.time() - rerun_started
    assert "pretrain" not in phases  # finished before the kill: not done again
    assert iterations == ([2, 3] if where == "search" else [])  # nor the finished search iterations
    assert phases == (["retrain0", "retrain1"] if where == "search" else ["retrain1"])
    assert what_counts(again) == uninterrupted


def run_folders(checkpoint_dir) -> list[Path]:
    """The unfinished runs' folders in a checkpoint folder, ``<checkpoint_dir>/runs/<run id>``."""
    return sorted(p for p in (Path(checkpoint_dir) / "runs").glob("*") if p.is_dir())


def trained_epochs(keys: dict, monkeypatch) -> tuple[dict, list]:
    """Run ``keys``: its result and the training epochs it trained."""
    epochs, real_epoch = [], BudgetTrainer._train_epoch
    with monkeypatch.context() as patch:
        patch.setattr(BudgetTrainer, "_train_epoch", lambda self, data, epoch, *a, **kw: epochs.append(epoch) or real_epoch(
            self, data, epoch, *a, **kw))
        return run_recbole_bet("LightGCN", "ml-100k", config_dict=keys), epochs


@pytest.mark.slow
def test_killed_runs_of_other_experiments_share_a_folder_and_each_continues_with_its_own_command(fast_config, tmp_path, monkeypatch):
    """Three experiments killed in one checkpoint folder: each keeps its own state (``runs/<id>/``), so no command is
    refused; --fresh on one discards its state only; rerunning each of the others continues it, with the result it has
    alone."""
    base = dict(fast_config, method="es", epochs=3)
    runs = {"a": dict(base, seed=1), "b": dict(base, seed=2), "c": dict(base, learning_rate=0.002)}
    alone = {name: run_recbole_bet("LightGCN", "ml-100k", config_dict=dict(keys, checkpoint_dir=str(tmp_path / name)))
             for name, keys in runs.items()}
    for name, keys in runs.items():
        killed_after_epoch(keys, "sparsity0.9/final-epochs", 0, monkeypatch)
    folders = run_folders(base["checkpoint_dir"])
    assert len(folders) == 3
    before = {f: sorted(p.name for p in f.iterdir()) for f in folders}
    again, epochs = trained_epochs(dict(runs["a"], fresh=True), monkeypatch)
    assert epochs == [0, 1, 2]  # started over
    after = run_folders(base["checkpoint_dir"])  # a's, finished, is gone; b's and c's are as they were
    assert len(after) == 2 and all(sorted(p.name for p in f.iterdir()) == before[f] for f in after)
    results = {"a": again}
    for name in ("b", "c"):
        results[name], epochs = trained_epochs(runs[name], monkeypatch)
        assert epochs == [1, 2], name  # continued after its kept epoch
    for name, result in results.items():
        assert (result["test"], result["curve"]) == (alone[name]["test"], alone[name]["curve"]), name
    assert run_folders(base["checkpoint_dir"]) == []


def test_finished_budgets_of_a_killed_run_are_not_run_again(fast_config, monkeypatch):
    keys = dict(fast_config, method="es", epochs=1, sparsity=[0.8, 0.9])
    whole = run_recbole_bet("LightGCN", "ml-100k", config_dict=dict(keys, checkpoint_dir=fast_config["checkpoint_dir"] + "-whole"))
    real, calls = BudgetTrainer.fit_phase, []

    def fit_phase(self, name, *args, **kwargs):
        calls.append(name)
        if len(calls) == 2:  # the second budget's training
            raise Killed()
        return real(self, name, *args, **kwargs)

    monkeypatch.setattr(BudgetTrainer, "fit_phase", fit_phase)
    with pytest.raises(Killed):
        run_recbole_bet("LightGCN", "ml-100k", config_dict=keys)
    (folder,) = run_folders(keys["checkpoint_dir"])
    kept = {p.name for p in folder.iterdir()}
    assert "sparsity0.8--result.pt" in kept and not any("epochs" in name for name in kept)  # dropped once 0.8 ended
    calls.clear()
    monkeypatch.setattr(BudgetTrainer, "fit_phase", lambda self, name, *a, **kw: calls.append(name) or real(self, name, *a, **kw))
    again = run_recbole_bet("LightGCN", "ml-100k", config_dict=keys)
    assert len(calls) == 1  # only the second budget trained
    assert [r["test"] for r in again] == [r["test"] for r in whole]


def test_bad_input_found_during_a_run_leaves_nothing_to_continue(fast_config, tmp_path):
    """ESAPN finds at its start that the budget is too small: the command is wrong, not interrupted, so the next
    command in that folder is not refused."""
    from recbole_bet.errors import BudgetError

    with pytest.raises(BudgetError, match="ESAPN starts every row at size 2"):
        run_recbole_bet("LightGCN", "ml-100k", config_dict=dict(fast_config, method="esapn", sparsity=0.99))
    assert run_recbole_bet("LightGCN", "ml-100k", config_dict=dict(fast_config, method="es", epochs=1))["method"] == "es"


def killed_after_epoch(keys: dict, unit: str, at: int, monkeypatch) -> None:
    """Run ``keys`` and stop it right after the training kept as ``unit`` has kept its epoch ``at``."""
    real_keep = KeptEpochs.keep

    def keep(self, trainer, epoch):
        real_keep(self, trainer, epoch)
        if self.unit == unit and epoch == at:
            raise Killed()

    with monkeypatch.context() as patch:
        patch.setattr(KeptEpochs, "keep", keep)
        with pytest.raises(Killed):
            run_recbole_bet("LightGCN", "ml-100k", config_dict=keys)


@pytest.mark.parametrize("unit", ["bet-pretrain-epochs", "sparsity0.9/bet-retrain1-epochs"])
def test_a_training_killed_between_epochs_goes_on_from_its_last_epoch(unit, uninterrupted, fast_config, monkeypatch):
    """Killed right after a training's first epoch was kept (the pretraining, the second retraining): the rerun
    trains only its later epochs, and ends with the uninterrupted result."""
    keys = dict(fast_config, **TINY)
    killed_after_epoch(keys, unit, 0, monkeypatch)
    trained, phase, real_epoch, real_fit = [], [None], BudgetTrainer._train_epoch, BudgetTrainer.fit_phase

    def fit_phase(self, name, *args, **kwargs):  # which phase an epoch belongs to (fine-tunings belong to none)
        phase[0] = name
        try:
            return real_fit(self, name, *args, **kwargs)
        finally:
            phase[0] = None

    monkeypatch.setattr(BudgetTrainer, "fit_phase", fit_phase)
    monkeypatch.setattr(BudgetTrainer, "_train_epoch", lambda self, data, epoch, *a, **kw: trained.append(
        (phase[0], epoch)) or real_epoch(self, data, epoch, *a, **kw))
    again = run_recbole_bet("LightGCN", "ml-100k", config_dict=keys)
    killed_phase = {"bet-pretrain-epochs": "pretrain", "sparsity0.9/bet-retrain1-epochs": "retrain1"}[unit]
    assert [epoch for name, epoch in trained if name == killed_phase] == [1]  # epoch 0 was kept: not trained again
    assert what_counts(again) == uninterrupted


@pytest.mark.slow
def test_a_training_killed_while_early_stopping_counts_keeps_its_patience_and_its_stop(fast_config, tmp_path, monkeypatch):
    """Early stopping after 2 validations without improvement: the uninterrupted training improves up to epoch 2, then
    fails at epochs 3, 4 and 5 and stops. Killed after epoch 4 (patience 2 used), the rerun trains epoch 5 only and
    stops there; killed after epoch 5 (stopped), it trains nothing more. Either way the uninterrupted result."""
    keys = dict(fast_config, method="es", epochs=20, stopping_step=2, learning_rate=0.03)
    whole = run_recbole_bet("LightGCN", "ml-100k", config_dict=dict(keys, checkpoint_dir=str(tmp_path / "whole")))
    scores = [c["valid_score"] for c in whole["curve"]]
    assert len(scores) == 6 and scores.index(max(scores)) == 2  # the schedule this test is about
    real_epoch = BudgetTrainer._train_epoch
    for at in (4, 5):
        killed = dict(keys, checkpoint_dir=str(tmp_path / f"killed-at-{at}"))
        killed_after_epoch(killed, "sparsity0.9/final-epochs", at, monkeypatch)
        epochs = []
        with monkeypatch.context() as patch:
            patch.setattr(BudgetTrainer, "_train_epoch", lambda self, data, epoch, *a, **kw: epochs.append(epoch) or real_epoch(
                self, data, epoch, *a, **kw))
            again = run_recbole_bet("LightGCN", "ml-100k", config_dict=killed)
        assert epochs == list(range(at + 1, 6)), at
        assert (again["curve"], again["test"], again["valid"]) == (whole["curve"], whole["test"], whole["valid"])


SEARCHES = {"pep": {"pep_max_epochs": 2}, "optembed": {"optembed_generations": 2, "optembed_keep": 3},
            "esapn": {"esapn_episodes": 2}, "ciess": {"ciess_episodes": 1, "ciess_steps": 2, "ciess_step_epochs": 1, "ciess_batch": 256}}


@pytest.mark.parametrize("method, unit", [("es", "sparsity0.9/final-epochs"), ("magprune", "magprune-full-epochs"),
                                          ("optembed", "optembed-supernet-epochs")])
def test_other_methods_trainings_go_on_from_their_last_epoch(method, unit, fast_config, tmp_path, monkeypatch):
    """Every method's final training, and the budget-free trainings (magnitude pruning's full table, OptEmbed's
    supernet with its thresholds and width stream), keep their epochs too."""
    keys = dict(fast_config, method=method, epochs=3, **SEARCHES.get(method, {}))
    whole = run_recbole_bet("LightGCN", "ml-100k", config_dict=dict(keys, checkpoint_dir=str(tmp_path / "whole")))
    killed_after_epoch(keys, unit, 1, monkeypatch)
    epochs, real_epoch = [], BudgetTrainer._train_epoch
    monkeypatch.setattr(BudgetTrainer, "_train_epoch", lambda self, data, epoch, *a, **kw: epochs.append(epoch) or real_epoch(self, data, epoch, *a, **kw))
    again = run_recbole_bet("LightGCN", "ml-100k", config_dict=keys)
    # magnitude pruning and OptEmbed: after the rest of their first training, their final one, all of it
    assert epochs == ([2] if method == "es" else [2, 0, 1, 2])
    assert (again["test"], again["valid"]) == (whole["test"], whole["valid"])
    assert again.get(method) == whole.get(method)  # OptEmbed: the supernet's thresholds and curve, the evolution's scores


def rerun_work(keys: dict, monkeypatch) -> tuple[dict, list]:
    """Kill ``keys``'s run as its final training starts (after its search), then rerun it: the rerun's result and the
    work it did (each training epoch, each evaluation), in order."""
    with monkeypatch.context() as patch:
        kill_at(patch, "final")
        with pytest.raises(Killed):
            run_recbole_bet("LightGCN", "ml-100k", config_dict=keys)
    work, real_epoch, real_evaluate = [], BudgetTrainer._train_epoch, BudgetTrainer.evaluate
    with monkeypatch.context() as patch:
        patch.setattr(BudgetTrainer, "_train_epoch", lambda self, data, epoch, *a, **kw: work.append(("epoch", epoch)) or real_epoch(
            self, data, epoch, *a, **kw))
        patch.setattr(BudgetTrainer, "evaluate", lambda self, *a, **kw: work.append("evaluate") or real_evaluate(self, *a, **kw))
        return run_recbole_bet("LightGCN", "ml-100k", config_dict=keys), work


@pytest.mark.parametrize("method", list(SEARCHES))
def test_a_run_killed_after_its_search_does_not_search_again(method, fast_config, tmp_path, monkeypatch):
    """A method's search (PEP's thresholds, OptEmbed's evolution, ESAPN's episodes, CIESS's steps) is kept once
    finished with every random stream: killed as its final training starts, the rerun does what ES's rerun does, the
    final training's three epochs, their validations and the test, and ends with the uninterrupted result."""
    _, es_work = rerun_work(dict(fast_config, method="es", epochs=3, checkpoint_dir=str(tmp_path / "es")), monkeypatch)
    assert [w for w in es_work if w != "evaluate"] == [("epoch", 0), ("epoch", 1), ("epoch", 2)]
    keys = dict(fast_config, method=method, epochs=3, **SEARCHES[method])
    whole = run_recbole_bet("LightGCN", "ml-100k", config_dict=dict(keys, checkpoint_dir=str(tmp_path / "whole")))
    again, work = rerun_work(keys, monkeypatch)
    assert work == es_work
    assert (again["test"], again["valid"], again["sizes"]) == (whole["test"], whole["valid"], whole["sizes"])
    assert again[method] == whole[method]  # the search's records, read back


# each search's loop, long enough that the state it carries matters after the kill: (keys, its iterations in a result)
LOOPS = {"esapn": ({"esapn_episodes": 4}, lambda r: len(r["esapn"]["episodes"])),
         "ciess": (dict(SEARCHES["ciess"], ciess_episodes=2), lambda r: len(r["ciess"]["steps"])),
         "pep": ({"pep_max_epochs": 3}, lambda r: len(r["pep"]["epochs"])),
         "optembed": ({"optembed_generations": 3, "optembed_keep": 3}, lambda r: len(r["optembed"]["generations"]))}


@pytest.mark.parametrize("method, at", [("esapn", 2), ("ciess", 1), ("ciess", 2), ("pep", 1), ("optembed", 1)])
def test_a_search_killed_between_its_iterations_goes_on_after_the_last_one(method, at, fast_config, tmp_path, monkeypatch):
    """ESAPN's episodes, CIESS's agent steps, PEP's threshold epochs and OptEmbed's generations are each kept with
    what the loop carries (policies, agents and replay buffers, the recommender and its optimiser, the population and
    its scores, every random stream): killed after iteration ``at`` was kept (for CIESS, in the middle of its first
    episode and at the end of it), the rerun does only the iterations left and ends with the uninterrupted result."""
    extra, iterations = LOOPS[method]
    keys = dict(fast_config, method=method, epochs=3, **extra)
    whole = run_recbole_bet("LightGCN", "ml-100k", config_dict=dict(keys, checkpoint_dir=str(tmp_path / "whole")))
    total = iterations(whole)
    assert total > at  # the kill leaves iterations to do
    real_keep = KeptLoop.keep

    def keep(self, state):
        real_keep(self, state)
        if state["next"] == at:
            raise Killed()

    with monkeypatch.context() as patch:
        patch.setattr(KeptLoop, "keep", keep)
        with pytest.raises(Killed):
            run_recbole_bet("LightGCN", "ml-100k", config_dict=keys)
    kept = []
    monkeypatch.setattr(KeptLoop, "keep", lambda self, state: kept.append(state["next"]) or real_keep(self, state))
    again = run_recbole_bet("LightGCN", "ml-100k", config_dict=keys)
    assert kept == list(range(at + 1, total + 1))  # the iterations left, and only those
    assert (again["test"], again["valid"], again["sizes"]) == (whole["test"], whole["valid"], whole["sizes"])
    assert again[method] == whole[method]  # every episode's or step's record


def test_ciess_keeps_each_steps_transitions_once_not_its_whole_replay_buffer(fast_config, tmp_path, monkeypatch, caplog):
    """A kept CIESS step holds the agents without their replay buffers; each step's transitions are kept once, as a
    part of their own (one row per user and per item), and a rerun adds them again in order and ends as the
    uninterrupted run. Keeping the whole buffer at every step wrote a store that grows with the steps, at every
    step."""
    extra, steps = LOOPS["ciess"]
    keys = dict(fast_config, method="ciess", epochs=3, **extra)
    whole = run_recbole_bet("LightGCN", "ml-100k", config_dict=dict(keys, checkpoint_dir=str(tmp_path / "whole")))
    real_keep = KeptLoop.keep

    def keep(self, state):
        real_keep(self, state)
        if state["next"] == 3:
            raise Killed()

    with monkeypatch.context() as patch:
        patch.setattr(KeptLoop, "keep", keep)
        with pytest.raises(Killed):
            run_recbole_bet("LightGCN", "ml-100k", config_dict=keys)
    state = RunState(run_folders(keys["checkpoint_dir"])[0])
    kept, _ = state.load("sparsity0.9/ciess-search-epochs")
    assert kept["next"] == 3 and set(kept["agents"]["user"]) == {"networks", "actor_optimizer", "critic_optimizer", "updates"}
    parts = [state.load(f"sparsity0.9/ciess-search-epochs-part{i}") for i in range(4)]
    assert parts[3] is None  # the step after the kill was never taken
    for part in parts[:3]:
        assert {name: len(part[name]["s2"]) for name in ("user", "item")} == {"user": 943, "item": 1682}
    # a step's states are the previous step's next states: kept at an episode's first step only (2 steps an episode)
    assert ["s" in part["user"] for part in parts[:3]] == [True, False, True]
    assert not (parts[0]["user"]["s2"] == parts[1]["user"]["s2"]).all()  # each step's own next states

    kept, trained, real_keep_loop, real_fit = [], [], KeptLoop.keep, BudgetTrainer.fit_phase
    monkeypatch.setattr(KeptLoop, "keep", lambda self, s: kept.append(s["next"]) or real_keep_loop(self, s))
    monkeypatch.setattr(BudgetTrainer, "fit_phase", lambda self, name, *a, **kw: trained.append(name) or real_fit(self, name, *a, **kw))
    again = run_recbole_bet("LightGCN", "ml-100k", config_dict=keys)
    assert kept == list(range(4, steps(whole) + 1))  # the steps after the kill only
    assert trained == [None]  # the final training only: the pretraining, kept before the search, is not lost
    assert (again["test"], again["valid"], again["sizes"], again["ciess"]) == (whole["test"], whole["valid"], whole["sizes"], whole["ciess"])


def test_a_killed_run_sharing_its_population_gets_the_earlier_budgets_actions_back(fast_config, tmp_path, monkeypatch):
    """bet_share_population: killed at the second budget's first iteration, the rerun reads the first budget's measured
    actions from the unfinished run (the first budget is not run again) and ends as the uninterrupted run."""
    keys = dict(fast_config, **dict(TINY, bet_retrain_top=1), sparsity=[0.8, 0.9], bet_share_population=True)
    whole = run_recbole_bet("LightGCN", "ml-100k", config_dict=dict(keys, checkpoint_dir=str(tmp_path / "whole")))
    real, calls = BetTrainer.select, []

    def select(self, t, *args):
        calls.append((self.budget_key, t))
        if (self.budget_key, t) == ("sparsity0.9", 0):
            raise Killed()
        return real(self, t, *args)

    with monkeypatch.context() as patch:
        patch.setattr(BetTrainer, "select", select)
        with pytest.raises(Killed):
            run_recbole_bet("LightGCN", "ml-100k", config_dict=keys)
    calls.clear()
    monkeypatch.setattr(BetTrainer, "select", lambda self, t, *a: calls.append((self.budget_key, t)) or real(self, t, *a))
    again = run_recbole_bet("LightGCN", "ml-100k", config_dict=keys)
    assert calls == [("sparsity0.9", t) for t in (0, 1, 2, 3)]
    assert whole[1]["bet"]["warm_start"]["actions"] == 4
    for mine, theirs in zip(again, whole):
        assert (mine["test"], mine["sizes"], mine["bet"]["warm_start"]) == (theirs["test"], theirs["sizes"], theirs["bet"]["warm_start"])


def test_write_atomically_leaves_the_old_file_whole_when_the_writer_fails(tmp_path):
    """Every unit, checkpoint and result file goes through ``write_atomically``: a writer that dies half way leaves
    the previous file as it was, and the half-written temporary file left by a killed write does not stop the next."""
    from recbole_bet.resume import link_or_copy, write_atomically

    path = tmp_path / "unit.json"
    path.write_text("old")

    def dies_half_way(tmp):
        tmp.write_text("ne")
        raise Killed()

    with pytest.raises(Killed):
        write_atomically(path, dies_half_way)
    assert path.read_text() == "old"
    assert (tmp_path / "unit.json.tmp").read_text() == "ne"
    write_atomically(path, lambda tmp: tmp.write_text("new"))
    assert path.read_text() == "new"
    assert not (tmp_path / "unit.json.tmp").exists()
    # a hard link is replaced by the rename, so the file linked from keeps its content
    link_or_copy(path, tmp_path / "kept.json")
    write_atomically(path, lambda tmp: tmp.write_text("newer"))
    assert (tmp_path / "kept.json").read_text() == "new"
    link_or_copy(path, tmp_path / "kept.json")  # over an existing file: no FileExistsError
    assert (tmp_path / "kept.json").read_text() == "newer"


def test_the_budget_clock_adds_the_killed_runs_time_up_to_their_last_kept_unit(tmp_path, monkeypatch):
    now = [100.0]
    monkeypatch.setattr("recbole_bet.resume.time.time", lambda: now[0])
    folder = tmp_path / "unfinished-run"
    folder.mkdir()
    first = RunState(folder)
    now[0] = 130.0
    first.save("unit", 1)  # kept 30 s in
    now[0] = 150.0  # then killed: these 20 s computed nothing kept, and do not count
    now[0] = 1000.0
    second = RunState(folder)  # the rerun
    assert second.before == 30.0
    now[0] = 1010.0
    assert second.seconds() == 40.0
    task = pickle.loads(pickle.dumps(second))  # a ray task's copy measures its own time and writes no clock
    assert task.before == 0.0 and not task.owns_clock
    task.save("other", 2)
    assert json.loads((folder / "elapsed.json").read_text())["seconds"] == 30.0
    second.next_budget(1010.0)  # the budget is done: the next one starts from nothing
    now[0] = 1015.0
    assert second.seconds() == 5.0 and json.loads((folder / "elapsed.json").read_text())["seconds"] == 0.0
    assert RunState(folder).before == 0.0
