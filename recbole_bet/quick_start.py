"""One budgeted run, start to end, in numbered steps: 1. configuration, 2. data, then for each budget
(:func:`run_budgets`, one by one or as ray tasks) 3. the backbone, 4. the budget, 5. the method, 6. the test,
7. the exported table, 8. the result file and the model package.

Our own pipeline rather than ``recbole.quick_start`` (which imports ray at
import time and builds RecBole's unmasked models).
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import os
import platform
import sys
import time
from dataclasses import dataclass, field, replace
from logging import getLogger
from pathlib import Path

import numpy as np
import torch
from recbole.data import create_dataset, data_preparation
from recbole.utils import init_logger, init_seed, set_color

from recbole_bet.allocator import keep_freed_memory
from recbole_bet.budget import Action
from recbole_bet.config import BetConfig, RunSettings, check_config_files, check_dataset_present, method_settings
from recbole_bet.errors import BudgetError, ConfigError, UnsafeFileError
from recbole_bet.export import export_table, table_storage
from recbole_bet.fanout import ray_task, task_splits
from recbole_bet.known_warnings import silence_known_warnings
from recbole_bet.methods import RunContext, get_method
from recbole_bet.package import package_path, write_package
from recbole_bet.reproducibility import deterministic_algorithms
from recbole_bet.resume import RunState, budget_free_phase, list_text, write_atomically
from recbole_bet.trainer import BudgetTrainer


def training_frequencies(train_dataset, config) -> tuple[np.ndarray, np.ndarray]:
    """Interactions per user and per item in the training split only, padding excluded.

    Returns:
        (user_frequency ``[n_users]``, item_frequency ``[n_items]``), int64.
    """
    counts = []
    for id_field in (config["USER_ID_FIELD"], config["ITEM_ID_FIELD"]):
        ids = train_dataset.inter_feat[id_field]
        counts.append(torch.bincount(ids, minlength=train_dataset.num(id_field))[1:].numpy())
    return counts[0], counts[1]


def embedding_params(model) -> int:
    """Parameters in a model's embedding tables, padding rows excluded (for RecBole's own models)."""
    return sum((m.num_embeddings - 1) * m.embedding_dim for m in model.modules() if isinstance(m, torch.nn.Embedding))


def run_recbole_bet(model=None, dataset=None, config_file_list=None, config_dict=None, saved=True) -> dict | list[dict]:
    """Train a budgeted backbone and report its test quality.

    Args:
        model (str): LightGCN, NGCF or NeuMF (alias NCF); default LightGCN. With ``method=recbole``,
            any RecBole general recommender (BPR, Pop, ...), trained unchanged under the same protocol.
        dataset (str): a dataset name; default ml-100k.
        config_file_list (list[str]): RecBole property files.
        config_dict (dict): more keys, e.g. ``{"sparsity": 0.9, "method": <a key of recbole_bet.methods>}``.
        saved (bool): keep RecBole's checkpoint (and test the best epoch, not the last).

    Returns:
        dict: the run's results, as written to ``result_file`` (docs/usage.md); with several sparsities
        (``"sparsity": [0.8, 0.9]``), a list of them, one per budget in the order given.

    Raises:
        ConfigError, BudgetError: bad input, before any training.
        UnsafeFileError: a file of the unfinished run being continued holds pickled objects (:mod:`recbole_bet.safe_load`).
    """
    started = time.time()
    silence_known_warnings()

    # ---- 1. configuration: RecBole's Config with our properties; our keys checked once
    check_config_files(config_file_list)
    config = BetConfig(model, dataset, config_file_list, config_dict)
    run = RunSettings.from_config(config)
    settings = method_settings(config)  # a bad method key fails here, before any data is read
    check_dataset_present(config)
    if run.tune_allocator:
        keep_freed_memory()
    method = get_method(run.method)
    plan = RunPlan(config, run, method, settings, saved)
    with deterministic_algorithms(config["reproducibility"]):
        results = _run(plan, started)
    return results if len(run.sparsities) > 1 else results[0]


@dataclass
class RunPlan:
    """What every budget of a run shares.

    Attributes:
        config (Config): RecBole's config.
        run (RunSettings): the run's general keys.
        method (Method): the method, made once.
        settings (CheckedSettings | None): the method's own keys.
        saved (bool): keep checkpoints (and test the best epoch).
        splits (tuple | None): RecBole's (train, valid, test) loaders, made once; None in a ray task's copy.
        resume (RunState | None): the unfinished run's kept units (:mod:`recbole_bet.resume`); None without checkpoints.
        shared (dict): what the method computed for an earlier budget that does not depend on the budget.
    """

    config: object
    run: RunSettings
    method: object
    settings: object
    saved: bool
    splits: tuple | None = None
    resume: RunState | None = None
    shared: dict = field(default_factory=dict)


def _run(plan: RunPlan, started: float) -> list[dict]:
    """:func:`run_recbole_bet` after its configuration: data once, then every budget, then the run's result files."""
    config, run = plan.config, plan.run
    init_seed(config["seed"], config["reproducibility"])
    # RecBole creates ./log/<model> and the checkpoint folder by "if not exists: makedirs", which
    # fails when two runs start side by side (a sweep): create them here, race-free.
    os.makedirs(os.path.join("log", config["model"]), exist_ok=True)
    if config["checkpoint_dir"]:
        os.makedirs(config["checkpoint_dir"], exist_ok=True)
    init_logger(config)
    logger = getLogger()
    logger.info(sys.argv)
    logger.info(config)

    # ---- 2. this run's own state in the checkpoint folder, held until the run ends (a second process of the same run
    # stops here), then the data: RecBole's loading, splitting and negative sampling
    plan.resume = RunState.open(config, run.fresh, started) if plan.saved else None
    try:
        data = create_dataset(config)
        logger.info(data)
        plan.splits = data_preparation(config, data)

        # ---- 3-8. each budget in turn, on this one split (run_budgets)
        results = run_budgets(plan, started)
    except (ConfigError, BudgetError):
        if plan.resume:  # bad input is not a run to continue: the same command would fail again
            plan.resume.finish()
        raise
    except BaseException:
        if plan.resume:  # interrupted (Ctrl-C, an error): what was kept stays for the rerun
            plan.resume.release()
        raise
    if len(results) > 1 and run.result_file:
        write_result(results, run.result_file)
        logger.info(set_color("results of every budget written to", "blue") + f" {run.result_file}")
    if plan.resume:
        plan.resume.finish()
    return results


