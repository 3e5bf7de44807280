"""%batch (through the magic's function, registered in a real IPython shell) and the CLI's options."""

from __future__ import annotations

import subprocess

import pytest
from IPython import get_ipython
from IPython.core.error import UsageError
from IPython.testing.globalipapp import start_ipython

from nbdeploy.batch import BatchFailed
from nbdeploy.notebook.batch_magic import batch_magic

from .conftest import TABULAR, cli, cli_env, write

pytestmark = pytest.mark.slow


@pytest.fixture
def shell(workspace):
    ip = get_ipython() or start_ipython()
    ip.register_magic_function(lambda line: batch_magic(line, workspace=workspace), magic_kind="line", magic_name="batch")
    return ip


def test_magic_runs_a_job_and_prints_plain_progress(tmp_path, shell, model, table_csv, capsys):
    script = write(tmp_path, "score_rows.py", TABULAR)
    result = shell.run_line_magic("batch", f"run -e {script} -i {table_csv} -o {tmp_path / 'out'} -m diabetes:1 --mini-batch-size 1000 --processes 1")
    assert (result.state, result.succeeded) == ("Succeeded", 3000)
    out = capsys.readouterr().out
    assert "score_rows: ended Succeeded" in out and "Succeeded: 3/3 mini-batches" in out


def test_magic_failures_raise_with_the_summary(tmp_path, shell, model, table_csv):
    script = write(tmp_path, "score_rows.py", TABULAR)
    with pytest.raises(BatchFailed) as info:
        shell.run_line_magic("batch", f"run -e {script} -i {table_csv} -o {tmp_path / 'out'} -m diabetes:1 --mini-batch-size 1000 "
                                      "--processes 1 --run-max-try 1 --env-var BATCH_TEST_BAD_ID=5 -q")
    rendered = "\n".join(info.value._render_traceback_())
    assert "rows.csv rows 1-1000" in rendered and "cannot score row id 5" in rendered


def test_magic_usage_errors_are_one_line(shell, tmp_path):
    with pytest.raises(UsageError, match="Usage: %batch run"):
        batch_magic("")
    with pytest.raises(UsageError, match="Missing option '-o' / '--output'"):
        batch_magic(f"run -e x.py -i {tmp_path}")
    with pytest.raises(UsageError, match="mini_batch_size"):
        batch_magic(f"run -e {write(tmp_path, 's.py', TABULAR)} -i {tmp_path / 's.py'} -o {tmp_path / 'o'} --mini-batch-size ten")


def test_cli_arguments_reach_sys_argv_and_summary_only_keeps_counts(tmp_path, workspace, model, table_csv):
    script = write(tmp_path, "args.py", """
        import argparse, os, pathlib
        from azureml_user.parallel_run import EntryScript

        def init():
            global args
            parser = argparse.ArgumentParser()
            parser.add_argument("--tag")
            args, _ = parser.parse_known_args()

        def run(mini_batch):
            out = pathlib.Path(EntryScript().output_dir) / f"part-{mini_batch['id'].iloc[0]}.txt"
            out.write_text(f"{args.tag} {len(mini_batch)}")
            return [1] * len(mini_batch)
    """)
    done = subprocess.run(cli("batch", "run", "-e", str(script), "-i", str(table_csv), "-o", str(tmp_path / "out"),
                              "--mini-batch-size", "1000", "--output-action", "summary_only", "--processes", "1", "-q",
                              "--", "--tag", "hello"),
                          env=cli_env(workspace), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Succeeded: 3/3 mini-batches, 3000 succeeded" in done.stdout
    parts = sorted(p.read_text() for p in (tmp_path / "out").glob("part-*.txt"))
    assert parts == ["hello 1000"] * 3
    assert not (tmp_path / "out" / "parallel_run_step.txt").exists()


def test_cli_refuses_a_shell_expanded_glob_and_skips_its_own_output(tmp_path, workspace, model):
    from .conftest import diabetes_rows

    data = tmp_path / "data"
    data.mkdir()
    for name in ("a.csv", "b.csv"):
        diabetes_rows(50).to_csv(data / name, index=False)
    script = write(tmp_path, "score_rows.py", TABULAR)
    base = ["batch", "run", "-e", str(script), "-m", "diabetes:1", "--processes", "1", "-q"]
    done = subprocess.run(cli(*base, "-i", str(data / "a.csv"), str(data / "b.csv"), "-o", str(tmp_path / "o")),
                          env=cli_env(workspace), capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "quote globs" in done.stderr
    for _ in range(2):  # the output folder lies inside the input folder: a rerun still finds the same job
        done = subprocess.run(cli(*base, "-i", str(data), "-o", str(data / "out")), env=cli_env(workspace),
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    assert "resumed: 2 mini-batches were already done" in done.stdout
