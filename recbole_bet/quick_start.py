"""One budgeted run, start to end: config, data, budget, action, training, test, export.

Our own pipeline rather than ``recbole.quick_start`` (which imports ray at
import time and builds RecBole's unmasked models).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import sys
import time
from contextlib import contextmanager
from logging import getLogger
from pathlib import Path

import numpy as np
import torch
from recbole.data import create_dataset, data_preparation
from recbole.utils import init_logger, init_seed, set_color

from recbole_bet.allocator import keep_freed_memory
from recbole_bet.budget import Action
from recbole_bet.config import BetConfig, RunSettings, check_config_files, check_dataset_present, method_settings
from recbole_bet.errors import BudgetError, ConfigError
from recbole_bet.export import export_table
from recbole_bet.known_warnings import silence_known_warnings
from recbole_bet.methods import RunContext, get_method
from recbole_bet.resume import RunState, write_atomically
from recbole_bet.trainer import BudgetTrainer, budget_free_phase


def training_frequencies(train_dataset, config) -> tuple[np.ndarray, np.ndarray]:
    """Interactions per user and per item in the training split only, padding excluded.

    Returns:
        (user_frequency ``[n_users]``, item_frequency ``[n_items]``), int64.
    """
    counts = []
    for field in (config["USER_ID_FIELD"], config["ITEM_ID_FIELD"]):
        ids = train_dataset.inter_feat[field]
        counts.append(torch.bincount(ids, minlength=train_dataset.num(field))[1:].numpy())
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
        config_dict (dict): more keys, e.g. ``{"sparsity": 0.9, "method": <a name of recbole_bet.methods>}``.
        saved (bool): keep RecBole's checkpoint (and test the best epoch, not the last).

    Returns:
        dict: the run's results, as written to ``result_file`` (see the README); with several sparsities
        (``"sparsity": [0.8, 0.9]``), a list of them, one per budget in the order given.

    Raises:
        ConfigError, BudgetError: bad input, before any training.
    """
    started = time.time()
    silence_known_warnings()

    # ---- 1. configuration: RecBole's Config with our properties; our keys checked once
    check_config_files(config_file_list)
    config = BetConfig(model, dataset, config_file_list, config_dict)
    settings = RunSettings.from_config(config)
    own = method_settings(config)  # a bad method key fails here, before any data is read
    check_dataset_present(config)
    if settings.tune_allocator:
        keep_freed_memory()
    with deterministic_algorithms(config["reproducibility"]):
        results = _run(config, settings, own, saved, started)
    return results if len(settings.sparsities) > 1 else results[0]


@contextmanager
def deterministic_algorithms(enabled: bool):
    """torch's deterministic algorithms while a run with RecBole's ``reproducibility: True`` lasts.

    RecBole's ``init_seed`` only sets cuDNN's flags. On a CPU with more than one thread, torch
    sums the gradient of an indexing with repeated indices (``user_all_embeddings[user]`` in
    RecBole's losses) by atomic adds, in whatever order the threads reach them: two runs of one
    seed then differ in the last bits from the first batch on, and may stop at other epochs. The
    deterministic kernels add in index order, no slower within this machine's noise (gowalla-s).
    ``warn_only``: an operation without a deterministic kernel (some of RecBole's other models, on
    a GPU) warns instead of failing. The previous setting is restored afterwards.
    """
    previous = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS's own condition, on a GPU
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])


