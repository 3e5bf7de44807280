"""Command line of ``python -m nbdeploy.server`` (and the options ``nbdeploy serve`` passes on)."""

from __future__ import annotations

import argparse
import sys

from . import settings as settings_mod


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m nbdeploy.server", description="Serve an Azure ML entry script (init()/run()) over HTTP."
    )
    a = p.add_argument
    a("--entry-script", "--entry_script", dest="entry_script", help="the scoring script (AZUREML_ENTRY_SCRIPT)")
    a("--model-dir", "--model_dir", dest="model_dir", help="sets AZUREML_MODEL_DIR")
    a("--source-dir", dest="source_dir", help="sets AZUREML_SOURCE_DIRECTORY (added to sys.path)")
    a(
        "--port",
        type=int,
        default=None,
        help="public port (default 5001; 0: pick a free one, reported in the status file and the log)",
    )
    a("--host", default=None, help="address to bind (default 127.0.0.1; images pass 0.0.0.0)")
    a("--workers", "--worker_count", dest="workers", type=int, default=None, help="worker processes (WORKER_COUNT)")
    a("--scoring-timeout-ms", dest="scoring_timeout_ms", type=int, default=None, help="SCORING_TIMEOUT_MS")
    a(
        "--max-body-bytes",
        dest="max_body_bytes",
        type=int,
        default=None,
        help="request body limit, 413 above it (NBDEPLOY_MAX_BODY_BYTES, default 100 MiB)",
    )
    a(
        "--max-header-bytes",
        dest="max_header_bytes",
        type=int,
        default=None,
        help="request line + headers limit, 431 above it (NBDEPLOY_MAX_HEADER_BYTES, default 64 KiB)",
    )
    a(
        "--header-timeout",
        dest="header_timeout",
        type=float,
        default=None,
        help="seconds a connection has to send a complete request head (NBDEPLOY_HEADER_TIMEOUT_S, default 5)",
    )
    a(
        "--keep-alive-timeout",
        dest="keep_alive_timeout",
        type=float,
        default=None,
        help="seconds an idle kept-alive connection stays open (NBDEPLOY_KEEP_ALIVE_TIMEOUT_S, default 5)",
    )
    a(
        "--max-connections",
        dest="max_connections",
        type=int,
        default=None,
        help="open connections per worker, idle ones closed first (NBDEPLOY_MAX_CONNECTIONS, default 1000)",
    )
    a("--log-format", dest="log_format", choices=["text", "json"], default=None, help="NBDEPLOY_LOG_FORMAT")
    a("--access-log", dest="access_log", action="store_true", help="log one line per request")
    a(
        "--graceful-timeout",
        dest="graceful_timeout",
        type=float,
        default=None,
        help="seconds to finish in-flight requests after SIGTERM (default 30)",
    )
    a("--reuse-port", dest="reuse_port", action="store_true", help="bind the public port with SO_REUSEPORT")
    a(
        "--hold-public",
        dest="hold_public",
        action="store_true",
        help="serve only on --admin-port until SIGUSR1, then bind the public port too",
    )
    a("--admin-port", dest="admin_port", type=int, default=None, help="private loopback port (0: pick one)")
    a(
        "--admin-host",
        dest="admin_host",
        default=None,
        help="address of --admin-port (default 127.0.0.1; a remote engine's candidate needs its own address)",
    )
    a("--status-file", dest="status_file", default=None, help="JSON state file, rewritten atomically")
    a("--ssl-certfile", dest="ssl_certfile", default=None, help="serve HTTPS with this PEM certificate (chain)")
    a("--ssl-keyfile", dest="ssl_keyfile", default=None, help="the private key of --ssl-certfile (PEM)")
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.port is not None and not 0 <= args.port < 65536:
        parser().error("--port must be in 0-65535 (0: pick a free port)")
    if args.workers is not None and args.workers < 1:
        parser().error("--workers must be at least 1")
    if bool(args.ssl_certfile) != bool(args.ssl_keyfile):
        parser().error("--ssl-certfile and --ssl-keyfile go together")
    for name in ("max_header_bytes", "header_timeout", "keep_alive_timeout", "max_connections"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            parser().error(f"--{name.replace('_', '-')} must be positive")
    from .master import serve

    sys.exit(serve(settings_mod.load(vars(args))))
