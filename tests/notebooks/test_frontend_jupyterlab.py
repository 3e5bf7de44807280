"""A real frontend: JupyterLab + headless Chromium (Debian's chromium and chromium-driver, driven by
Selenium) runs the quickstart and sees the live DeploymentPanel reach Healthy. Saves a screenshot under
test-artifacts/."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from .conftest import EXAMPLES, ROOT, require

ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _require_browser() -> None:
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        if os.environ.get("CI") == "true":
            raise AssertionError("chromium and chromium-driver are missing: apt-get install -y chromium chromium-driver")
        pytest.skip("chromium/chromium-driver not installed (apt-get install -y chromium chromium-driver)")


@pytest.fixture
def lab(tmp_path):
    require("jupyterlab")
    require("papermill")
    import nbformat
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    nb = load_notebook_node(str(EXAMPLES / "quickstart.ipynb"))
    nb = parameterize_notebook(nb, {"workspace": str(tmp_path / "ws"), "cleanup": False, "service_name": "lab-svc"})
    nbformat.write(nb, tmp_path / "quickstart.ipynb")
    port, token = _free_port(), "nbdeploy-test-token"
    env = {k: v for k, v in os.environ.items() if k not in ("NBDEPLOY_WIDGETS", "NBDEPLOY_WORKSPACE", "JPY_SESSION_NAME")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={tmp_path}", "--LabApp.expose_app_in_browser=True",
         "--ServerApp.disable_check_xsrf=True", *(["--allow-root"] if os.geteuid() == 0 else [])],
        cwd=tmp_path, env=env, stdout=open(tmp_path / "lab.log", "wb"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.terminate()
        raise AssertionError("JupyterLab did not start:\n" + (tmp_path / "lab.log").read_text()[-3000:])
    yield f"{base}/lab/tree/quickstart.ipynb?token={token}", tmp_path
    proc.terminate()
    proc.wait(30)
    from nbdeploy.service import Webservice

    for svc in Webservice.list(tmp_path / "ws"):
        svc.delete()


@pytest.mark.slow
def test_quickstart_in_jupyterlab_shows_a_healthy_panel(lab):
    require("selenium")
    _require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    url, folder = lab
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1800"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        driver.get(url)
        wait = WebDriverWait(driver, 120)
        wait.until(lambda d: d.execute_script(
            "const a = window.jupyterapp; const w = a && a.shell.currentWidget;"
            "return !!(w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel"
            " && w.sessionContext.session.kernel.status === 'idle');"))
        driver.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        healthy = "//div[contains(@class,'nbdeploy-deployment-panel')]//span[@data-state='Healthy']"
        badge = WebDriverWait(driver, 240).until(ec.presence_of_element_located((By.XPATH, healthy)))
        driver.execute_script("arguments[0].scrollIntoView({block: 'start'})", badge)
        # the rest of the notebook (update, score) runs on; wait until the last cell is done
        wait.until(lambda d: d.execute_script(
            "const w = window.jupyterapp.shell.currentWidget; return w.sessionContext.session.kernel.status === 'idle'"
            " && !document.querySelector('.jp-InputPrompt')?.textContent.includes('[*]')"
            " && [...document.querySelectorAll('.jp-InputPrompt')].every(p => !p.textContent.includes('*'));"))
        panel = driver.find_element(By.CSS_SELECTOR, ".nbdeploy-deployment-panel")
        driver.execute_script("arguments[0].scrollIntoView({block: 'start'})", panel)
        time.sleep(1)
        driver.save_screenshot(str(ARTIFACTS / "jupyterlab-deployment-panel.png"))
        assert "scoring:" in panel.text and "http://127.0.0.1:" in panel.text
        time.sleep(3)  # a few poller rounds: every panel (deploy and update) stays Healthy on the new revision
        states = [b.get_attribute("data-state") for b in driver.find_elements(By.CSS_SELECTOR, ".nbdeploy-deployment-panel .nbdeploy-state")]
        assert len(states) == 2 and set(states) == {"Healthy"}, states
        driver.save_screenshot(str(ARTIFACTS / "jupyterlab-deployment-panel.png"))
        errors = driver.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
        assert not [e.text for e in errors if "Error" in e.text]
    finally:
        driver.quit()