def budget_key(sparsity: float) -> str:
    """A budget's name among the units of an unfinished run, e.g. ``sparsity0.9``."""
    return f"sparsity{sparsity:g}"


def run_budgets(plan: RunPlan, started: float) -> list[dict]:
    """Every budget of the run in turn; what a method does whatever the budget, it does once (``plan.shared``); a
    budget that a killed run of this command finished is read back. With ``ray``, once a budget has run here (and
    computed what the method shares between budgets), the rest run as ray tasks (:func:`ray_budgets`), unless the
    method's budgets depend on each other."""
    logger, resume = getLogger(), plan.resume
    results = {}
    fan_out = bool(plan.config["ray"]) and plan.method.budgets_independent(plan.settings)
    ran_here = False
    for sparsity in plan.run.sparsities:
        done = resume.load(f"{budget_key(sparsity)}/result") if resume else None
        if done is not None:
            logger.info(set_color(f"sparsity {sparsity}", "green") + f": finished by an earlier run of this command ({resume.folder})")
            results[sparsity] = done
            continue
        if fan_out and ran_here:
            continue  # one budget ran here and computed the shared phases: the rest go to ray
        ran_here = True
        results[sparsity] = run_budget(plan, sparsity, started)
        started = time.time()
        if resume:
            resume.save(f"{budget_key(sparsity)}/result", results[sparsity])
            resume.next_budget(started)  # forget the budget's kept epochs, start the next budget's clock
    todo = [s for s in plan.run.sparsities if s not in results]
    for sparsity, result in zip(todo, ray_budgets(plan, todo) if todo else ()):
        logger.info(set_color(f"sparsity {sparsity}", "green") + f": finished in a ray task in {result['seconds']:.0f} s")
        results[sparsity] = result
        if resume:
            resume.save(f"{budget_key(sparsity)}/result", result)
    return [results[s] for s in plan.run.sparsities]


def budget_task(plan: RunPlan, sparsity: float, threads: int) -> dict:
    """One budget of a run of several in another process (a ray task): the run's data rebuilt from its config, then
    the budget as the run would have run it, from what the method shares between budgets (``plan.shared``)."""
    started = time.time()
    # BET's retrainings run here, one by one (the same result: each has its own seed); as nested ray tasks they
    # could wait forever for the GPU this task holds
    plan.config["ray"] = False
    with task_splits(plan.config, threads) as splits:
        return run_budget(replace(plan, splits=splits), sparsity, started)


