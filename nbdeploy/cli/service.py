"""``nbdeploy service deploy|list|show|logs|run|update|reconcile|delete|keys|regen-key``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from nbdeploy.cli._common import echo_json, table, workspace_from
from nbdeploy.cli.target_options import TargetOptionsCommand
from nbdeploy.errors import InvalidInput
from nbdeploy.service import Webservice
from nbdeploy.service import deploy as deploy_service
from nbdeploy.specs import (
    DeploymentConfig,
    Environment,
    InferenceConfig,
    deployment_config_class,
    load_deployment_config,
    load_inference_config,
)
from nbdeploy.specs.environment_store import load_environment
from nbdeploy.targets.base import Target
from nbdeploy.targets.options import refuse_foreign_options
from nbdeploy.targets.registry import DEFAULT_TARGET, get_target_class, target_names
from nbdeploy.workspace import Workspace


def _spec_options(fn: Any) -> Any:
    """Options shared by deploy and update."""
    options = [
        click.option(
            "-m", "--model", "models", multiple=True, metavar="NAME[:VERSION]", help="Registered model (repeatable)."
        ),
        click.option(
            "--ic", "--inference-config", "ic", type=click.Path(dir_okay=False), help="v1 inferenceconfig.json / .yml"
        ),
        click.option(
            "--dc", "--deploy-config", "dc", type=click.Path(dir_okay=False), help="v1 deploymentconfig.json / .yml"
        ),
        click.option("--entry-script", help="The score.py with init() and run()."),
        click.option("--source-dir", type=click.Path(file_okay=False), help="Folder deployed with the entry script."),
        click.option(
            "--env", "env", metavar="NAME_OR_FILE", help="A saved environment's name or an environment YAML/JSON file."
        ),
        click.option(
            "--requirements", type=click.Path(dir_okay=False), help="pip requirements file for the environment."
        ),
        click.option("--timeout", type=float, default=None, help="Seconds to wait for Healthy."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


@click.group()
def service() -> None:
    """Deploy, inspect, score, update and delete services."""


def _inference_config(
    ic: str | None,
    entry_script: str | None,
    source_dir: str | None,
    env: str | None,
    requirements: str | None,
    ws: Workspace,
) -> InferenceConfig | None:
    if ic and entry_script:
        raise click.UsageError("give either --ic or --entry-script, not both")
    environment: Environment | None = None
    if env:
        environment = load_environment(ws, env)
    if requirements:
        environment = Environment.from_pip_requirements(Path(requirements).stem, requirements)
    if ic:
        config = load_inference_config(ic)
        if environment is not None:
            config.environment = environment
        return config
    if entry_script:
        return InferenceConfig(entry_script, source_directory=source_dir, environment=environment)
    return None


def _with_options(config: DeploymentConfig, cls: type[Target], parsed: dict[str, Any]) -> DeploymentConfig:
    """``config`` with the target options given on the command line; another target's option is refused."""
    refuse_foreign_options(cls, parsed)
    return config.merged(**cls.option_values(parsed))


def _deployment_config(dc: str | None, target: str | None, parsed: dict[str, Any]) -> DeploymentConfig:
    config = load_deployment_config(dc) if dc else deployment_config_class(target or DEFAULT_TARGET)()
    if dc and target and deployment_config_class(target) is not type(config):
        raise InvalidInput(f"--target {target} does not match computeType {config.compute_type!r} in {dc}")
    return _with_options(config, get_target_class(config.target), parsed)


def _wait_and_report(svc: Webservice, timeout: float | None) -> None:
    status = svc.wait_for_deployment(show_output=True, timeout_sec=timeout)
    click.echo(f"Scoring URI: {status.scoring_uri}")


@service.command("deploy", cls=TargetOptionsCommand)
@click.option("-n", "--name", required=True, help="Service name (3-32 lower-case letters, digits, '-').")
@_spec_options
@click.option(
    "--target",
    "-t",
    default=None,
    metavar="TARGET",
    help="Where it runs (default process); `nbdeploy service targets` lists them. "
    "`--target T --help` shows T's own options.",
)
@click.option(
    "--overwrite", is_flag=True, help="Replace a service with the same name (built first: a failed build keeps it)."
)
@click.option("--no-wait", is_flag=True, help="Return once started instead of waiting for Healthy.")
@click.pass_context
def deploy_cmd(
    ctx: click.Context,
    name: str,
    models: tuple[str, ...],
    ic: str | None,
    dc: str | None,
    entry_script: str | None,
    source_dir: str | None,
    env: str | None,
    requirements: str | None,
    timeout: float | None,
    target: str | None,
    overwrite: bool,
    no_wait: bool,
    **options: Any,
) -> None:
    """Deploy models with an entry script as service NAME and wait until it is Healthy."""
    ws = workspace_from(ctx)
    config = _inference_config(ic, entry_script, source_dir, env, requirements, ws)
    if config is None:
        raise click.UsageError("give --entry-script (or --ic inferenceconfig.json)")
    deployment = _deployment_config(dc, target, options)
    svc = deploy_service(name, list(models), config, deployment, overwrite=overwrite, workspace=ws, show_output=True)
    click.echo(f"Deploying {name} (revision 1) on {svc.target}")
    if not no_wait:
        _wait_and_report(svc, timeout)


