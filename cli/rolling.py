"""``python main.py rolling``: yearly rolling retraining x seeds, stitched into one factor.

Window k trains on data before year k (expanding from the data start, or ``train_years``
long), validates on the last ``val_months`` before year k (the DataModule purges
horizon + 1 days between train / validation / test), and tests on calendar year k.
Every (window, seed) cell runs the ordinary ``fit`` CLI with the same model config in
``<out_dir>/<name>/window=<year>/seed=<seed>/``; a finished cell (``result.json``) is
skipped on rerun, an interrupted one resumes from its ``checkpoints/last.ckpt``.
"""

from __future__ import annotations

import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
import yaml
from jsonargparse import ArgumentParser
from rich.console import Console
from rich.progress import Progress

from cli.cell import Cell, run_cell
from cli.rolling_report import experiment_summary

console = Console()


class RollingExperiment:
    """One model config, every yearly window, every seed.

    Args:
        name: experiment name (directory and W&B group); None = the last config's file stem.
        test_years: calendar years to predict out of sample, one window each.
        seeds: training seeds; the experiment factor averages their per-day z-scores.
        val_months: validation = the last months before the test year.
        train_years: sliding window length in years (including validation); None = expanding.
        train_start: first training date for expanding windows (ISO); None = data start.
        workers: cells run in parallel processes (each gets cores / workers threads).
        out_dir: root directory of experiments.
    """

    def __init__(self, name: str | None = None, test_years: list[int] = [2017, 2018, 2019],
                 seeds: list[int] = [0, 42, 3407], val_months: int = 12,
                 train_years: int | None = None, train_start: str | None = None,
                 workers: int = 1, out_dir: str = "runs/experiments") -> None:
        if not 1 <= val_months <= 24 or workers < 1 or not test_years or not seeds:
            raise ValueError("need 1 <= val_months <= 24, workers >= 1, test_years and seeds")
        self.name, self.test_years, self.seeds = name, sorted(test_years), list(seeds)
        self.val_months, self.train_years, self.train_start = val_months, train_years, train_start
        self.workers, self.out_dir = workers, out_dir

    def cells(self, root: Path) -> list[Cell]:
        out = []
        for year in self.test_years:
            v_year, v_month = divmod(year * 12 - self.val_months, 12)
            start = f"{year - self.train_years}-01-01" if self.train_years else self.train_start
            for seed in self.seeds:
                out.append(Cell(year=year, seed=seed, train_start=start,
                                val_start=f"{v_year}-{v_month + 1:02d}-01",
                                test_start=f"{year}-01-01", test_end=f"{year}-12-31",
                                directory=str(root / f"window={year}" / f"seed={seed}")))
        return out

    def run(self, fit_args: list[str]) -> dict:
        root = Path(self.out_dir) / (self.name or _config_stem(fit_args))
        _check_same_experiment(root, {"fit_args": fit_args, **vars(self)})
        cells = self.cells(root)
        results = self._run_cells(cells, fit_args)
        return experiment_summary(root, cells, results, fit_args, self.seeds, console)

    def _run_cells(self, cells: list[Cell], fit_args: list[str]) -> list[dict]:
        if self.workers == 1:
            results = []
            for i, cell in enumerate(cells, 1):
                console.rule(f"[{i}/{len(cells)}] window {cell.year} seed {cell.seed}")
                results.append(run_cell(cell, fit_args))
            return results
        threads = max(1, (os.cpu_count() or 1) // self.workers)
        args = [*fit_args, "--trainer.enable_progress_bar=false"]
        results: dict[str, dict] = {}
        with ProcessPoolExecutor(self.workers, mp_context=get_context("spawn")) as pool, \
                Progress(console=console) as progress:
            task = progress.add_task("windows x seeds", total=len(cells))
            futures = {pool.submit(_cell_in_process, c, args, threads): c for c in cells}
            for fut in as_completed(futures):
                results[futures[fut].directory] = fut.result()
                progress.advance(task)
        return [results[c.directory] for c in cells]


def _cell_in_process(cell: Cell, fit_args: list[str], threads: int) -> dict:
    import torch

    from cli.runtime import tune_malloc

    tune_malloc()
    torch.set_num_threads(threads)
    return run_cell(cell, fit_args)


def _config_stem(fit_args: list[str]) -> str:
    """Default experiment name: the stem of the last config that defines ``model``
    (``--config configs/gru_ic.yaml --config configs/cn_shared.yaml`` -> ``gru_ic``)."""
    configs = [fit_args[i + 1] for i, a in enumerate(fit_args[:-1]) if a == "--config"]
    configs += [a.split("=", 1)[1] for a in fit_args if a.startswith("--config=")]
    with_model = [c for c in configs if _defines_model(c)]
    return Path((with_model or configs)[-1]).stem if configs else "experiment"


def _defines_model(config: str) -> bool:
    try:
        return "model" in (yaml.safe_load(Path(config).read_text()) or {})
    except (OSError, yaml.YAMLError):
        return False


def _check_same_experiment(root: Path, spec: dict) -> None:
    """Refuse to mix cells of different settings under one experiment directory."""
    path = root / "experiment.json"
    text = json.dumps(spec, indent=1, sort_keys=True, default=str)
    if path.exists() and path.read_text() != text:
        raise ValueError(f"{root} holds an experiment with other settings ({path}); "
                         "choose another --rolling.name or delete the directory")
    root.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def split_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """Split ``--rolling.*`` options (and --help) from the arguments passed to ``fit``."""
    rolling, fit, i = [], [], 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("--rolling.") or arg in ("-h", "--help"):
            rolling.append(arg)
            if "=" not in arg and arg.startswith("--rolling.") and i + 1 < len(argv):
                rolling.append(argv[i + 1])
                i += 1
        else:
            fit.append(arg)
        i += 1
    return rolling, fit


def rolling_main(argv: list[str] | None = None) -> dict:
    """Entry point: ``python main.py rolling [--rolling.*] --config X.yaml [fit options]``."""
    argv = sys.argv[2:] if argv is None else argv
    rolling_args, fit_args = split_args(argv)
    parser = ArgumentParser(prog="main.py rolling", description=__doc__)
    parser.add_class_arguments(RollingExperiment, "rolling")
    cfg = parser.parse_args(rolling_args)
    experiment = parser.instantiate_classes(cfg).rolling
    return experiment.run(fit_args)


__all__ = ["RollingExperiment", "rolling_main", "split_args"]
