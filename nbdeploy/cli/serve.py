"""``nbdeploy serve``: run the scoring server for an entry script (the ``azmlinfsrv`` equivalent)."""

from __future__ import annotations

import sys

import click


@click.command("serve", context_settings={"ignore_unknown_options": False})
@click.option("--entry-script", required=False, type=click.Path(dir_okay=False), help="The scoring script.")
@click.option("--model-dir", type=click.Path(file_okay=False), help="Sets AZUREML_MODEL_DIR.")
@click.option("--source-dir", type=click.Path(file_okay=False), help="Sets AZUREML_SOURCE_DIRECTORY.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Public port (default 5001; 0: pick a free one, reported in the log and status file).",
)
@click.option("--host", default=None, help="Address to bind (default 127.0.0.1).")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Worker processes (WORKER_COUNT).")
@click.option("--scoring-timeout-ms", type=int, default=None, help="SCORING_TIMEOUT_MS.")
@click.option("--max-body-bytes", type=int, default=None, help="Request body limit (413 above it).")
@click.option("--max-header-bytes", type=int, default=None, help="Request line + headers limit (431 above it).")
@click.option("--header-timeout", type=float, default=None, help="Seconds a client may take to send its headers.")
@click.option(
    "--keep-alive-timeout", type=float, default=None, help="Seconds an idle keep-alive connection stays open."
)
@click.option(
    "--max-connections", type=int, default=None, help="Open connections per worker (idle ones are closed past it)."
)
@click.option("--log-format", type=click.Choice(["text", "json"]), default=None)
@click.option("--access-log", is_flag=True, help="Log one line per request.")
@click.option("--reuse-port", is_flag=True, help="Bind the public port with SO_REUSEPORT.")
@click.option("--hold-public", is_flag=True, help="Serve only on --admin-port until SIGUSR1.")
@click.option("--admin-port", type=int, default=None, help="Private loopback port (0: pick one).")
@click.option("--status-file", type=click.Path(dir_okay=False), default=None, help="JSON state file.")
def serve(**options: object) -> None:
    """Run the scoring server for an entry script (init() once per worker, run() per request)."""
    from nbdeploy.server.cli import main as server_main

    argv: list[str] = []
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif value not in (None, False):
            argv += [flag, str(value)]
    server_main(argv)
    sys.exit(0)  # pragma: no cover - server_main exits