def ray_budgets(plan: RunPlan, sparsities: list):
    """Submit budgets as ray tasks (one CPU, or one GPU on a GPU run); yields their results in order. Each task
    writes its own result file and table, on this machine's file system (or a cluster's shared one)."""
    import ray

    task = ray_task(plan.config, budget_task)
    sent = ray.put(replace(plan, splits=None))  # the loaders are rebuilt in the task
    refs = [task.remote(sent, sparsity, torch.get_num_threads()) for sparsity in sparsities]
    for ref in refs:
        yield ray.get(ref)


def _pretrained_start(config, net, budget, splits, resume) -> dict:
    """``start: pretrained``: the full table trained to convergence (RecBole's early stopping), its weights."""
    Action.full(budget).apply_to(net)
    trainer = BudgetTrainer(config, net)
    trainer.fit_phase("start", splits[0], splits[1], progress=(resume, "start-pretrained-epochs") if resume else None)
    return copy.deepcopy(net.state_dict())


def fresh_backbone(config, splits):
    """The backbone with masked tables (or RecBole's own model, for method=recbole), with the seed's initial weights,
    and every loader's shuffling generator seeded as when it was made."""
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    for loader in splits:
        loader.generator.manual_seed(config["seed"])
    return config.model_class(config, splits[0]._dataset).to(config["device"])


def run_budget(plan: RunPlan, sparsity: float, started: float) -> dict:
    """One budget: a fresh backbone, the budget, the method, the test, the export, the result."""
    logger, config, resume = getLogger(), plan.config, plan.resume
    run = plan.run.for_sparsity(sparsity)
    train_data, valid_data, test_data = plan.splits

    # ---- 3. the backbone, with masked tables (or RecBole's own model, for method=recbole)
    net = fresh_backbone(config, plan.splits)
    user_frequency, item_frequency = training_frequencies(train_data._dataset, config)

    # ---- 4. the budget (none for RecBole's own models, the reference rows)
    budget = make_run_budget(plan.method, run, net, len(user_frequency), len(item_frequency))
    if budget:
        in_bytes = f"{budget.bytes} bytes at {budget.value_dtype}: " if budget.unit == "bytes" else ""
        logger.info(set_color("budget", "blue") + f": {in_bytes}{budget.params} parameters (sparsity {budget.sparsity}, "
                    f"d_max {budget.d_max}, {budget.n_users} users + {budget.n_items} items)")
    rng = np.random.default_rng(config["seed"])
    if run.start == "pretrained":  # the ablation's common start: the trained full table, once per run
        net.load_state_dict(budget_free_phase(plan.shared, resume, "start_pretrained", plan.splits[:2], rng,
                                              lambda: _pretrained_start(config, net, budget, plan.splits, resume)))

    # ---- 5. the method fills the budget and trains the model under it (train and valid splits only)
    context = RunContext(config, plan.settings, net, budget, user_frequency, item_frequency, rng, train_data,
                         valid_data, plan.saved, plan.shared, resume, budget_key(sparsity))
    outcome = plan.method.run(context)
    if run.ptq and outcome.layout is not None:  # post-training quantisation: the finished table, as it will be stored
        net.set_value_dtype(run.value_dtype)
    logger.info(net)
    used = used_params(net, outcome.layout, budget)

    # ---- 6. test, once, on the chosen model
    test_result = outcome.trainer.evaluate(test_data, load_best_model=False, show_progress=config["show_progress"])
    logger.info(set_color("best valid ", "yellow") + f": {dict(outcome.valid or {})}")
    logger.info(set_color("test result", "yellow") + f": {dict(test_result)}")

    # ---- 7. the compressed table, next to RecBole's checkpoint
    export = None
    if run.export_table and outcome.layout is not None:
        export = export_table(net, Path(outcome.checkpoint or outcome.trainer.saved_model_file).with_suffix(".table.npz"))
        logger.info(set_color("exported table", "blue") + f": {export}")
    used_bytes = stored_bytes(net, outcome.layout, budget, export)

    # ---- 8. the result file, and beside it the model package (recbole_bet.serve recommends from it)
    seconds = time.time() - started + (resume.before if resume else 0.0)  # with the killed runs' time on this budget
    result = result_record(config, run, budget, (len(user_frequency), len(item_frequency)), used, outcome, test_result,
                           export, seconds, used_bytes)
    result["package"] = None
    if outcome.layout is not None:
        beside = run.result_file or outcome.checkpoint or outcome.trainer.saved_model_file
        result["package"] = write_package(net, train_data._dataset, result, package_path(beside), valid=valid_data._dataset)["path"]
        logger.info(set_color("model package", "blue") + f": {result['package']}")
    if run.result_file:
        write_result(result, run.result_file)
        logger.info(set_color("result written to", "blue") + f" {run.result_file}")
    return result


