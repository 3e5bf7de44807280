"""Widgets driven headlessly (no browser: ipywidgets without a frontend) against real services."""

from __future__ import annotations

import time

import pytest

from nbdeploy.notebook.widgets import DeploymentPanel, ModelBrowser, ServicesBoard, WidgetSink
from nbdeploy.service import Webservice, deploy
from nbdeploy.specs import InferenceConfig

from .conftest import SCORE, SLOW_SCORE


def _wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def healthy(ip, diabetes_model, tmp_path):
    (tmp_path / "score.py").write_text(SCORE)
    svc = deploy("svc-w", ["diabetes"], InferenceConfig(str(tmp_path / "score.py")))
    svc.wait_for_deployment(timeout_sec=90)  # a hang fails fast, with the state and log tail
    return svc


def test_panel_shows_state_scores_tails_logs_and_deletes(healthy, diabetes_model):
    panel = DeploymentPanel(healthy, poll_interval=0.2)
    try:
        assert _wait_for(lambda: panel.state == "Healthy")
        assert panel.scoring_uri == healthy.scoring_uri and "data-state='Healthy'" in panel.header.value
        panel.test_input.value = '{"data": [[0,0,0,0,0,0,0,0,0,0]]}'
        panel.test_button.click()
        assert panel.last_response.startswith("[") and panel.last_latency_ms > 0
        assert panel.score("not json") is None and "answered" in panel.last_response
        assert "ready for serving traffic" in panel.refresh_logs()
        panel.follow(True)
        assert panel.follow_toggle.value and panel.following
        panel.delete_button.click()
        assert panel.confirm_box.layout.display == "flex"
        panel.confirm_box.children[2].click()  # cancel
        assert Webservice.list() != []
        panel.request_delete()
        panel.confirm_delete()
        assert panel.deleted and panel.state == "Deleted" and Webservice.list() == []
        assert not panel.poller.running
    finally:
        panel.close()


def test_closing_the_panel_mid_deploy_stops_the_poller_and_the_deploy_goes_on(ip, diabetes_model, tmp_path):
    (tmp_path / "slow.py").write_text(SLOW_SCORE)
    svc = deploy("svc-close", ["diabetes"], InferenceConfig(str(tmp_path / "slow.py")))
    panel = DeploymentPanel(svc, poll_interval=0.1)
    sink = WidgetSink(panel, display=False)
    assert _wait_for(lambda: panel.poller.ticks >= 2 and panel.state == "Transitioning")
    panel.close()
    assert panel.closed and not panel.poller.running
    ticks = panel.poller.ticks
    status = svc.wait_for_deployment(sink=sink)  # the sink drops reports to the closed panel
    assert str(status.state) == "Healthy" and panel.poller.ticks == ticks
    assert svc.run({"data": diabetes_model[:1].tolist()})


def test_panel_update_reports_progress(healthy):
    panel = DeploymentPanel(healthy, poll=False)
    panel.update_button.click()
    assert Webservice("svc-w").revision == 2
    assert any("Healthy" in line for line in panel.progress)
    panel.close()


def test_services_board_lists_live_states_and_opens_a_panel(healthy):
    board = ServicesBoard(poll_interval=0.1)
    try:
        assert board.states == {"svc-w": "Healthy"} and "svc-w" in board.table.value
        panel = board.open_panel("svc-w")
        assert panel.state == "Healthy"
        healthy.delete()
        assert _wait_for(lambda: board.states == {})
    finally:
        board.close()
    assert not board.poller.running and not board.panel.poller.running