def _run(config, settings: RunSettings, own, saved: bool, started: float) -> list[dict]:
    """:func:`run_recbole_bet` after its configuration: data once, then per budget training, test, export."""
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

    # ---- 2. data: RecBole's loading, splitting and negative sampling
    data = create_dataset(config)
    logger.info(data)
    train_data, valid_data, test_data = data_preparation(config, data)

    # ---- 3-8. each budget in turn, on this one split; what a method does whatever the budget, it does once;
    # a budget an earlier, killed run of this command finished is not run again
    resume = RunState.open(config, settings.fresh, started) if saved else None
    try:
        results = _run_budgets(config, settings, own, (train_data, valid_data, test_data), saved, started, resume)
    except (ConfigError, BudgetError):
        if resume:  # bad input is not a run to continue: the same command would fail again
            resume.finish()
        raise
    if len(results) > 1 and settings.result_file:
        write_result(results, settings.result_file)
        logger.info(set_color("results of every budget written to", "blue") + f" {settings.result_file}")
    if resume:
        resume.finish()
    return results


def _run_budgets(config, settings: RunSettings, own, splits, saved: bool, started: float, resume) -> list[dict]:
    """Every budget of the run in turn; one that a killed run of this command finished is read back. With
    ``ray``, once a budget has run here (and computed what the method shares between budgets), the rest run as
    ray tasks (:func:`recbole_bet.fanout.ray_budgets`), unless the method's budgets depend on each other."""
    logger = getLogger()
    shared: dict = {}
    results = {}
    fan_out = bool(config["ray"]) and get_method(settings.method).budgets_independent(own)
    ran_here = False
    for sparsity in settings.sparsities:
        key = f"sparsity{sparsity:g}"
        done = resume.load(f"{key}/result") if resume else None
        if done is not None:
            logger.info(set_color(f"sparsity {sparsity}", "green") + f": finished by an earlier run of this command ({resume.folder})")
            results[sparsity] = done
            continue
        if fan_out and ran_here:
            continue  # one budget ran here and computed the shared phases: the rest go to ray
        ran_here = True
        results[sparsity] = _run_budget(config, settings.for_sparsity(sparsity), own, splits, shared, saved, started, resume, key)
        started = time.time()
        if resume:
            resume.save(f"{key}/result", results[sparsity])
            resume.next_budget(started)  # forget the budget's kept epochs, start the next budget's clock
    todo = [(s, f"sparsity{s:g}", settings.for_sparsity(s)) for s in settings.sparsities if s not in results]
    if todo:
        from recbole_bet.fanout import ray_budgets

        for (sparsity, key, _), result in zip(todo, ray_budgets(config, own, todo, shared, saved, resume)):
            logger.info(set_color(f"sparsity {sparsity}", "green") + f": finished in a ray task in {result['seconds']:.0f} s")
            results[sparsity] = result
            if resume:
                resume.save(f"{key}/result", result)
    return [results[s] for s in settings.sparsities]


def _pretrained_start(config, net, budget, splits, resume) -> dict:
    """``start: pretrained``: the full table trained to convergence (RecBole's early stopping), its weights."""
    Action.full(budget).apply_to(net)
    trainer = BudgetTrainer(config, net)
    trainer.fit_phase("start", splits[0], splits[1], progress=(resume, "start-pretrained-epochs") if resume else None)
    return copy.deepcopy(net.state_dict())


