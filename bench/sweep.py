"""A sweep of recbole-bet runs as ray tasks: every (model, method, sparsity, seed) is one run of the plugin.

    python -m bench.sweep --dataset=ml-100k --models=LightGCN,NGCF,NeuMF --methods=full,es,mr,bet,pep,optembed,magprune,mde \\
        --sparsities=0.8,0.9,0.95 --seeds=0,1,2 --baselines=BPR,Pop,LightGCN,NGCF,NeuMF

* Each run is ``run_recbole_bet.py`` in its own process, started by a ray task
  with one CPU (``ray.init()`` locally; ``--ray_address=...`` joins a cluster).
* Its result JSON lands in ``--out/<dataset>/<model>-<method>-<sparsity>-s<seed>.json``;
  a run whose file is complete is skipped, so an interrupted sweep loses nothing.
* A failed run writes ``<name>.error.json`` (the command and the end of its
  stderr) and does not stop the others; re-running the sweep retries it.
* ``--baselines`` adds RecBole's own models, unchanged (``--method=recbole``),
  under the same protocol: the reference rows.
* ``--keys`` passes more ``--key=value`` to every run; a method's own key (``--bet_profile=fast``,
  ``--mde_alphas=[0.1]``) only to that method's runs.

Then ``python -m bench.table`` turns the folder into the Markdown/CSV tables.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "bench" / "results" / "sweep"


@dataclass(frozen=True)
class Run:
    """One run of the sweep."""

    dataset: str
    model: str
    method: str
    sparsity: float
    seed: int

    @property
    def name(self) -> str:
        return f"{self.model}-{self.method}-{self.sparsity}-s{self.seed}"

    def result_file(self, out: Path) -> Path:
        return out / self.dataset / f"{self.name}.json"

    def command(self, out: Path, data_path: str, keys: list[str]) -> list[str]:
        budget = [] if self.method == "recbole" else [f"--sparsity={self.sparsity}"]  # RecBole's own models have none
        keys = keys_for(self.method, keys)
        return [
            sys.executable, str(ROOT / "run_recbole_bet.py"), f"--model={self.model}", f"--dataset={self.dataset}",
            f"--method={self.method}", *budget, f"--seed={self.seed}",
            f"--data_path={data_path}", "--show_progress=False", f"--result_file={self.result_file(out)}",
            f"--checkpoint_dir={out / self.dataset / 'saved' / self.name}", *keys,
        ]


def keys_for(method: str, keys: list[str]) -> list[str]:
    """The ``--key=value`` arguments meant for ``method``: a key with another method's prefix (``--bet_profile=fast``
    in a sweep that also runs ``es``) is left out, as a run refuses another method's key."""
    from recbole_bet.methods import key_owners

    owners = key_owners()

    def owner(argument: str):
        name = argument.lstrip("-").split("=", 1)[0]
        return next((m for prefix, m in owners.items() if name.startswith(prefix)), None)

    return [k for k in keys if owner(k) in (None, method)]


def is_complete(path: Path) -> bool:
    """A result file that parses and holds test metrics."""
    try:
        return bool(json.loads(path.read_text()).get("test"))
    except (OSError, ValueError):
        return False


def plan(args) -> list[Run]:
    runs = [
        Run(args.dataset, model, method, float(sparsity), int(seed))
        for model, method, sparsity, seed in itertools.product(
            split(args.models), split(args.methods), split(args.sparsities), split(args.seeds)
        )
        # full ignores sparsity: one run, named at the smallest sparsity whatever the order given, so that
        # commands listing the same budgets in another order find it finished
        if not (method == "full" and float(sparsity) != min(map(float, split(args.sparsities))))
    ]
    runs += [Run(args.dataset, model, "recbole", 0.0, int(seed)) for model in split(args.baselines) for seed in split(args.seeds)]
    return runs


def split(text: str) -> list[str]:
    return [part for part in str(text).split(",") if part]


def execute(run: Run, out: str, data_path: str, keys: list[str], workdir: str) -> dict:
    """Run one job in its own process; record a failure instead of raising. Returns a status dict."""
    out = Path(out)
    target = run.result_file(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    command = run.command(out, data_path, keys)
    started = time.time()
    process = subprocess.run(command, capture_output=True, text=True, cwd=workdir)
    seconds = round(time.time() - started, 1)
    error_file = target.with_suffix(".error.json")
    if process.returncode == 0 and is_complete(target):
        error_file.unlink(missing_ok=True)
        return {"run": run.name, "status": "done", "seconds": seconds}
    record = {"run": run.name, "status": "failed", "returncode": process.returncode, "seconds": seconds,
              "command": command, "stderr": process.stderr[-4000:]}
    error_file.write_text(json.dumps(record, indent=2))
    return record


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--models", default="LightGCN")
    parser.add_argument("--methods", default="full,es,mr,bet")
    parser.add_argument("--sparsities", default="0.8,0.9,0.95")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--baselines", default="", help="RecBole models run unchanged, e.g. BPR,Pop,LightGCN")
    parser.add_argument("--data_path", default=str(ROOT.parent / "shared" / "datasets"))
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument("--keys", default="", help="more --key=value for every run, space separated")
    parser.add_argument("--ray_address", default=None, help="join this ray cluster instead of starting one")
    parser.add_argument("--num_cpus", type=int, default=None, help="CPUs of the local ray instance (default: all)")
    args = parser.parse_args(argv)

    import ray

    out = Path(args.out).resolve()
    runs = plan(args)
    todo = [run for run in runs if not is_complete(run.result_file(out))]
    print(f"{len(runs)} runs, {len(runs) - len(todo)} already complete, {len(todo)} to run", flush=True)
    if not todo:
        return 0
    # Workers import this module (bench.sweep) from the checkout; on a cluster, every node needs the
    # checkout at the same path and recbole-bet installed.
    runtime_env = {"env_vars": {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}}
    if args.ray_address:
        ray.init(address=args.ray_address, runtime_env=runtime_env)
    else:
        ray.init(num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False, runtime_env=runtime_env)
    task = ray.remote(num_cpus=1, max_retries=0)(execute)
    env_workdir = os.getcwd()
    pending = {task.remote(run, str(out), str(Path(args.data_path).resolve()), args.keys.split(), env_workdir): run for run in todo}
    failed = 0
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        for ref in ready:
            run = pending.pop(ref)
            status = ray.get(ref)
            failed += status["status"] != "done"
            print(f"[{len(todo) - len(pending)}/{len(todo)}] {run.name}: {status['status']} ({status['seconds']} s)", flush=True)
    ray.shutdown()
    print(f"{len(todo) - failed} done, {failed} failed (see *.error.json)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