def make_run_budget(method, run: RunSettings, net, n_users: int, n_items: int):
    """The budget of one sparsity: the method's, in parameters (the paper) or, with ``budget_unit: bytes``, in the
    bytes of the table the export would write for the method's layout at ``value_dtype``; None for RecBole's models."""
    d_max = getattr(net, "d_max", None)
    if run.budget_unit == "bytes":
        storage = table_storage(net, method.layout_kind, method.shared_partitions)
        return method.make_byte_budget(run.sparsity, d_max, n_users, n_items, storage, run.value_dtype)
    budget = method.make_budget(run.sparsity, d_max, n_users, n_items)
    return replace(budget, value_dtype=run.value_dtype) if budget is not None else None


def stored_bytes(net, layout, budget, export: dict | None) -> int | None:
    """The bytes of the exported table (written to memory when ``export_table`` is off); None for RecBole's models.
    A byte budget's file must fit it: BudgetError otherwise."""
    if layout is None:
        return None
    size = export["bytes"] if export else export_table(net, io.BytesIO())["bytes"]
    if budget.unit == "bytes" and size > budget.bytes:
        raise BudgetError(f"the exported table takes {size} bytes, over the byte budget of {budget.bytes}")
    getLogger().info(set_color("used", "blue") + f": {size} bytes at {net.value_dtype}"
                     + (f" of {budget.bytes}" if budget.unit == "bytes" else ""))
    return size


def used_params(net, layout, budget) -> int:
    """The embedding parameters the final model uses. A budgeted model's layout must fit the budget, whatever the
    method did on the way, and its tables must keep what the layout says (BudgetError otherwise)."""
    if layout is None:
        used = embedding_params(net)
    else:
        layout.check(budget)
        kept = sum(net.get_submodule(name).kept_params for name in net.budget_tables)
        if kept != layout.params:  # the tables themselves, not only the layout that describes them
            raise BudgetError(f"the model's tables keep {kept} parameters, its layout says {layout.params}")
        used = layout.params
    getLogger().info(set_color("used", "blue") + f": {used} embedding parameters"
                     + (f" of {budget.params}; sizes {layout.summary()}" if layout is not None else ""))
    return used


def result_record(config, run: RunSettings, budget, rows: tuple[int, int], used: int, outcome, test_result: dict,
                  export: dict | None, seconds: float, used_bytes: int | None = None) -> dict:
    """The result file of one budget: what ran, what it used, its metrics, the method's own records."""
    layout, best_valid = outcome.layout, outcome.valid
    result = {
        "model": config["model"],
        "dataset": config["dataset"],
        "method": run.method,
        "sparsity": budget.sparsity if budget else 0.0,
        "seed": config["seed"],
        "d_max": budget.d_max if budget else config["embedding_size"],
        "n_users": rows[0],
        "n_items": rows[1],
        "budget_params": budget.params if budget else used,
        "bytes": export["bytes"] if export else None,
        "used_params": used,
        "budget_unit": budget.unit if budget else "params",
        "value_dtype": getattr(layout, "value_dtype", None) or run.value_dtype,  # BET searching precision: the winner's
        "ptq": run.ptq,
        "budget_bytes": budget.bytes if budget else None,
        "used_bytes": used_bytes,
        "sizes": layout.summary() if layout is not None else None,
        "valid": {k: float(v) for k, v in (best_valid or {}).items()},
        "test": {k: float(v) for k, v in test_result.items()},
        "checkpoint": outcome.checkpoint,
        "export": export,
        "seconds": round(seconds, 2),
        "measured": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": machine(),
        "threads": torch.get_num_threads(),  # results are bit for bit the same at the same count (recbole_bet.threads)
        "protocol": {
            "learner": config["learner"],
            "learning_rate": config["learning_rate"],
            "train_batch_size": config["train_batch_size"],
            "epochs": config["epochs"],
            "stopping_step": config["stopping_step"],
            "valid_metric": config["valid_metric"],
            "split": config["eval_args"]["split"],
            "embedding_size": config["embedding_size"],
            # NeuMF trains with either loss (RecBole's BCE or the paper's BPR): a result says which
            **({"neumf_loss": config["neumf_loss"] or "bce"} if config["model"] == "NeuMF" else {}),
        },
    }
    result["curve"] = outcome.curve  # the validation curve of the final model's training (BET: the winning retraining)
    result.update(outcome.extra)  # the method's own records (BET: its search and retrainings)
    return result