def _run_budget(config, settings: RunSettings, own, splits, shared: dict, saved: bool, started: float, resume=None, key="") -> dict:
    """One budget: a fresh backbone (the seed's initial weights), the method, the test, the export, the result."""
    logger = getLogger()
    train_data, valid_data, test_data = splits

    # ---- 3. the backbone, with masked tables (or RecBole's own model, for method=recbole)
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    for loader in splits:  # RecBole's loaders shuffle with their own generator, seeded when made: as new
        loader.generator.manual_seed(config["seed"])
    model_class = config["model"]
    net = config.model_class(config, train_data._dataset).to(config["device"])
    user_frequency, item_frequency = training_frequencies(train_data._dataset, config)
    n_users, n_items = len(user_frequency), len(item_frequency)

    # ---- 4. the budget (none for RecBole's own models, the reference rows)
    method = get_method(settings.method)
    budget = method.make_budget(settings.sparsity, getattr(net, "d_max", None), n_users, n_items)
    if budget:
        logger.info(
            set_color("budget", "blue") + f": {budget.params} parameters (sparsity {budget.sparsity}, d_max {budget.d_max}, "
            f"{n_users} users + {n_items} items)"
        )
    rng = np.random.default_rng(config["seed"])
    if settings.start == "pretrained":  # the ablation's common start: the trained full table, once per run
        net.load_state_dict(budget_free_phase(shared, resume, "start_pretrained", splits[:2], rng,
                                              lambda: _pretrained_start(config, net, budget, splits, resume)))

    # ---- 5. the method fills the budget and trains the model under it (train and valid splits only)
    context = RunContext(
        config, settings, own, net, budget, user_frequency, item_frequency, rng, train_data, valid_data, saved, shared, resume, key
    )
    outcome = method.run(context)
    trainer, layout, best_valid, checkpoint = outcome.trainer, outcome.layout, outcome.valid, outcome.checkpoint
    logger.info(net)
    if layout is not None:
        layout.check(budget)  # every method's final model, whatever it did on the way ...
        kept = sum(net.get_submodule(name).kept_params for name in net.budget_tables)
        if kept != layout.params:  # ... and the tables themselves, not only the layout that describes them
            raise BudgetError(f"the model's tables keep {kept} parameters, its layout says {layout.params}")
    used = layout.params if layout is not None else embedding_params(net)
    logger.info(set_color("used", "blue") + f": {used} embedding parameters" + (f" of {budget.params}; sizes {layout.summary()}" if layout is not None else ""))

    # ---- 6. test, once, on the chosen model
    test_result = trainer.evaluate(test_data, load_best_model=False, show_progress=config["show_progress"])
    logger.info(set_color("best valid ", "yellow") + f": {dict(best_valid or {})}")
    logger.info(set_color("test result", "yellow") + f": {dict(test_result)}")

    # ---- 7. the compressed table, next to RecBole's checkpoint
    export = None
    if settings.export_table and layout is not None:
        table_path = Path(checkpoint or trainer.saved_model_file).with_suffix(".table.npz")
        export = export_table(net, table_path)
        logger.info(set_color("exported table", "blue") + f": {export}")

    result = {
        "model": model_class,
        "dataset": config["dataset"],
        "method": settings.method,
        "sparsity": budget.sparsity if budget else 0.0,
        "seed": config["seed"],
        "d_max": budget.d_max if budget else config["embedding_size"],
        "n_users": n_users,
        "n_items": n_items,
        "budget_params": budget.params if budget else used,
        "bytes": export["bytes"] if export else None,
        "used_params": used,
        "sizes": layout.summary() if layout is not None else None,
        "valid": {k: float(v) for k, v in (best_valid or {}).items()},
        "test": {k: float(v) for k, v in test_result.items()},
        "checkpoint": checkpoint,
        "export": export,
        # with an unfinished run, the killed runs' time on this budget too (recbole_bet.resume)
        "seconds": round(time.time() - started + (resume.before if resume else 0.0), 2),
        "measured": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": machine(),
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
            **({"neumf_loss": config["neumf_loss"] or "bce"} if model_class == "NeuMF" else {}),
        },
    }
    result["curve"] = outcome.curve  # the validation curve of the final model's training (BET: the winning retraining)
    result.update(outcome.extra)  # the method's own records (BET: its search and retrainings)
    if settings.result_file:
        write_result(result, settings.result_file)
        logger.info(set_color("result written to", "blue") + f" {settings.result_file}")
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
    args, rest = parser.parse_known_args(argv)
    files = args.config_files.split() if args.config_files else None
    try:
        check_recbole_arguments(rest)
        result = run_recbole_bet(args.model, args.dataset, config_file_list=files)
    except (ConfigError, BudgetError) as error:
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
        f"test: {metrics}",
    ]
    if result["export"]:
        lines.append(f"table: {result['export']['path']} ({result['export']['bytes']} bytes)")
    return "\n".join(lines)
