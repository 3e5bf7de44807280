"""Mirror of ``azureml.pipeline.steps``: ``ParallelRunConfig`` and ``ParallelRunStep`` for v1 batch scripts.

::

    from nbdeploy.compat.azureml.pipeline.steps import ParallelRunConfig, ParallelRunStep

    config = ParallelRunConfig(environment=env, entry_script="batch_score.py", source_directory="scripts",
                               error_threshold=10, output_action="append_row", compute_target="local",
                               node_count=1, mini_batch_size="1MB")
    step = ParallelRunStep(name="score", parallel_run_config=config, inputs=["data/*.csv"], output="outputs/",
                           arguments=["--model_name", "diabetes"])
    result = step.run(workspace=ws, models=["diabetes:1"], show_output=True)

v1 submitted the step inside a Pipeline to a compute cluster; here ``step.run(...)`` runs it with local worker
processes (:func:`nbdeploy.batch.run`). Inputs are paths, folders or globs (no Dataset objects); ``models``
says which registered models ``Model.get_model_path`` finds. As in v1, a bare number as ``mini_batch_size``
means bytes for tabular inputs and files for file inputs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from nbdeploy.batch.config import ParallelRunConfig as _Config
from nbdeploy.batch.plan import FILES, infer_format, resolve_inputs
from nbdeploy.errors import InvalidSpec


class ParallelRunConfig:
    """v1's signature; checked by :class:`nbdeploy.batch.ParallelRunConfig` when the step runs."""

    def __init__(
        self,
        environment: Any,
        entry_script: str,
        error_threshold: int,
        output_action: str,
        compute_target: Any,
        node_count: int,
        process_count_per_node: int | None = None,
        mini_batch_size: int | str | None = None,
        source_directory: str | None = None,
        description: str | None = None,
        logging_level: str = "INFO",
        run_invocation_timeout: float = 60,
        run_max_try: int = 3,
        append_row_file_name: str | None = None,
        allowed_failed_count: int | None = None,
        allowed_failed_percent: float | None = None,
        partition_keys: Sequence[str] | None = None,
        environment_variables: Mapping[str, str] | None = None,
    ) -> None:
        self.environment, self.compute_target = environment, compute_target
        self._fields = dict(  # noqa: C408 - keyword form mirrors the v1 signature
            entry_script=entry_script,
            error_threshold=error_threshold,
            output_action=output_action,
            node_count=node_count,
            process_count_per_node=process_count_per_node,
            mini_batch_size=mini_batch_size,
            source_directory=source_directory,
            description=description,
            logging_level=logging_level,
            run_invocation_timeout=run_invocation_timeout,
            run_max_try=run_max_try,
            append_row_file_name=append_row_file_name,
            allowed_failed_count=allowed_failed_count,
            allowed_failed_percent=allowed_failed_percent,
            partition_keys=partition_keys,
            environment_variables=dict(environment_variables or {}),
            environment=environment,
        )
        self.native(tabular=False)  # check now, as v1 did

    def __getattr__(self, name: str) -> Any:
        fields = self.__dict__.get("_fields", {})
        if name in fields:
            return fields[name]
        raise AttributeError(name)

    def native(self, tabular: bool, arguments: Sequence[str] = ()) -> _Config:
        """The :class:`nbdeploy.batch.ParallelRunConfig`; for tables a bare number is bytes, as in v1."""
        fields = dict(self._fields, arguments=tuple(str(a) for a in arguments))
        size = fields["mini_batch_size"]
        if tabular and (
            (isinstance(size, int) and not isinstance(size, bool)) or (isinstance(size, str) and size.strip().isdigit())
        ):
            fields["mini_batch_size"] = f"{int(size)}B"
        return _Config(**fields)


class ParallelRunStep:
    """v1's step: ``inputs`` (paths, folders, globs), ``output`` (a folder), ``arguments`` for ``sys.argv``."""

    def __init__(
        self,
        name: str,
        parallel_run_config: ParallelRunConfig,
        inputs: Sequence[Any],
        output: str | os.PathLike[str] | None = None,
        side_inputs: Sequence[Any] | None = None,
        arguments: Sequence[Any] | None = None,
        allow_reuse: bool = True,
        input_format: str | None = None,
    ) -> None:
        if not isinstance(parallel_run_config, ParallelRunConfig):
            raise InvalidSpec("parallel_run_config", "expected a ParallelRunConfig(...)")
        if side_inputs:
            raise InvalidSpec("side_inputs", "are not supported; pass their paths in arguments and read them in init()")
        self.name, self.parallel_run_config = name, parallel_run_config
        self.inputs = [os.fspath(getattr(i, "path", i)) for i in inputs]
        self.output = os.fspath(output) if output is not None else os.path.join("outputs", name)
        self.arguments = [str(a) for a in arguments or ()]
        self.allow_reuse, self.input_format = allow_reuse, input_format

    def run(self, workspace: Any = None, models: Sequence[Any] = (), show_output: bool = False, **options: Any) -> Any:
        """Run the step locally; returns :class:`nbdeploy.batch.BatchResult` (options as for ``nbdeploy.batch.run``)."""
        from nbdeploy.batch import run

        fmt = self.input_format or infer_format(resolve_inputs(self.inputs))
        config = self.parallel_run_config.native(tabular=fmt != FILES, arguments=self.arguments)
        return run(
            input=self.inputs,
            output=self.output,
            config=config,
            input_format=fmt,
            models=models,
            workspace=workspace,
            show_output=show_output,
            name=self.name,
            **options,
        )
