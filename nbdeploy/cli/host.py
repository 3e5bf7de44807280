"""``nbdeploy host add|list|show|check|remove``: Docker engines saved in the workspace as container hosts.

:func:`engine_group` builds the same commands for edge devices (``nbdeploy device``, with tags).
"""

from __future__ import annotations

from typing import Any

import click

from nbdeploy.cli._common import echo_json, pairs, table, workspace_from


def engine_group(kind: str, help_text: str) -> click.Group:
    """The add/list/show/check/remove commands for saved engines of ``kind`` ("host" or "device")."""
    with_tags = kind == "device"

    @click.group(kind, help=help_text)
    def group() -> None:
        pass

    def store(ctx: click.Context) -> Any:  # an EngineStore, imported lazily
        from nbdeploy.remote.store import EngineStore

        return EngineStore(kind, workspace_from(ctx))  # type: ignore[arg-type]

    @group.command("add")
    @click.argument("name")
    @click.option(
        "--url", required=True, help="tcp://HOST:PORT (TLS with the --tls-* options), ssh://USER@HOST or unix:///PATH."
    )
    @click.option(
        "--tls-ca", type=click.Path(dir_okay=False), help="CA certificate that signed the engine's certificate."
    )
    @click.option("--tls-cert", type=click.Path(dir_okay=False), help="Client certificate.")
    @click.option("--tls-key", type=click.Path(dir_okay=False), help="Client certificate's key.")
    @click.option(
        "--cert-path",
        type=click.Path(file_okay=False),
        help="Folder with ca.pem, cert.pem and key.pem (DOCKER_CERT_PATH layout) instead of the three above.",
    )
    @click.option(
        "--tls-verify/--no-tls-verify",
        default=True,
        show_default=True,
        help="Check the engine's certificate against --tls-ca.",
    )
    @click.option("--check", "check_now", is_flag=True, help="Connect now and fail if the engine does not answer.")
    @click.option("--replace", is_flag=True, help=f"Overwrite a saved {kind} of the same name.")
    @click.option(
        "--tag",
        "tags",
        multiple=True,
        metavar="KEY=VALUE",
        hidden=not with_tags,
        help="A tag (repeatable); tags select groups of devices: --selector site=plant-3.",
    )
    @click.pass_context
    def add(
        ctx: click.Context,
        name: str,
        url: str,
        tls_ca: str | None,
        tls_cert: str | None,
        tls_key: str | None,
        cert_path: str | None,
        tls_verify: bool,
        check_now: bool,
        replace: bool,
        tags: tuple[str, ...],
    ) -> None:
        """Save the Docker engine at URL as NAME."""
        from pathlib import Path

        from nbdeploy.errors import InvalidInput
        from nbdeploy.remote.connection import EngineConnection

        if tags and not with_tags:
            raise InvalidInput(f"--tag applies to devices (nbdeploy device add), not to {kind}s.")
        if cert_path:
            if tls_ca or tls_cert or tls_key:
                raise InvalidInput("Give either --cert-path or --tls-ca/--tls-cert/--tls-key, not both.")
            folder = Path(cert_path)
            tls_ca, tls_cert, tls_key = (str(folder / f) for f in ("ca.pem", "cert.pem", "key.pem"))
        connection = EngineConnection(
            url=url,
            tls_ca=tls_ca if tls_verify or tls_ca else None,
            tls_cert=tls_cert,
            tls_key=tls_key,
            tls_verify=tls_verify,
            name=name,
        )
        s = store(ctx)
        info = connection.check() if check_now else None
        saved = s.add(name, connection, tags=pairs("tag", tags), replace=replace)
        if info is not None:
            s.record_check(name, info)
        tls = "TLS" if connection.uses_tls else "no TLS"
        click.echo(
            f"Saved {kind} {name}: {saved.connection.url} ({tls})"
            + (f", Docker {info.version} {info.os}/{info.arch}" if info else "")
        )

    @group.command("list")
    @click.option(
        "--selector",
        "-s",
        metavar="KEY=VALUE[,...]",
        hidden=not with_tags,
        help="Only devices whose tags match every pair.",
    )
    @click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
    @click.pass_context
    def list_(ctx: click.Context, selector: str | None, output: str) -> None:
        """List saved engines."""
        from nbdeploy.remote.store import parse_selector

        engines = store(ctx).list(parse_selector(selector))
        if output == "json":
            echo_json([e.as_dict() for e in engines])
            return
        headers = ["NAME", "URL", "TLS", "LAST SEEN", "ENGINE"] + (["TAGS"] if with_tags else [])
        rows = []
        for e in engines:
            c = e.connection
            tls = ("verify" if c.tls_verify else "no-verify") if c.uses_tls else "-"
            engine = f"{e.info.version} {e.info.os}/{e.info.arch}" if e.info else "-"
            row = [e.name, c.url, tls, e.last_seen or "never", engine]
            if with_tags:
                row.append(",".join(f"{k}={v}" for k, v in sorted(e.tags.items())) or "-")
            rows.append(row)
        click.echo(table(headers, rows))

    @group.command("show")
    @click.argument("name")
    @click.pass_context
    def show(ctx: click.Context, name: str) -> None:
        """Show a saved engine (JSON)."""
        echo_json(store(ctx).get(name).as_dict())

    @group.command("check")
    @click.argument("name")
    @click.option("--timeout", type=float, default=10.0, show_default=True, help="Seconds to wait for an answer.")
    @click.pass_context
    def check(ctx: click.Context, name: str, timeout: float) -> None:
        """Connect to a saved engine; prints its version, or why it cannot be reached."""
        info = store(ctx).check(name, timeout=timeout)
        click.echo(f"{name}: Docker {info.version} (API {info.api_version}) {info.os}/{info.arch}")

    @group.command("remove")
    @click.argument("name")
    @click.pass_context
    def remove(ctx: click.Context, name: str) -> None:
        """Forget a saved engine and delete its copied TLS files."""
        store(ctx).remove(name)
        click.echo(f"Removed {kind} {name}")

    return group


host = engine_group("host", "Docker engines saved as container hosts (the container-instance target).")
