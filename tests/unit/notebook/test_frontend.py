"""Which progress sink a kernel gets: the widget panel only with a widget frontend, plain lines otherwise."""

from __future__ import annotations

import types

import pytest

from nbdeploy.notebook._frontend import sink_factory, widget_frontend_present
from nbdeploy.progress import LoggingSink, PlainSink

KERNEL_SHELL = types.SimpleNamespace(kernel=types.SimpleNamespace(comm_manager=object()))


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    monkeypatch.delenv("NBDEPLOY_WIDGETS", raising=False)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)


def test_terminal_ipython_has_no_widget_frontend(monkeypatch):
    monkeypatch.setenv("JPY_SESSION_NAME", "x.ipynb")
    assert not widget_frontend_present(types.SimpleNamespace())


def test_kernel_started_by_papermill_gets_plain_lines():
    assert not widget_frontend_present(KERNEL_SHELL)


def test_kernel_started_by_a_jupyter_server_session_gets_widgets(monkeypatch):
    monkeypatch.setenv("JPY_SESSION_NAME", "/home/me/quickstart.ipynb")
    assert widget_frontend_present(KERNEL_SHELL)


def test_environment_variable_forces_the_answer(monkeypatch):
    monkeypatch.setenv("JPY_SESSION_NAME", "x.ipynb")
    monkeypatch.setenv("NBDEPLOY_WIDGETS", "0")
    assert not widget_frontend_present(KERNEL_SHELL)
    monkeypatch.setenv("NBDEPLOY_WIDGETS", "1")
    assert widget_frontend_present(types.SimpleNamespace())


def test_sink_factory_outside_a_widget_frontend():
    assert isinstance(sink_factory(True), PlainSink)
    assert isinstance(sink_factory(False), LoggingSink)


def test_sink_factory_with_a_widget_frontend(monkeypatch):
    from nbdeploy.notebook.widgets.sink import WidgetSink

    monkeypatch.setenv("NBDEPLOY_WIDGETS", "1")
    assert isinstance(sink_factory(True), WidgetSink)
