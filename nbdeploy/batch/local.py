"""``nbdeploy.batch.run``: run a v1 batch entry script over files or tables with a pool of local processes."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbdeploy.batch.config import ParallelRunConfig
from nbdeploy.batch.journal import Journal
from nbdeploy.batch.plan import FILES, Plan, make_plan, resolve_inputs
from nbdeploy.batch.pool import WorkerPool
from nbdeploy.batch.progress import BatchProgress, default_progress
from nbdeploy.batch.result import BatchResult
from nbdeploy.batch.runner import Limits, run_plan
from nbdeploy.batch.user_shims import ENV_LOG_DIR, ENV_OUTPUT_DIR
from nbdeploy.errors import InvalidInput

if TYPE_CHECKING:
    import threading

    from nbdeploy.builders.bundle import Bundle
    from nbdeploy.registry import Model
    from nbdeploy.workspace import Workspace

_SERVICE_VARS = (
    "AZUREML_ENTRY_SCRIPT",
    "AZUREML_MODEL_DIR",
    "AML_APP_ROOT",
    "AZUREML_SOURCE_DIRECTORY",
    "WORKER_COUNT",
)


def run(
    entry_script: str | os.PathLike[str] | None = None,
    input: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,  # noqa: A002 - v1 names it input
    output: str | os.PathLike[str] | None = None,
    *,
    config: ParallelRunConfig | None = None,
    models: Sequence[Model | str] = (),
    input_format: str | None = None,
    processes: int | None = None,
    workspace: Workspace | str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    journal: bool = True,
    show_output: bool = False,
    progress: BatchProgress | None = None,
    name: str | None = None,
    stop: threading.Event | None = None,
    shard: tuple[int, int] | None = None,
    **config_kwargs: Any,
) -> BatchResult:
    """Run ``entry_script``'s ``init()`` once per worker and ``run(mini_batch)`` over ``input``; write ``output``.

    ``input``: files, folders or globs. ``input_format``: ``files`` (run() gets lists of paths), ``csv``,
    ``parquet`` or ``jsonl`` (run() gets DataFrames); inferred from file suffixes when omitted. Other keyword
    arguments are :class:`ParallelRunConfig` fields (``mini_batch_size``, ``error_threshold``, ``output_action``,
    ...), or pass ``config``. ``processes`` sets ``process_count_per_node``. ``models`` are laid out under
    ``AZUREML_MODEL_DIR`` as for services. Rerunning the same job into the same ``output`` resumes it.
    ``shard=(i, n)`` runs only the i-th of n contiguous parts of the plan, into ``output/shard-<i>``.

    Returns a :class:`BatchResult`; raises :class:`~nbdeploy.batch.errors.BatchFailed` when failures pass a
    threshold or init() fails, :class:`~nbdeploy.batch.errors.BatchStopped` on Ctrl-C.
    """
    if config is None:
        if entry_script is None:
            raise InvalidInput("entry_script: give the batch script (or config=ParallelRunConfig(...))")
        config = ParallelRunConfig.from_kwargs(entry_script=os.fspath(entry_script), **config_kwargs)
    elif config_kwargs or entry_script is not None:
        config = config.with_changes(
            **({"entry_script": os.fspath(entry_script)} if entry_script else {}), **config_kwargs
        )
    if processes is not None:
        config = config.with_changes(process_count_per_node=processes)
    if input is None or output is None:
        raise InvalidInput("input and output are required: the files/tables to score and the output folder")
    out = Path(output)
    paths = [p for p in resolve_inputs(input) if not _inside(p, out)]  # an output folder inside an input folder
    if not paths:
        raise InvalidInput(f"input: no files outside the output folder {out}")
    plan = make_plan(paths, input_format, config.batch_size, config.partition_keys)
    if shard is not None:
        plan = plan.shard(*shard)
        out = out / f"shard-{shard[0]}"
    return run_local(
        config,
        plan,
        out,
        models=models,
        workspace=workspace,
        overwrite=overwrite,
        use_journal=journal,
        progress=progress or default_progress(show_output),
        name=name or Path(config.entry_script).stem,
        stop=stop,
    )


def _inside(path: str, folder: Path) -> bool:
    return Path(path).resolve().is_relative_to(folder.resolve())


def prepare_bundle(
    config: ParallelRunConfig, models: Sequence[Model | str], workspace: Any
) -> tuple[Bundle, Workspace]:
    """The app root (entry script, source folder, models under azureml-models/) as services lay it out."""
    from nbdeploy.builders.bundle import create_bundle
    from nbdeploy.service import resolve_models
    from nbdeploy.specs import InferenceConfig
    from nbdeploy.workspace import as_workspace

    ws = as_workspace(workspace)
    model_objs = resolve_models(list(models), ws) if models else []
    inference = InferenceConfig(config.entry_script, source_directory=config.source_directory)
    return create_bundle(ws, model_objs, inference), ws


def worker_environment(config: ParallelRunConfig, bundle: Bundle, output_dir: Path, log_dir: Path) -> dict[str, str]:
    """The worker's environment: this one, the bundle's AZUREML_* variables, the job's variables."""
    import nbdeploy

    env = {k: v for k, v in os.environ.items() if k not in _SERVICE_VARS}
    environment = config.environment
    if environment is not None and getattr(environment, "environment_variables", None):
        env.update(environment.environment_variables)
    env.update(config.environment_variables)
    env.update(bundle.server_env())
    package_root = str(Path(nbdeploy.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = package_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONUNBUFFERED"] = "1"
    env[ENV_OUTPUT_DIR] = str(output_dir)
    env[ENV_LOG_DIR] = str(log_dir)
    return env


def job_identity(config: ParallelRunConfig, plan: Plan) -> dict[str, Any]:
    """What must match for a rerun to resume a journal: the plan and where its output goes."""
    return {
        "plan": plan.digest,
        "batches": len(plan),
        "input_format": plan.input_format,
        "output_action": config.output_action,
        "output": config.output_file_name,
    }


def run_local(
    config: ParallelRunConfig,
    plan: Plan,
    output_dir: Path,
    *,
    models: Sequence[Model | str] = (),
    workspace: Any = None,
    overwrite: bool = False,
    use_journal: bool = True,
    progress: BatchProgress | None = None,
    name: str = "batch",
    stop: threading.Event | None = None,
) -> BatchResult:
    """Run a planned job with local worker processes."""
    bundle, _ = prepare_bundle(config, models, workspace)
    output_dir = output_dir.resolve()
    journal = Journal.open(
        output_dir, config.output_file_name, job_identity(config, plan), overwrite=overwrite, enabled=use_journal
    )
    log_dir = journal.state_dir / "logs"
    setup = {
        "entry_script": str(bundle.path / bundle.entry_script),
        "app_root": str(bundle.path),
        "source_dir": str(bundle.path / bundle.source_dir) if bundle.source_dir else None,
        "arguments": list(config.arguments),
        "output_action": config.output_action,
        "logging_level": config.logging_level,
    }
    workers = max(1, min(config.workers, len(plan) - journal.done))
    pool = WorkerPool(
        workers,
        setup,
        worker_environment(config, bundle, output_dir, log_dir),
        str(bundle.path),
        log_dir,
        float(config.run_invocation_timeout),
    )
    limits = Limits(
        config.error_threshold, config.allowed_failed_count, config.allowed_failed_percent, config.run_max_try
    )
    unit = "files" if plan.input_format == FILES else "rows"
    return run_plan(
        name, plan, journal, pool, limits, progress or default_progress(False), unit, log_dir=log_dir, stop=stop
    )


__all__ = ["run", "run_local"]