@service.command("update", cls=TargetOptionsCommand, target_from_args=False)
@click.argument("name")
@_spec_options
@click.pass_context
def update_cmd(
    ctx: click.Context,
    name: str,
    models: tuple[str, ...],
    ic: str | None,
    dc: str | None,
    entry_script: str | None,
    source_dir: str | None,
    env: str | None,
    requirements: str | None,
    timeout: float | None,
    **options: Any,
) -> None:
    """Roll NAME to a new revision; the current one keeps serving unless the new one is Healthy.

    Every setting not given is kept from the serving revision.
    """
    ws = workspace_from(ctx)
    svc = Webservice(name, ws)
    config = _updated_inference_config(svc, ic, entry_script, source_dir, env, requirements, ws)
    deployment = load_deployment_config(dc) if dc else None
    given = {k: v for k, v in options.items() if v is not None}
    if deployment is None and given:
        deployment = svc.deployment_config
    if deployment is not None:
        deployment = _with_options(deployment, get_target_class(svc.target), options)
    svc.update(
        models=list(models) or None,
        inference_config=config,
        deployment_config=deployment,
        show_output=True,
        timeout_sec=timeout,
    )
    click.echo(f"{name} now serves revision {svc.revision}")


def _updated_inference_config(
    svc: Webservice,
    ic: str | None,
    entry_script: str | None,
    source_dir: str | None,
    env: str | None,
    requirements: str | None,
    ws: Workspace,
) -> InferenceConfig | None:
    """The inference config of an update: what is given, everything else kept from the serving revision.

    ``--entry-script`` alone keeps the environment and, when the script is found in it, the source folder;
    ``--env``/``--requirements``/``--source-dir`` alone keep the entry script. None: nothing changes.
    """
    if not (ic or entry_script or source_dir or env or requirements):
        return None
    serving = svc.inference_config_doc  # not re-validated: the old script may be gone
    old_source, old_script = serving.get("source_directory"), serving["entry_script"]
    if not (ic or entry_script):
        if source_dir:
            entry_script = old_script if old_source else Path(old_script).name
        else:
            source_dir, entry_script = old_source, old_script
    elif entry_script and not source_dir and old_source and (Path(old_source) / entry_script).is_file():
        source_dir = old_source
    config = _inference_config(ic, entry_script, source_dir, env, requirements, ws)
    if config is not None and config.environment is None:
        config.environment = svc.environment  # a new script keeps the environment
    return config


@service.command("targets")
@click.option("--check/--no-check", default=True, show_default=True, help="Ask each target whether it can run here.")
@click.option("--markdown", is_flag=True, help="Print the docs' table of targets and their options (docs/targets.md).")
def targets_cmd(check: bool, markdown: bool) -> None:
    """List the deployment targets, what each is for, and whether it can run here."""
    if markdown:
        click.echo(targets_markdown())
        return
    rows = []
    for name in target_names():
        cls = get_target_class(name)
        state = ""
        if check:
            available = cls.availability()
            state = "available" if available else f"unavailable: {available.reason}"
        rows.append([name, ", ".join(cls.aliases), cls.description, state])
    click.echo(table(["TARGET", "ALIASES", "WHAT", "HERE"], rows))


def targets_markdown() -> str:
    """The table of registered targets and their own options, as docs/targets.md carries it."""
    lines = ["| target | aliases | what | computeType | its own options |", "|---|---|---|---|---|"]
    for name in target_names():
        cls = get_target_class(name)
        options = ", ".join(f"`{o.flag}`" for o in cls.options) or "-"
        aliases = ", ".join(f"`{a}`" for a in cls.aliases) or "-"
        lines.append(f"| `{name}` | {aliases} | {cls.description} | `{cls.config_class.compute_type}` | {options} |")
    return "\n".join(lines)


@service.command("reload")
@click.argument("name")
@click.pass_context
def reload_cmd(ctx: click.Context, name: str) -> None:
    """Restart NAME on its re-read entry script and source folder, without downtime."""
    svc = Webservice(name, workspace_from(ctx))
    svc.reload(show_output=True)


@service.command("reconcile")
@click.argument("name")
@click.pass_context
def reconcile_cmd(ctx: click.Context, name: str) -> None:
    """Converge NAME's serving revision where it lags (edge devices back online); print the state."""
    status = Webservice(name, workspace_from(ctx)).reconcile(show_output=True)
    click.echo(f"{name}: {status.state}" + (f" ({status.reason})" if status.reason else ""))


