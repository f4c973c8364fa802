"""BET's selective retrainings as ray tasks (a local instance with 2 CPUs): the same result as one by one."""

import pytest

from recbole_bet.methods.bet.retraining import retraining_seed
from recbole_bet.quick_start import run_recbole_bet

pytestmark = pytest.mark.slow  # end-to-end runs: `pytest -m "not slow"` leaves them out

TINY = {"method": "bet", "bet_iterations": 2, "bet_candidates": 4, "bet_finetune_epochs": 1, "bet_retrain_top": 2, "epochs": 3}


@pytest.fixture
def local_ray():
    import ray

    yield
    ray.shutdown()


def test_ray_retrainings_equal_the_retrainings_one_by_one(fast_config, tmp_path, local_ray):
    alone = run_recbole_bet("LightGCN", "ml-100k", config_dict=dict(fast_config, **TINY))
    fanned = run_recbole_bet("LightGCN", "ml-100k", config_dict=dict(fast_config, checkpoint_dir=str(tmp_path / "ray"), ray=True, **TINY))
    import ray

    assert ray.is_initialized()  # the retrainings did run as tasks
    assert fanned["test"] == alone["test"] and fanned["sizes"] == alone["sizes"]
    for a, b in zip(alone["bet"]["retrained"], fanned["bet"]["retrained"]):
        assert (a["index"], a["valid"], a["curve"]) == (b["index"], b["valid"], b["curve"])
        assert b["checkpoint"].startswith(str(tmp_path / "ray"))  # written by the task where the run keeps its files


def test_each_retraining_has_its_own_seed():
    seeds = [retraining_seed(2020, rank) for rank in range(5)]
    assert len(set(seeds)) == 5 and seeds == [retraining_seed(2020, rank) for rank in range(5)]
    assert retraining_seed(7, 0) != retraining_seed(2020, 0)


def test_the_budgets_of_a_run_of_several_as_ray_tasks_equal_the_budgets_one_by_one(fast_config, tmp_path, local_ray):
    """The first budget runs here and trains magnitude pruning's full table; the others run as ray tasks from it."""
    import ray

    from test_methods_end_to_end import TINY as METHOD_TINY

    keys = dict(fast_config, method="magprune", epochs=2, sparsity=[0.8, 0.9, 0.95], **METHOD_TINY["magprune"])
    alone = run_recbole_bet("LightGCN", "ml-100k", config_dict=keys)
    assert not ray.is_initialized()
    fanned = run_recbole_bet("LightGCN", "ml-100k", config_dict=dict(keys, checkpoint_dir=str(tmp_path / "ray"), ray=True,
                                                                     result_file=str(tmp_path / "r.json")))
    assert ray.is_initialized()  # the later budgets did run as tasks
    assert [r["sparsity"] for r in fanned] == [0.8, 0.9, 0.95]
    for a, b in zip(alone, fanned):
        assert (a["test"], a["valid"], a["sizes"], a["magprune"]["full_valid"]) == (b["test"], b["valid"], b["sizes"], b["magprune"]["full_valid"])
    assert (tmp_path / "r-sparsity0.95.json").is_file()  # written by its task
    assert len(list((tmp_path / "ray").glob("*-full.pth"))) == 1  # the tasks took the full table, did not train it
