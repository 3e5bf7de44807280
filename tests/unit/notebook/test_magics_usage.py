"""User mistakes in magics raise UsageError with the fix, and change nothing."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError

GOOD_SCRIPT = "def init():\n    pass\n\ndef run(raw_data):\n    return raw_data\n"


def test_unknown_option_is_a_usage_error(ip, model_file):
    with pytest.raises(UsageError, match="unrecognized arguments: --colour"):
        ip.run_line_magic("register_model", f"{model_file} --name m --colour red")
    with pytest.raises(UsageError, match="unrecognized arguments"):
        ip.run_line_magic("deploy", "svc-x --model m --bogus 1")
    with pytest.raises(UsageError, match="No target named 'moon'. Available: aci, aks, edge, local, process"):
        ip.run_line_magic("deploy", "svc-x --model m --target moon")
    with pytest.raises(UsageError):
        ip.run_line_magic("logs", "")


def test_score_script_with_a_syntax_error_is_refused_and_not_written(ip, tmp_path):
    with pytest.raises(UsageError, match=r"score\.py line 2: syntax error"):
        ip.run_cell_magic("score_script", "score.py", "def init():\ndef run(x) return x\n")
    assert not (tmp_path / "score.py").exists()


def test_score_script_without_run_is_refused(ip, tmp_path):
    with pytest.raises(UsageError, match=r"defines no run\(\)"):
        ip.run_cell_magic("score_script", "", "def init():\n    pass\n")
    assert not (tmp_path / "score.py").exists()


def test_score_script_writes_and_remembers(ip, tmp_path, capsys):
    ip.run_cell_magic("score_script", "sub/score2.py", GOOD_SCRIPT)
    assert (tmp_path / "sub" / "score2.py").read_text() == GOOD_SCRIPT
    assert "init and run found" in capsys.readouterr().out


def test_deploy_unknown_model_names_close_matches(ip, model_file):
    ip.run_line_magic("register_model", f"{model_file} --name diabetes")
    ip.run_cell_magic("score_script", "", GOOD_SCRIPT)
    with pytest.raises(UsageError, match="No model named 'diabetis'. Did you mean 'diabetes'"):
        ip.run_line_magic("deploy", "svc-x --model diabetis")
    with pytest.raises(UsageError, match="Existing versions of 'diabetes': 1"):
        ip.run_line_magic("deploy", "svc-x --model diabetes:7")
    assert len(ip.run_line_magic("services", "")) == 0


def test_deploy_unknown_environment(ip, model_file):
    ip.run_line_magic("register_model", f"{model_file} --name diabetes")
    ip.run_cell_magic("environment", "sklearn-env", "pip: [scikit-learn]\n")
    ip.run_cell_magic("score_script", "", GOOD_SCRIPT)
    with pytest.raises(UsageError, match="No environment named 'sklearn-evn'. Did you mean 'sklearn-env'"):
        ip.run_line_magic("deploy", "svc-x --model diabetes --env sklearn-evn")


def test_deploy_without_entry_script(ip, model_file):
    ip.run_line_magic("register_model", f"{model_file} --name diabetes")
    with pytest.raises(UsageError, match="No entry script: write one with %%score_script"):
        ip.run_line_magic("deploy", "svc-x --model diabetes")


@pytest.mark.parametrize("target", ["fpga"])
def test_targets_not_built_are_never_offered(ip, target):
    with pytest.raises(UsageError, match=f"No target named '{target}'"):
        ip.run_line_magic("deploy", f"svc-x --model m --target {target}")


def test_option_that_does_not_apply_to_the_target(ip, model_file):
    ip.run_line_magic("register_model", f"{model_file} --name diabetes")
    ip.run_cell_magic("score_script", "", GOOD_SCRIPT)
    with pytest.raises(UsageError, match=r"--namespace is not an option of target 'process' \(it is one of aks\); "
                                         r"process's own options: --port, --host, --workers, --isolated"):
        ip.run_line_magic("deploy", "svc-x --model diabetes --namespace prod")
    with pytest.raises(UsageError, match=r"unrecognized arguments: --replicas 2: not options of --target local; "
                                         r"its own options: --port, --host, --cpu"):
        ip.run_line_magic("deploy", "svc-x --model diabetes --target local --replicas 2")
    assert len(ip.run_line_magic("services", "")) == 0


def test_deploy_help_is_generated_from_the_targets(ip, capsys):
    assert ip.run_line_magic("deploy", "--help") is None
    everything = capsys.readouterr().out
    assert "--replicas" in everything and "(aks)" in everything and "--workers" in everything
    ip.run_line_magic("deploy", "--target aks --help")
    aks = capsys.readouterr().out
    assert "options of --target aks" in aks and "--replicas" in aks and "--workers" not in aks


def test_bad_tag_environment_and_inference_config(ip, model_file):
    with pytest.raises(UsageError, match="--tag takes key=value"):
        ip.run_line_magic("register_model", f"{model_file} --name m --tag oops")
    with pytest.raises(UsageError, match="unknown environment key"):
        ip.run_cell_magic("environment", "e1", "pipp: [x]\n")
    with pytest.raises(UsageError, match="entryScript"):
        ip.run_cell_magic("inference_config", "", '{"sourceDirectory": "."}')
    with pytest.raises(UsageError, match="does not exist"):
        ip.run_cell_magic("inference_config", "", "entryScript: missing.py\n")


def test_score_mistakes(ip):
    with pytest.raises(UsageError, match="needs a request body"):
        ip.run_line_magic("score", "svc-x")
    with pytest.raises(UsageError, match="not valid JSON"):
        ip.run_line_magic("score", "svc-x {data: 1}")
    with pytest.raises(UsageError, match="No variable named 'nothing'"):
        ip.run_line_magic("score", "svc-x $nothing")
    with pytest.raises(UsageError, match="No service named 'svc-x'"):
        ip.run_line_magic("score", 'svc-x {"data": 1}')
    with pytest.raises(UsageError, match="No service named 'svc-x'"):
        ip.run_line_magic("undeploy", "svc-x")


def test_models_table(ip, model_file):
    assert "No models registered" in repr(ip.run_line_magic("models", ""))
    ip.run_line_magic("register_model", f"{model_file} --name diabetes --tag area=health")
    ip.run_line_magic("register_model", f"{model_file} --name diabetes")
    table = ip.run_line_magic("models", "--latest")
    assert len(table) == 1 and "diabetes" in repr(table) and "<table>" in table._repr_html_()
    assert len(ip.run_line_magic("models", "--tag area=health")) == 1


def test_inference_config_is_used_by_deploy(ip, tmp_path):
    (tmp_path / "s.py").write_text(GOOD_SCRIPT)
    ip.run_cell_magic("inference_config", "", '{"entryScript": "s.py"}')
    magics = ip.magics_manager.registry["NbdeployMagics"]
    assert magics.session.inference_config.entry_script_path == (tmp_path / "s.py").resolve()


def test_options_take_shell_quoting(ip, model_file):
    model = ip.run_line_magic("register_model", f"{model_file} --name quoted --description 'a tuned model' --tag 'team=data science'")
    assert model.description == "a tuned model" and model.tags == {"team": "data science"}
    with pytest.raises(UsageError, match="check the quotes"):
        ip.run_line_magic("register_model", f"{model_file} --name q --description 'unclosed")


def test_every_magic_has_help(ip, capsys):
    for magic in ("register_model", "models", "services", "logs", "undeploy", "nbdeploy_workspace"):
        assert ip.run_line_magic(magic, "--help") is None
        assert "usage:" in capsys.readouterr().out.lower()


def test_score_accepts_the_quoted_json_its_hint_shows(ip):
    with pytest.raises(UsageError, match="No service named 'svc-x'"):  # the body parsed: the service is the problem
        ip.run_line_magic("score", """svc-x '{"data": [[1, 2]]}'""")


def test_a_second_score_script_does_not_silently_change_the_default(ip, tmp_path, capsys):
    ip.run_cell_magic("score_script", "score.py", GOOD_SCRIPT)
    ip.run_cell_magic("score_script", "broken.py", GOOD_SCRIPT)
    out = capsys.readouterr().out
    assert "%deploy's default stays score.py" in out
    magics = ip.magics_manager.registry["NbdeployMagics"]
    assert magics.session.entry_script == (tmp_path / "score.py").resolve()
    ip.run_cell_magic("score_script", "broken.py --default", GOOD_SCRIPT)
    assert magics.session.entry_script == (tmp_path / "broken.py").resolve()


def test_deploy_of_a_service_not_made_by_deploy_is_refused_with_the_fix(ip, model_file, tmp_path):
    import nbdeploy

    model = ip.run_line_magic("register_model", f"{model_file} --name m")
    (tmp_path / "s.py").write_text(GOOD_SCRIPT)
    ws = ip.magics_manager.registry["NbdeployMagics"].session.workspace()
    nbdeploy.deploy("from-python", [model], nbdeploy.InferenceConfig(str(tmp_path / "s.py")), workspace=ws).delete
    with pytest.raises(UsageError, match="exists \\(not deployed with %deploy\\): add --overwrite"):
        ip.run_line_magic("deploy", f"from-python --model m --entry {tmp_path / 's.py'}")


def test_interrupt_while_waiting_says_what_state_the_service_is_in():
    from nbdeploy.notebook.magics import _explain_interrupt
    from nbdeploy.targets.base import State, Status

    class Starting:
        name = "slow-svc"

        def status(self):
            return Status(State.TRANSITIONING, "init() is running")

    with pytest.raises(KeyboardInterrupt) as info:
        with _explain_interrupt(Starting()):
            raise KeyboardInterrupt
    shown = "\n".join(info.value._render_traceback_())
    assert "slow-svc is Transitioning (init() is running) and keeps starting in the background" in shown
    assert "%undeploy slow-svc" in shown


def test_registering_the_same_bytes_again_can_return_the_existing_version(ip, model_file):
    first = ip.run_line_magic("register_model", f"{model_file} --name same --tag a=1")
    again = ip.run_line_magic("register_model", f"{model_file} --name same --tag a=1 --if-changed")
    assert again.id == first.id == "same:1"
    changed = ip.run_line_magic("register_model", f"{model_file} --name same --tag a=2 --if-changed")
    assert changed.id == "same:2"
    assert ip.run_line_magic("register_model", f"{model_file} --name same --tag a=2").id == "same:3"  # default: new