@service.command("list")
@click.option("--target", default=None)
@click.option("--model", "model_name", default=None, help="Only services using this model name.")
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
def list_cmd(ctx: click.Context, target: str | None, model_name: str | None, output: str) -> None:
    """List services with their live states."""
    services = Webservice.list(workspace_from(ctx), target=target, model_name=model_name)
    if output == "json":
        echo_json([s.serialize() for s in services])
        return
    rows = []
    for s in services:
        status = s.status()
        rows.append(
            [
                s.name,
                s.target,
                str(status.state),
                str(s.revision),
                status.scoring_uri or "",
                ", ".join(s.models),
                status.reason[:60],
            ]
        )
    click.echo(table(["NAME", "TARGET", "STATE", "REV", "SCORING URI", "MODELS", "REASON"], rows))


@service.command("show")
@click.argument("name")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_context
def show_cmd(ctx: click.Context, name: str, output: str) -> None:
    """Show NAME's record: state, scoring URI, models, revisions."""
    svc = Webservice(name, workspace_from(ctx))
    data = svc.serialize()
    if output == "json":
        echo_json(data)
        return
    for key in (
        "name",
        "target",
        "state",
        "scoringUri",
        "swaggerUri",
        "revision",
        "models",
        "authEnabled",
        "image",
        "createdTime",
        "updatedTime",
    ):
        value = data.get(key)
        click.echo(f"{key:<13}{', '.join(value) if isinstance(value, list) else ('' if value is None else value)}")
    if data.get("error"):
        click.echo(f"{'reason':<13}{one_line(data['error']['reason'])}")
        if data["error"]["reason"].strip().count("\n") or data["error"].get("evidence"):
            click.echo(f"{'':<13}(the log: nbdeploy service logs {name})")
    click.echo("revisions:")
    for rev in svc.revisions():
        reason = rev["reason"] or ""
        line = one_line(reason)
        if (
            reason
            and (line != reason.strip() or rev["outcome"] in ("failed", "aborted"))
            and rev["revision"] != svc.revision
        ):
            line += f" (details: nbdeploy service logs {name} --revision {rev['revision']})"
        click.echo(
            f"  {rev['revision']:>3}  {rev['outcome']:<9} {rev['state'] or '':<13} {rev['created_time'][:19]}  {line}"
        )


def one_line(text: str, width: int = 160) -> str:
    """The first non-empty line of ``text``, cut to ``width`` characters (a build log is no reason)."""
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    more = first != text.strip()
    if len(first) > width:
        first, more = first[: width - 1].rstrip(), True
    return first + (" ..." if more else "")


@service.command("logs")
@click.argument("name")
@click.option("-n", "--lines", "num_lines", type=int, default=200, show_default=True)
@click.option(
    "--revision",
    "-r",
    type=int,
    default=None,
    help="Another revision's log (a failed one's: the evidence recorded when it failed).",
)
@click.pass_context
def logs_cmd(ctx: click.Context, name: str, num_lines: int, revision: int | None) -> None:
    """Print the last lines of NAME's log."""
    click.echo(Webservice(name, workspace_from(ctx)).get_logs(num_lines, revision=revision))


@service.command("run")
@click.argument("name")
@click.option(
    "--data",
    "-d",
    required=True,
    help="Request body (JSON text), or @FILE to send a file's bytes as they are, or - for stdin.",
)
@click.pass_context
def run_cmd(ctx: click.Context, name: str, data: str) -> None:
    """Score NAME with a request body and print the answer."""
    body: str | bytes = data
    if data == "-":
        body = sys.stdin.buffer.read()
    elif data.startswith("@"):
        try:
            body = Path(data[1:]).read_bytes()  # bytes as they are: an image, a pickled array
        except OSError as exc:
            raise InvalidInput(f"--data {data}: cannot read {data[1:]}: {exc.strerror or exc}") from exc
    answer = Webservice(name, workspace_from(ctx)).run(body)
    if isinstance(answer, bytes):
        sys.stdout.buffer.write(answer)
    else:
        echo_json(answer)


@service.command("delete")
@click.argument("name")
@click.option("--delete-image", is_flag=True, help="Also remove the images built for it (image targets).")
@click.pass_context
def delete_cmd(ctx: click.Context, name: str, delete_image: bool) -> None:
    """Stop NAME and remove its records."""
    Webservice(name, workspace_from(ctx)).delete(delete_image=delete_image)
    click.echo(f"Deleted {name}")


@service.command("keys")
@click.argument("name")
@click.pass_context
def keys_cmd(ctx: click.Context, name: str) -> None:
    """Print NAME's primary and secondary keys."""
    primary, secondary = Webservice(name, workspace_from(ctx)).get_keys()
    click.echo(f"primary    {primary}\nsecondary  {secondary}")


@service.command("regen-key")
@click.argument("name")
@click.argument("which", type=click.Choice(["Primary", "Secondary"], case_sensitive=False))
@click.option("--set-key", default=None, help="Use this value instead of a random one.")
@click.pass_context
def regen_key_cmd(ctx: click.Context, name: str, which: str, set_key: str | None) -> None:
    """Replace NAME's primary or secondary key (takes effect at once)."""
    Webservice(name, workspace_from(ctx)).regen_key(which, set_key)
    click.echo(f"Regenerated the {which.lower()} key of {name}")
