"""IPython magics: deploy from the cells where the model was trained.

``%load_ext nbdeploy`` registers them and installs the progress-sink factory; nothing else (no network, no
library import). Each magic parses its line, makes one library call and renders the result. User mistakes
raise :class:`~IPython.core.error.UsageError` (one line with the fix); deployment failures raise the nbdeploy
error, shown as state, reason and log tail (see :mod:`nbdeploy.notebook._errors`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments

from nbdeploy.notebook._errors import reported
from nbdeploy.notebook._session import Session


class _HelpShown(Exception):
    """``--help`` printed the magic's help."""


def parse_line(magic: Any, line: str) -> Any:
    """Parse a magic's line with shell quoting (``--description 'a b'`` stores ``a b``); ``--help`` prints the
    help and raises _HelpShown, which the magic turns into returning None."""
    import shlex

    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"{exc} (check the quotes)") from None
    parser = magic.parser
    if "--help" in words or "-h" in words:
        import argparse

        parser.formatter_class = argparse.RawDescriptionHelpFormatter  # IPython's renders reST for %magic?
        usage = parser.format_help()
        print(usage[usage.find("usage:") :] if "usage:" in usage else usage)
        raise _HelpShown
    return parser.parse_args(words)


def _with_help(func: Any) -> Any:
    """Make ``_HelpShown`` end the magic quietly (after ``--help``)."""
    import functools

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except _HelpShown:
            return None

    return wrapper


def _unquote(text: str) -> str:
    """``'{"a": 1}'`` -> ``{"a": 1}``: a body quoted as a shell word (as the help shows); else as typed."""
    import shlex

    if text[:1] in ("'", '"'):
        try:
            words = shlex.split(text)
        except ValueError:
            return text
        if len(words) == 1:
            return words[0]
    return text


def _pairs(items: list[str] | None, option: str) -> dict[str, str]:
    pairs = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{option} takes key=value, got {item!r} (for example {option} area=health).")
        pairs[key] = value
    return pairs


CREATED_BY = "nbdeploy.createdBy"
"""A service property: ``%deploy`` of a service it created updates it (a notebook run again)."""


@contextlib.contextmanager
def _explain_interrupt(svc: Any) -> Iterator[None]:
    """Ctrl-C while waiting: say what state the service is in and how to stop it, without a traceback."""
    try:
        yield
    except KeyboardInterrupt as exc:
        try:
            status = svc.status()
            where = f"{status.state}" + (f" ({status.reason})" if status.reason else "")
        except Exception:  # noqa: BLE001 - the explanation is best effort
            where = "in an unknown state"
        lines = [
            f"Interrupted while waiting. {svc.name} is {where} and keeps starting in the background.",
            f"Watch it with %services or %logs {svc.name}; stop it with %undeploy {svc.name}.",
        ]
        exc._render_traceback_ = lambda: lines  # type: ignore[attr-defined]
        raise


