"""A normal run prints no warning a user cannot act on; the filters are narrow (by module and message)."""

import subprocess
import sys
import warnings

import pytest

from recbole_bet.known_warnings import KNOWN, silence_known_warnings

from conftest import ROOT


@pytest.mark.slow
@pytest.mark.parametrize("model", ["LightGCN", "NGCF"])
def test_a_normal_run_prints_no_warning(model, tmp_path):
    run = subprocess.run(
        [sys.executable, str(ROOT / "run_recbole_bet.py"), f"--model={model}", "--method=es", "--epochs=1", "--show_progress=False"],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Warning" not in run.stderr + run.stdout, (run.stderr + run.stdout)[-3000:]


def test_known_warnings_are_silenced_only_where_they_come_from():
    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()
        warnings.simplefilter("always")
        silence_known_warnings()
        for category, module, message in KNOWN:
            text = message.replace("\\", "")  # the regex's literal text
            where = module.replace("\\", "").replace("(lightgcn|ngcf)", "lightgcn")
            warnings.warn_explicit(text, category, "f.py", 1, module=where)  # silenced
            warnings.warn_explicit(text, category, "f.py", 1, module="somewhere.else")  # shown
            warnings.warn_explicit("another message", category, "f.py", 1, module=where)  # shown
    assert len(caught) == 2 * len(KNOWN)
    assert {str(w.message) for w in caught} >= {"another message"}
