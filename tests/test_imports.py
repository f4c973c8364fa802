"""Every module imports first, in a fresh interpreter: no import cycle hides behind the order the tests import in."""

import pkgutil
import subprocess
import sys

PROBE = """
import importlib, sys
failed = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "recbole_bet" or m.startswith("recbole_bet.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception as error:
        failed.append(f"{name}: {type(error).__name__}: {error}")
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


def test_each_module_imports_first():
    import recbole_bet.methods  # noqa: F401  (so that MODULES lists its modules)

    modules = sorted({"recbole_bet"} | {f"recbole_bet.{m.name}" for m in pkgutil.iter_modules(recbole_bet.__path__)}
                     | {f"recbole_bet.methods.{m.name}" for m in pkgutil.iter_modules(recbole_bet.methods.__path__)})
    assert "recbole_bet.search" in modules and "recbole_bet.methods.bet" in modules
    done = subprocess.run([sys.executable, "-c", PROBE, *modules], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
