"""Bad input: one clear line naming the value and what is allowed, exit code 2, no traceback."""

import subprocess
import sys

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow  # end-to-end runs: `pytest -m "not slow"` leaves them out


def run_cli(*args, cwd):
    return subprocess.run(
        [sys.executable, str(ROOT / "run_recbole_bet.py"), *args, "--epochs=1", "--show_progress=False"],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--sparsity=1.5"], "sparsity=1.5 is outside (0, 1)"),
        (["--sparsity=0"], "sparsity=0 is outside (0, 1)"),
        (["--sparsity=0.8,1.5"], "sparsity=1.5 is outside (0, 1)"),
        (["--sparsity=0.8,0.8"], "sparsity=0.8,0.8 names a budget twice"),
        (["--sparsity=0.995"], "every row needs at least 1; allowed: sparsity <= 0.992188"),
        (["--model=Foo"], "unknown model 'Foo'; allowed: LightGCN, NGCF, NeuMF"),
        (["--method=xyz"], "unknown method 'xyz'; allowed: bet, full, es, mr, pep, optembed, magprune, mde, esapn, ciess, qr, graphhash, dsl, recbole"),
        (["--method=es", "--bet_iterations=5"], "key 'bet_iterations' belongs to method bet; this run's method is es"),
        (["--method=pep", "--optembed_keep=3"], "key 'optembed_keep' belongs to method optembed; this run's method is pep"),
        (["--method=pep", "--pep_granularty=global"], "unknown key 'pep_granularty' (did you mean 'pep_granularity'?)"),
        (["--method=pep", "--pep_granularity=row"], "pep_granularity='row'; allowed: feature_dimension, feature, dimension, global"),
        (["--method=mde", "--mde_alphas=[0.1,2]"], "mde_alphas=[0.1, 2]; allowed: a non-empty list of numbers in [0, 1]"),
        (["--method=optembed", "--optembed_mutation_prob=1.5"], "optembed_mutation_prob=1.5; allowed: a number in [0, 1]"),
        (["--method=optembed", "--optembed_profile=fast"], "unknown optembed_profile 'fast'; allowed: none"),
        (["--method=ciess", "--ciess_profile=slow"], "unknown ciess_profile 'slow'; allowed: fast"),
        (["--bet_profile=../bet"], "unknown bet_profile '../bet'; allowed: fast, paper, paper-gpu"),
        (["--method=esapn", "--sparsity=0.99"], "ESAPN starts every row at size 2: 5250 parameters, over the budget of 3360"),
        (["--dataset=nosuchdata"], "unknown dataset 'nosuchdata'"),
        (["--dataset=gowalla", "--data_path=/nonexistent"], "data file /nonexistent/gowalla/gowalla.inter not found"),
        (["--bet_nonsense=3"], "unknown key 'bet_nonsense'"),
        (["--tune_allocator=maybe"], "tune_allocator='maybe'; allowed: True or False"),
        (["--screened_ranking=3"], "screened_ranking=3; allowed: True or False"),
        (["--fresh=maybe"], "fresh='maybe'; allowed: True or False"),
        (["--result_file=out/a=b.json"], "argument '--result_file=out/a=b.json' is not --key=value with exactly one '='"),
        (["--epochs", "3"], "argument '--epochs' is not --key=value with exactly one '='"),
        (["--config_files=nothere.yaml"], "config file 'nothere.yaml' does not exist"),
        (["--config_files=bad.yaml"], "config file 'bad.yaml' is not valid YAML"),
        (["--dataset=empty", "--data_path=."], "dataset file empty/empty.inter is empty"),
        (["--dataset=junk", "--data_path=."], "dataset file junk/junk.inter is not a RecBole atomic file: header column 'hello world' is not name:type"),
        (["--dataset=noitem", "--data_path=."], "dataset file noitem/noitem.inter has no column 'item_id'"),
    ],
)
def test_bad_input_exits_with_one_clear_line(args, message, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "empty.inter").write_text("")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "junk.inter").write_text("hello world\nfoo bar\n")
    (tmp_path / "noitem").mkdir()
    (tmp_path / "noitem" / "noitem.inter").write_text("user_id:token\tscore:float\n1\t2.0\n")
    (tmp_path / "bad.yaml").write_text("[1, 2\n")
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("run_recbole_bet: error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr[-2000:]
