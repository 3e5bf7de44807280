"""``nbdeploy batch run|score``: batch inference with v1 ParallelRunStep entry scripts, or through a service.

The same option parsers serve the ``%batch`` magic (:func:`parse_args`).
"""

from __future__ import annotations

import sys
from typing import Any

import click

from nbdeploy.cli._common import pairs, workspace_from

_FORMATS = ["files", "csv", "parquet", "jsonl"]


def _common_options(fn: Any) -> Any:
    options = [
        click.option(
            "-i",
            "--input",
            "inputs",
            multiple=True,
            required=True,
            metavar="PATH_OR_GLOB",
            help="Input files, folders or globs (repeatable), in order.",
        ),
        click.option(
            "-o", "--output", required=True, type=click.Path(file_okay=False), help="Output folder (holds the journal)."
        ),
        click.option(
            "--mini-batch-size",
            metavar="N|SIZE",
            help="Files or rows per mini-batch, or a size such as 10MB for tables.",
        ),
        click.option(
            "--input-format", type=click.Choice(_FORMATS), help="How inputs reach run() (default: from file suffixes)."
        ),
        click.option(
            "--output-action",
            type=click.Choice(["append_row", "summary_only"]),
            default="append_row",
            show_default=True,
        ),
        click.option(
            "--append-row-file-name", metavar="NAME", help="Output file name (default parallel_run_step.txt)."
        ),
        click.option(
            "--error-threshold", type=int, default=0, show_default=True, help="Failed inputs tolerated (-1: any)."
        ),
        click.option("--allowed-failed-count", type=int, help="Failed mini-batches tolerated (-1: any)."),
        click.option("--allowed-failed-percent", type=float, help="Failed mini-batches tolerated, in percent."),
        click.option(
            "--partition-key",
            "partition_keys",
            multiple=True,
            metavar="COLUMN",
            help="One mini-batch per distinct value of these columns (instead of --mini-batch-size).",
        ),
        click.option(
            "--overwrite", is_flag=True, help="Start over: remove this output folder's journal and output first."
        ),
        click.option("--no-journal", is_flag=True, help="Do not write a journal (the job cannot resume)."),
        click.option("-q", "--quiet", is_flag=True, help="No progress output; only the summary."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


class _DashDashCommand(click.Command):
    """Remembers whether ``--`` came before the script's arguments (a shell-expanded glob must not become one)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["dashdash"] = "--" in args
        return super().parse_args(ctx, args)


@click.group()
def batch() -> None:
    """Batch inference over files and tables (v1 ParallelRunStep scripts), locally or through a service."""


@batch.command("run", cls=_DashDashCommand)
@click.option(
    "-e",
    "--entry-script",
    required=True,
    type=click.Path(dir_okay=False),
    help="Script with init() and run(mini_batch).",
)
@click.option("--source-directory", type=click.Path(file_okay=False), help="Folder shipped with the entry script.")
@click.option(
    "-m",
    "--model",
    "models",
    multiple=True,
    metavar="NAME[:VERSION]",
    help="Registered model under AZUREML_MODEL_DIR (repeatable).",
)
@_common_options
@click.option("--processes", type=int, help="Worker processes (process_count_per_node; default: CPU count).")
@click.option("--node-count", type=int, default=1, show_default=True, help="Nodes (locally: multiplies --processes).")
@click.option("--run-invocation-timeout", type=float, default=60, show_default=True, help="Seconds one run() may take.")
@click.option("--run-max-try", type=int, default=3, show_default=True, help="Tries per mini-batch.")
@click.option(
    "--env-var",
    "env_vars",
    multiple=True,
    metavar="KEY=VALUE",
    help="Environment variable for the workers (repeatable).",
)
@click.option(
    "--logging-level", default="INFO", show_default=True, type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"])
)
@click.option("--shard", metavar="I/N", help="Run only part I of N of the mini-batches (into OUTPUT/shard-I).")
@click.option(
    "--shard-from-env", type=int, metavar="N", help="As --shard, with I from JOB_COMPLETION_INDEX (Indexed Jobs)."
)
@click.argument("arguments", nargs=-1)
@click.pass_context
def run_cmd(ctx: click.Context, **params: Any) -> None:
    """Run a batch entry script over inputs with local worker processes.

    Arguments after -- reach the entry script's sys.argv (v1 ParallelRunStep arguments).
    Rerun the same command to resume a stopped or failed job.
    """
    from nbdeploy.batch import run

    if params["arguments"] and not ctx.meta.get("dashdash"):
        raise click.UsageError(
            f"unexpected argument {params['arguments'][0]!r}: quote globs (-i 'data/*.csv') or repeat -i; "
            "put the entry script's own arguments after --"
        )
    kwargs = run_kwargs(params)
    _finish(lambda: run(workspace=workspace_from(ctx), show_output=not params["quiet"], **kwargs))


@batch.command("score")
@click.option("-s", "--service", required=True, help="Name of a deployed service.")
@_common_options
@click.option("--concurrency", type=int, default=4, show_default=True, help="Requests in flight at once.")
@click.option("--timeout", type=float, default=60, show_default=True, help="Seconds per request.")
@click.option(
    "--max-tries",
    type=int,
    default=3,
    show_default=True,
    help="Tries per request (5xx and connection errors retried with backoff).",
)
@click.option(
    "--payload-key", default="data", show_default=True, help='Table rows are posted as {"KEY": [[...], ...]}.'
)
@click.pass_context
def score_cmd(ctx: click.Context, **params: Any) -> None:
    """Score inputs through a deployed service, with the journal and output format of `batch run`."""
    from nbdeploy.batch import score

    kwargs = score_kwargs(params)
    _finish(lambda: score(workspace=workspace_from(ctx), show_output=not params["quiet"], **kwargs))


def _common_kwargs(params: dict[str, Any]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "input": list(params["inputs"]),
        "output": params["output"],
        "input_format": params["input_format"],
        "overwrite": params["overwrite"],
        "journal": not params["no_journal"],
        "output_action": params["output_action"],
        "error_threshold": params["error_threshold"],
    }
    for key in ("mini_batch_size", "append_row_file_name", "allowed_failed_count", "allowed_failed_percent"):
        if params.get(key) is not None:
            kwargs[key] = params[key]
    if params.get("partition_keys"):
        kwargs["partition_keys"] = list(params["partition_keys"])
    return kwargs


def run_kwargs(params: dict[str, Any]) -> dict[str, Any]:
    """``batch run`` options -> keyword arguments of :func:`nbdeploy.batch.run`."""
    kwargs = _common_kwargs(params)
    kwargs.update(
        entry_script=params["entry_script"],
        models=list(params["models"]),
        processes=params["processes"],
        node_count=params["node_count"],
        run_invocation_timeout=params["run_invocation_timeout"],
        run_max_try=params["run_max_try"],
        environment_variables=pairs("--env-var", params["env_vars"]),
        logging_level=params["logging_level"],
        arguments=list(params["arguments"]),
    )
    if params.get("source_directory"):
        kwargs["source_directory"] = params["source_directory"]
    shard = _shard(params.get("shard"), params.get("shard_from_env"))
    if shard is not None:
        kwargs["shard"] = shard
    return kwargs


def _shard(text: str | None, from_env: int | None) -> tuple[int, int] | None:
    if from_env is not None:
        import os

        text = f"{os.environ.get('JOB_COMPLETION_INDEX', '')}/{from_env}"
    if text is None:
        return None
    index, _, count = text.partition("/")
    if not (index.isdigit() and count.isdigit() and int(index) < int(count)):
        raise click.BadParameter(
            f"expected I/N with 0 <= I < N (JOB_COMPLETION_INDEX for --shard-from-env), got {text!r}",
            param_hint="--shard",
        )
    return int(index), int(count)


def score_kwargs(params: dict[str, Any]) -> dict[str, Any]:
    """``batch score`` options -> keyword arguments of :func:`nbdeploy.batch.score`."""
    kwargs = _common_kwargs(params)
    kwargs.update(
        service=params["service"],
        concurrency=params["concurrency"],
        timeout=params["timeout"],
        max_tries=params["max_tries"],
        payload_key=params["payload_key"],
    )
    return kwargs


def parse_args(command: str, argv: list[str]) -> dict[str, Any]:
    """Parse ``argv`` with the options of ``batch run`` or ``batch score`` (for the %batch magic)."""
    cmd = {"run": run_cmd, "score": score_cmd}.get(command)
    if cmd is None:
        raise click.UsageError(f"unknown batch command {command!r}; use run or score")
    with cmd.make_context(f"batch {command}", list(argv)) as ctx:
        return dict(ctx.params)


def _finish(call: Any) -> None:
    from nbdeploy.batch.errors import BatchFailed, BatchStopped

    try:
        result = call()
    except BatchStopped as exc:
        click.echo(exc.result.summary(), err=True)
        click.echo(str(exc), err=True)
        sys.exit(130)
    except BatchFailed as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    click.echo(result.summary())
