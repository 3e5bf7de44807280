"""Base image helpers that need no engine and no debootstrap."""

from __future__ import annotations

from nbdeploy.builders import base_image as bi

A = "-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----"
B = "-----BEGIN CERTIFICATE-----\nBBB\n-----END CERTIFICATE-----"


def test_merge_pem_bundles_adds_only_new_certificates():
    merged, added = bi.merge_pem_bundles(A + "\n", f"{A}\n{B}\n{B}\n")
    assert added == 1 and merged == f"{A}\n{B}\n"
    assert bi.merge_pem_bundles(merged, B) == (merged, 0)


def test_cache_key_follows_inputs(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text(A)
    base = bi.BaseImageSpec()
    assert base.cache_key() == bi.BaseImageSpec(tag="other:tag").cache_key()
    assert base.cache_key() != bi.BaseImageSpec(suite="trixie").cache_key()
    with_ca = bi.BaseImageSpec(extra_ca=(ca,))
    key = with_ca.cache_key()
    ca.write_text(B)
    assert key != with_ca.cache_key() != base.cache_key()


def test_default_base_image():
    assert bi.default_base_image(environ={}) == "python:3.11-slim"
    assert bi.default_base_image(environ={"NBDEPLOY_BASE_IMAGE": "mine:1"}) == "mine:1"
    assert bi.default_base_image("env:2", environ={"NBDEPLOY_BASE_IMAGE": "mine:1"}) == "env:2"


def test_cli_help_lists_build_options():
    from click.testing import CliRunner

    from nbdeploy.cli.main import cli

    result = CliRunner().invoke(cli, ["base-image", "build", "--help"])
    assert result.exit_code == 0
    for option in ("--tag", "--suite", "--mirror", "--extra-ca"):
        assert option in result.output