def machine() -> str:
    """This machine in one line: cores and CPU model, memory, GPU, torch, OS."""
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB, {device}, torch {torch.__version__}, {platform.system()}"


def write_result(result: dict | list, path) -> None:
    """Write JSON atomically: a temporary file, then a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, lambda tmp: tmp.write_text(json.dumps(result, indent=2)))


def main(argv=None) -> int:
    """Command line: ``--model``, ``--dataset``, ``--config_files``; every other ``--key=value`` goes to RecBole."""
    parser = argparse.ArgumentParser(description="Budgeted embedding tables for RecBole (BET, WSDM 2024).")
    parser.add_argument("--model", "-m", default="LightGCN", help="LightGCN, NGCF or NeuMF (alias NCF)")
    parser.add_argument("--dataset", "-d", default="ml-100k", help="ml-100k (bundled), gowalla, yelp2018, ...")
    parser.add_argument("--config_files", default=None, help="space-separated RecBole property files")
    parser.add_argument("--list_unfinished", nargs="?", const="True", default="False",
                        help="list the unfinished runs of --checkpoint_dir (default saved), with their commands, and exit")
    args, rest = parser.parse_known_args(argv)
    if args.list_unfinished.lower() in ("true", "1", "yes"):
        folders = [a.split("=", 1)[1] for a in rest if a.startswith("--checkpoint_dir=")]
        print(list_text(folders[-1] if folders else "saved"))
        return 0
    files = args.config_files.split() if args.config_files else None
    try:
        check_recbole_arguments(rest)
        result = run_recbole_bet(args.model, args.dataset, config_file_list=files)
    except (ConfigError, BudgetError, UnsafeFileError) as error:
        print(f"run_recbole_bet: error: {error}", file=sys.stderr)
        return 2
    if isinstance(result, list):
        print(budgets_table(result))
    else:
        print(summary_lines(result))
    return 0


def check_recbole_arguments(arguments: list[str]) -> None:
    """RecBole reads ``--key=value`` with exactly one ``=``; any other ``--`` argument it drops with
    only a log warning (a ``--result_file`` whose path holds ``=`` would be lost). Refuse it instead."""
    for argument in arguments:
        if argument.startswith("--") and argument.count("=") != 1:
            raise ConfigError(f"argument {argument!r} is not --key=value with exactly one '='; RecBole would ignore it")


def budgets_table(results: list[dict]) -> str:
    """Several budgets side by side, one Markdown row each: what a practitioner picks a point from."""
    first = results[0]
    lines = [
        f"{first['model']} on {first['dataset']}, method={first['method']}, seed={first['seed']}",
        "",
        "| sparsity | parameters used / budget | table bytes | R@20 | N@20 | s |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        size = f"{r['bytes']:,}" if r.get("bytes") else "-"
        lines.append(
            f"| {r['sparsity']} | {r['used_params']:,} / {r['budget_params']:,} | {size} | {r['test'].get('recall@20', float('nan')):.4f} "
            f"| {r['test'].get('ndcg@20', float('nan')):.4f} | {r['seconds']:.0f} |"
        )
    return "\n".join(lines)


def summary_lines(result: dict) -> str:
    metrics = "  ".join(f"{k}={v:.4f}" for k, v in result["test"].items())
    lines = [
        f"{result['model']} on {result['dataset']}, method={result['method']}, sparsity={result['sparsity']}, seed={result['seed']}",
        f"budget: {result['budget_params']} parameters; used: {result['used_params']}",
        *([f"bytes ({result['value_dtype']}): budget {result['budget_bytes']}; used {result['used_bytes']}"]
          if result.get("budget_unit") == "bytes" else []),
        f"test: {metrics}",
    ]
    if result["export"]:
        lines.append(f"table: {result['export']['path']} ({result['export']['bytes']} bytes)")
    if result.get("package"):
        lines.append(f"package: {result['package']} (python -m recbole_bet.serve {result['package']} --users USER --k 10)")
    return "\n".join(lines)
