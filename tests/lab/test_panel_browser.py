"""The side panel in JupyterLab in a real browser (Debian's chromium + chromedriver, driven by selenium).

No notebook and no kernel: the panel lists a service deployed on the process target from Python, shows
state changes pushed by the server (the watcher's polls are switched off here, so only the push can
deliver them), deletes the service through its confirmation dialog, deploys a version from the registry tree, works again
after a page reload, and stays live with two notebooks open.
Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import (
    ROOT,
    TOKEN,
    LabServer,
    ensure_labextension,
    make_workspace,
    start_server,
    stop_server,
)

ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
SLOW_SCORE_HEAD = "import time\ntime.sleep(3)  # a slow init(): the update stays in flight for a while\n"


def _require_browser() -> None:
    pytest.importorskip("selenium")
    pytest.importorskip("jupyterlab")
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        if os.environ.get("CI") == "true":
            raise AssertionError("chromium and chromium-driver are missing: apt-get install -y chromium chromium-driver")
        pytest.skip("chromium/chromium-driver not installed (apt-get install -y chromium chromium-driver)")


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[LabServer]:
    _require_browser()
    extensions = tmp_path / "labextensions"
    extensions.mkdir()
    (extensions / "nbdeploy").symlink_to(ensure_labextension(), target_is_directory=True)
    root = tmp_path / "root"
    root.mkdir()
    workspace = make_workspace(root)
    (root / "score_slow.py").write_text(SLOW_SCORE_HEAD + (root / "score.py").read_text())
    server = start_server(
        root, workspace, app="jupyterlab",
        extra=[f"--LabApp.extra_labextensions_path={extensions}", "--LabApp.expose_app_in_browser=True"],
        watch={"fast_poll_s": 3600.0, "slow_poll_s": 3600.0})  # no polls: only pushed database changes arrive
    yield server
    stop_server(server)


def _deploy(server: LabServer, name: str, entry: str = "score.py"):  # type: ignore[no-untyped-def]
    from nbdeploy import InferenceConfig, ProcessDeploymentConfig, deploy

    svc = deploy(name, ["scaler:1"], InferenceConfig(str(server.root / entry)), ProcessDeploymentConfig(), workspace=server.workspace)
    svc.wait_for_deployment()
    return svc


@pytest.mark.slow
def test_panel_lists_pushes_deletes_and_survives_a_reload(lab: LabServer) -> None:
    import httpx
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from nbdeploy import InferenceConfig
    from nbdeploy.service import Webservice

    svc = _deploy(lab, "panel-svc")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    ARTIFACTS.mkdir(exist_ok=True)
    wait = WebDriverWait(driver, 90)
    row = "#nbdeploy-panel .nbdeploy-service[data-service='{}']"

    def row_text(name: str) -> str:
        return driver.execute_script(f"const r = document.querySelector(\"{row.format(name)}\"); return r ? r.innerText : '';")

    def open_panel() -> None:
        wait.until(lambda d: d.execute_script("return !!window.jupyterapp && !!document.querySelector(\"[data-id='nbdeploy-panel']\")"))
        tab = driver.find_element(By.CSS_SELECTOR, "[data-id='nbdeploy-panel']")
        if "lm-mod-current" not in (tab.get_attribute("class") or ""):
            tab.click()
        wait.until(lambda d: d.find_element(By.ID, "nbdeploy-panel").is_displayed())
        wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#nbdeploy-panel .nbdeploy-live").text == "live")

    try:
        driver.get(f"{lab.base}/lab?token={TOKEN}")
        open_panel()
        # 1. the service deployed from Python is listed, Healthy, with its target, models and scoring URL
        wait.until(lambda d: "Healthy" in row_text("panel-svc"))
        text = row_text("panel-svc")
        assert "process" in text and "models scaler:1" in text and "http://127.0.0.1:" in text, text
        assert not driver.find_elements(By.CSS_SELECTOR, "#nbdeploy-panel .nbdeploy-banner:not([hidden])")  # handshake ok
        driver.save_screenshot(str(ARTIFACTS / "lab-panel-services.png"))

        # 2. a state change made outside the browser is pushed (polls are off): an update starts, then serves
        started = time.monotonic()
        updating = threading.Thread(target=svc.update, kwargs={"inference_config": InferenceConfig(str(lab.root / "score_slow.py"))})
        updating.start()
        WebDriverWait(driver, 10, poll_frequency=0.02).until(lambda d: "revision 2 starting" in row_text("panel-svc"))
        latency = time.monotonic() - started
        driver.save_screenshot(str(ARTIFACTS / "lab-panel-update-in-flight.png"))
        updating.join(120)
        WebDriverWait(driver, 10).until(lambda d: "revision 2 Healthy" in row_text("panel-svc"))
        (ARTIFACTS / "lab-panel-latency.txt").write_text(f"update started -> panel shows revision 2 starting: {latency:.3f} s\n")

        # 3. the service view: test box with the answer, then delete with confirmation
        # (one script: the list may be redrawn by a pushed event between a find and a click)
        driver.execute_script(f"document.querySelector(\"{row.format('panel-svc')} .nbdeploy-service-name\").click()")
        view = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#nbdeploy-panel .nbdeploy-service-view:not([hidden])"))
        wait.until(lambda d: "init done" in d.find_element(By.CSS_SELECTOR, ".nbdeploy-logs").text)  # the log tail
        payload = view.find_element(By.CSS_SELECTOR, ".nbdeploy-payload")
        payload.send_keys('{"data": [1, 2]}')
        view.find_element(By.CSS_SELECTOR, ".nbdeploy-send").click()
        wait.until(lambda d: "sending" not in d.find_element(By.CSS_SELECTOR, ".nbdeploy-answer").text)
        answer = driver.find_element(By.CSS_SELECTOR, ".nbdeploy-answer").text
        assert answer.split() == ["[", "2,", "4", "]"], answer
        payload.clear()
        payload.send_keys('{"data": "boom"}')
        view.find_element(By.CSS_SELECTOR, ".nbdeploy-send").click()
        wait.until(lambda d: "boom is not a number list" in d.find_element(By.CSS_SELECTOR, ".nbdeploy-answer").text)
        driver.save_screenshot(str(ARTIFACTS / "lab-panel-service-view.png"))
        view.find_element(By.CSS_SELECTOR, ".nbdeploy-delete").click()
        wait.until(lambda d: d.find_element(By.CSS_SELECTOR, ".jp-Dialog .jp-mod-accept")).click()
        wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, row.format("panel-svc")))
        assert [s.name for s in Webservice.list(lab.workspace)] == []
        driver.save_screenshot(str(ARTIFACTS / "lab-panel-after-delete.png"))

        # 4. deploy a model version from the registry tree; it appears and turns Healthy (pushed)
        driver.execute_script("const d = document.querySelector(\"#nbdeploy-panel details[data-model='scaler']\"); d.open = true;")
        version = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#nbdeploy-panel .nbdeploy-version[data-id='scaler:2']"))
        assert "scale=3" in version.text and "multiplies by 3" in version.text and "not deployed" in version.text
        version.find_element(By.CSS_SELECTOR, ".nbdeploy-deploy-open").click()
        version.find_element(By.CSS_SELECTOR, ".nbdeploy-deploy-name").send_keys("second-svc")
        version.find_element(By.CSS_SELECTOR, ".nbdeploy-deploy-go").click()
        wait.until(lambda d: "Healthy" in row_text("second-svc"))
        assert "models scaler:2" in row_text("second-svc")
        driver.save_screenshot(str(ARTIFACTS / "lab-panel-deployed-from-panel.png"))

        # 5. after a page reload the panel works again
        driver.refresh()
        open_panel()
        wait.until(lambda d: "Healthy" in row_text("second-svc"))
        assert not driver.find_elements(By.CSS_SELECTOR, row.format("panel-svc"))
        with httpx.Client(headers={"Authorization": f"token {TOKEN}"}, trust_env=False) as client:
            assert client.get(f"{lab.base}/api/kernels").json() == []  # no kernel was needed
        driver.save_screenshot(str(ARTIFACTS / "lab-panel-after-reload.png"))
        # 6. with two notebooks open (and their kernels), the one panel stays live
        for _ in range(2):
            driver.execute_script("window.jupyterapp.commands.execute('notebook:create-new', {kernelName: 'python3'})")
        wait.until(lambda d: d.execute_script("return document.querySelectorAll('.jp-NotebookPanel').length") == 2)
        _deploy(lab, "third-svc")
        wait.until(lambda d: "Healthy" in row_text("third-svc"))
        assert len(driver.find_elements(By.CSS_SELECTOR, ".nbdeploy-panel")) == 1
        driver.save_screenshot(str(ARTIFACTS / "lab-panel-with-notebooks.png"))
        logs = driver.get_log("browser") if hasattr(driver, "get_log") else []
        severe = [e["message"] for e in logs if e.get("level") == "SEVERE" and "nbdeploy" in e.get("message", "")]
        # the one error answer expected: the "boom" test request (502 with the entry script's exception)
        assert [m for m in severe if not ("/score?" in m and "502" in m)] == [], severe
    finally:
        driver.quit()