def test_model_browser_search_select_download_deploy_delete(ip, diabetes_model, tmp_path):
    ip.run_line_magic("register_model", f"{tmp_path / 'model.joblib'} --name other --tag area=retail")
    browser = ModelBrowser()
    assert browser.results == ["diabetes:1", "other:1"]
    assert browser.search(name="diab") == ["diabetes:1"]
    assert browser.search(name="", tags="area=retail") == ["other:1"]
    browser.search(name="", tags="")
    model = browser.select("diabetes:1")
    assert "model.joblib" in browser.details.value and model.id == "diabetes:1"
    path = browser.download(str(tmp_path / "dl"))
    assert path.endswith("model.joblib")
    (tmp_path / "score.py").write_text(SCORE)
    panel = browser.deploy("svc-mb", str(tmp_path / "score.py"))
    try:
        assert panel.state == "Healthy" and browser.message == "deployed svc-mb"
        browser.request_delete()
        browser.confirm_delete()  # refused: in use
        assert "used by" in browser.message and browser.search() == ["diabetes:1", "other:1"]
        browser.select("other:1")
        browser.delete_button.click()
        browser.confirm_box.children[1].click()
        assert browser.results == ["diabetes:1"]
    finally:
        browser.close()


def test_a_refused_update_stays_visible_and_the_badge_never_flips(healthy, tmp_path):
    panel = DeploymentPanel(healthy, poll_interval=0.05)
    seen: list[str] = []
    panel.observe(lambda change: seen.append(change["new"]), "state")
    try:
        assert _wait_for(lambda: panel.state == "Healthy")
        seen.clear()
        (tmp_path / "broken.py").write_text("def init():\n    raise RuntimeError('bad weights')\n\ndef run(d):\n    return d\n")
        panel.update(inference_config=InferenceConfig(str(tmp_path / "broken.py")))
        assert set(seen) <= {"Healthy"}, seen  # the new revision's Transitioning/Failed never reached the badge
        assert panel.state == "Healthy" and panel.operation_failed
        assert "bad weights" in panel.operation and "keeps serving" in panel.operation
        time.sleep(0.3)  # polls later, the failed update is still shown
        assert panel.operation_failed and not panel.test_button.disabled
    finally:
        panel.close()


def test_actions_are_disabled_on_a_failed_service(ip, diabetes_model, tmp_path):
    from nbdeploy.errors import DeploymentFailed

    (tmp_path / "bad.py").write_text("def init():\n    raise ValueError('no')\n\ndef run(d):\n    return d\n")
    svc = deploy("svc-dead", ["diabetes"], InferenceConfig(str(tmp_path / "bad.py")))
    with pytest.raises(DeploymentFailed):
        svc.wait_for_deployment(timeout_sec=60)
    panel = DeploymentPanel(svc, poll_interval=0.05)
    try:
        assert _wait_for(lambda: panel.state == "Failed")
        assert panel.test_button.disabled and panel.update_button.disabled and not panel.delete_button.disabled
        assert "http://" not in panel.endpoints_html.value  # no dead scoring URL
    finally:
        panel.close()


def test_model_browser_refreshes_itself_and_deploys_without_blocking(ip, diabetes_model, tmp_path):
    browser = ModelBrowser(poll_interval=0.1)
    try:
        assert "nbdeploy models" in browser.children[0].value and browser.versions.options[0][1] == "diabetes:1"
        ip.run_line_magic("register_model", f"{tmp_path / 'model.joblib'} --name fresh --description 'from a cell'")
        assert _wait_for(lambda: "fresh:1" in browser.results, 10)  # no Search click needed
        browser.select("fresh:1")
        assert "from a cell" in browser.details.value
        browser.select("diabetes:1")
        (tmp_path / "score.py").write_text(SCORE)
        browser.service_box.value, browser.entry_box.value = "svc-bg", str(tmp_path / "score.py")
        browser.deploy_button.click()
        assert browser._deploying is not None and browser._deploying.is_alive()  # the click returned, the deploy runs on
        browser._deploying.join(120)
        assert browser.message == "deployed svc-bg" and browser.panel_box.children[0].state == "Healthy"
    finally:
        browser.close()


def test_services_board_chooser_shows_a_service(healthy):
    board = ServicesBoard(poll=False)
    try:
        assert board.chooser.value == "svc-w" and "padding" in board.table.value
    finally:
        board.close()