@magics_class
class NbdeployMagics(Magics):
    """Register, deploy, score and watch models from a notebook (``%load_ext nbdeploy``)."""

    def __init__(self, shell: Any = None) -> None:
        super().__init__(shell)
        self.session = Session()

    # -- workspace -----------------------------------------------------------------------------
    @_with_help
    @magic_arguments()
    @argument(
        "path", nargs="?", help="Workspace folder (created when missing or empty). Without it: show the current one."
    )
    @line_magic
    def nbdeploy_workspace(self, line: str) -> None:
        """Choose the workspace this kernel uses (magics and library calls without ``workspace=``)."""
        args = parse_line(self.nbdeploy_workspace, line)
        with reported():
            ws = self.session.use_workspace(args.path) if args.path else self.session.workspace()
        print(f"nbdeploy workspace: {ws.path}")

    # -- definitions ---------------------------------------------------------------------------
    @_with_help
    @magic_arguments()
    @argument("file", nargs="?", default="score.py", help="Where to write the script (default score.py).")
    @argument("--default", action="store_true", help="Make it %%deploy's default entry script even if one is set.")
    @cell_magic
    def score_script(self, line: str, cell: str) -> None:
        """Write the cell as an entry script, after checking it parses and defines ``init()`` and ``run(data)``.

        The first script written in a kernel becomes ``%deploy``'s default entry script (when no ``--entry`` is
        given); a later one changes that default only with ``--default``, so writing a test script never
        silently changes what the next ``%deploy`` runs.
        """
        args = parse_line(self.score_script, line)
        from nbdeploy.builders.entry_script import check_entry_script

        path = Path(args.file)
        with reported():
            check_entry_script(cell, filename=path.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(cell, encoding="utf-8")
        current = self.session.entry_script
        if current is None or args.default or current == path.resolve():
            self.session.entry_script = path.resolve()
            print(f"wrote {path} (init and run found); %deploy uses it by default")
        else:
            print(
                f"wrote {path} (init and run found); %deploy's default stays {current.name} "
                f"(%%score_script {args.file} --default, or %deploy ... --entry {args.file}, to use this one)"
            )

    @_with_help
    @magic_arguments()
    @argument("name", help="Environment name (use it with %%deploy --env NAME).")
    @cell_magic
    def environment(self, line: str, cell: str) -> None:
        """Define a named environment in YAML (``pip:``, ``conda:``, ``base_image:``, ``variables:`` ...) and save it
        in the workspace."""
        args = parse_line(self.environment, line)
        from nbdeploy.specs import Environment
        from nbdeploy.specs.environment_store import save_environment

        with reported():
            env = Environment.from_yaml(cell, name=args.name, source=f"%%environment {args.name}")
            save_environment(self.session.workspace(), env)
        pip = ", ".join(env.pip_packages) or "none"
        print(f"environment {env.name} saved (pip: {pip})")

    @_with_help
    @magic_arguments()
    @cell_magic
    def inference_config(self, line: str, cell: str) -> None:
        """Read an inference config (v1 ``inferenceconfig.json`` as JSON or YAML); ``%deploy`` uses it when no
        ``--entry`` is given. Paths in it are relative to the current folder."""
        parse_line(self.inference_config, line)
        import yaml

        from nbdeploy.specs import InferenceConfig

        try:
            data = yaml.safe_load(cell)
        except yaml.YAMLError as exc:
            raise UsageError(f"The inference config is neither JSON nor YAML: {exc}") from None
        with reported():
            config = InferenceConfig.from_dict(data, base_dir=".", source="%%inference_config")
        self.session.inference_config = config
        print(
            f"inference config: entry script {config.entry_script}, environment "
            f"{config.environment.name if config.environment else '(the kernel' + chr(39) + 's)'}"
        )

    # -- models ----------------------------------------------------------------------------------
    @_with_help
    @magic_arguments()
    @argument("path", help="File or folder to register.")
    @argument("--name", required=True, help="Model name.")
    @argument("--tag", action="append", metavar="KEY=VALUE", help="A tag (repeatable).")
    @argument("--property", action="append", metavar="KEY=VALUE", help="A property (repeatable).")
    @argument("--description", help="Free text.")
    @argument(
        "--if-changed",
        action="store_true",
        help="Return the latest version when its bytes and metadata are the same (a notebook run again).",
    )
    @line_magic
    def register_model(self, line: str) -> Any:
        """Register a file or folder as the next version of a model."""
        args = parse_line(self.register_model, line)
        from nbdeploy.registry import Model

        with reported():
            return Model.register(
                args.path,
                args.name,
                tags=_pairs(args.tag, "--tag"),
                properties=_pairs(args.property, "--property"),
                description=args.description,
                workspace=self.session.workspace(),
                if_changed=args.if_changed,
            )

    @_with_help
    @magic_arguments()
    @argument("--name", help="Only this model name.")
    @argument("--tag", action="append", metavar="KEY[=VALUE]", help="Only versions with this tag (repeatable).")
    @argument("--latest", action="store_true", help="Only the latest version of each name.")
    @line_magic
    def models(self, line: str) -> Any:
        """Table of registered model versions."""
        args = parse_line(self.models, line)
        from nbdeploy.notebook._tables import models_table
        from nbdeploy.registry import Model

        with reported():
            return models_table(
                Model.list(name=args.name, tags=args.tag, latest=args.latest, workspace=self.session.workspace())
            )

    # -- services --------------------------------------------------------------------------------
    @line_magic
    def deploy(self, line: str) -> Any:
        """Deploy registered models as a scoring service and wait until it is Healthy.

        ``%deploy NAME --model M[:V] [--entry score.py] [--env ENV] [--target T] [target options]``;
        ``%deploy --help`` lists every option, ``%deploy --target aks --help`` the aks ones. With a widget
        frontend a live DeploymentPanel shows the progress; elsewhere (papermill, terminals) plain lines. A
        deployment that ends anything but Healthy raises DeploymentFailed with state, reason and log tail.
        """
        from nbdeploy.notebook._deploy_options import deployment_config, parse_deploy_line
        from nbdeploy.notebook._frontend import sink_factory
        from nbdeploy.service import deploy, resolve_models
        from nbdeploy.specs import InferenceConfig
        from nbdeploy.specs.environment_store import load_environment

        parsed = parse_deploy_line(line)
        if parsed is None:
            return None  # --help was printed
        args, target = parsed
        ws = self.session.workspace()
        with reported():
            config = deployment_config(target, args)
            config.properties.setdefault(CREATED_BY, "%deploy")
            models = resolve_models(args.model, ws)
            env = load_environment(ws, args.env) if args.env else None
            inference = self._inference_config(args.entry, env, InferenceConfig)
            existing = self._existing(args.name, ws, args.overwrite)
            if existing is not None:  # a notebook run again: roll its service to the new revision
                print(f"{args.name} exists (deployed with %deploy): updating it; --overwrite replaces it instead")
                existing.update(
                    models=models,
                    inference_config=inference,
                    deployment_config=config,
                    timeout_sec=args.timeout,
                    sink=sink_factory(True, ws),
                )
                return existing
            svc = deploy(args.name, models, inference, config, overwrite=args.overwrite, workspace=ws)
        if args.temporary:
            self.session.delete_on_exit(args.name, ws)
        with reported(), _explain_interrupt(svc):
            svc.wait_for_deployment(timeout_sec=args.timeout, sink=sink_factory(True, ws))
        return svc

    @staticmethod
    def _existing(name: str, ws: Any, overwrite: bool) -> Any:
        """The service ``name`` when ``%deploy`` should update it (it was deployed with ``%deploy``)."""
        from nbdeploy.errors import AlreadyExists, ServiceNotFound
        from nbdeploy.service import Webservice

        if overwrite:
            return None
        try:
            svc = Webservice(name, ws)
        except ServiceNotFound:
            return None
        if svc.properties.get(CREATED_BY) != "%deploy":
            raise AlreadyExists(
                f"A service named {name!r} exists (not deployed with %deploy): add --overwrite to "
                "replace it, or choose another name."
            )
        return svc

    def _inference_config(self, entry: str | None, env: Any, cls: Any) -> Any:
        current = self.session.inference_config
        if entry:
            return cls(entry, environment=env or (current.environment if current else None))
        if current is not None:
            if env is not None:
                return cls(str(current.entry_script_path), environment=env)
            return current
        if self.session.entry_script is not None:
            return cls(str(self.session.entry_script), environment=env)
        raise UsageError("No entry script: write one with %%score_script, or pass --entry score.py.")

    @_with_help
    @magic_arguments()
    @line_magic
    def services(self, line: str) -> Any:
        """Table of the workspace's services with their states."""
        parse_line(self.services, line)
        from nbdeploy.notebook._tables import services_table
        from nbdeploy.service import Webservice

        with reported():
            return services_table(Webservice.list(self.session.workspace()))

    def _service(self, name: str) -> Any:
        from nbdeploy.service import Webservice

        with reported():
            return Webservice(name, self.session.workspace())

    @no_var_expand
    @line_magic
    def score(self, line: str) -> Any:
        """``%score NAME JSON_OR_$VARIABLE``: POST a request to a Healthy service and return the answer.

        ``$payload`` sends the variable ``payload``: str and bytes as they are, anything else as JSON
        (numpy arrays and pandas frames included).
        """
        from nbdeploy.notebook._payload import request_body

        name, _, body_text = line.strip().partition(" ")
        body_text = _unquote(body_text.strip())
        if not name:
            raise UsageError("Usage: %score NAME '{\"data\": [[...]]}'  or  %score NAME $payload")
        namespace = self.shell.user_ns if self.shell else {}
        if name.startswith("$"):
            if name[1:] not in namespace:
                raise UsageError(f"No variable named {name[1:]!r} in the notebook.")
            name = str(namespace[name[1:]])
        body = request_body(body_text, namespace)
        svc = self._service(name)
        with reported():
            status = svc.status()
        if str(status.state) != "Healthy":
            raise UsageError(
                f"Service {name!r} is {status.state}"
                + (f": {status.reason}" if status.reason else "")
                + f". Wait for it (nbdeploy.Webservice({name!r}).wait_for_deployment()) or see %logs {name}."
            )
        with reported(svc):
            return svc.run(body)

    @_with_help
    @magic_arguments()
    @argument("name", help="Service name.")
    @argument("-n", "--lines", type=int, default=50, help="How many lines (default 50).")
    @argument("--follow", action="store_true", help="Keep printing new lines until interrupted (or --for seconds).")
    @argument("--for", dest="seconds", type=float, help="With --follow: stop after this many seconds.")
    @line_magic
    def logs(self, line: str) -> None:
        """Print the last lines of a service's log; ``--follow`` keeps printing new ones."""
        args = parse_line(self.logs, line)
        from nbdeploy.notebook._logs import follow

        svc = self._service(args.name)
        with reported():
            text = svc.get_logs(args.lines)
            print(text, end="" if text.endswith("\n") or not text else "\n")
            if args.follow:
                follow(svc, text.splitlines(), args.seconds)

    @_with_help
    @magic_arguments()
    @argument("name", help="Service name.")
    @line_magic
    def undeploy(self, line: str) -> None:
        """Delete a service: stop every revision and remove its records."""
        args = parse_line(self.undeploy, line)
        svc = self._service(args.name)
        started = time.perf_counter()
        with reported():
            svc.delete()
        print(f"deleted {args.name} ({time.perf_counter() - started:.1f}s)")

    @line_magic
    def batch(self, line: str) -> Any:
        """``%batch --entry-script S --input PATH_OR_GLOB --output DIR ...``: batch inference with a v1
        ParallelRunStep script (``%batch --help`` lists the options; docs/batch.md)."""
        from nbdeploy.notebook.batch_magic import batch_magic

        return batch_magic(line, workspace=self.session.workspace())


def load_ipython_extension(ipython: Any) -> None:
    """Register the magics and the progress-sink factory; nothing else."""
    from nbdeploy.notebook._frontend import sink_factory
    from nbdeploy.progress import set_sink_factory

    ipython.register_magics(NbdeployMagics)
    set_sink_factory(sink_factory)


def unload_ipython_extension(ipython: Any) -> None:
    from nbdeploy.progress import set_sink_factory

    set_sink_factory(None)
