"""Names and Dockerfile words that end in a newline are refused (issue 11 item 14): every rule is a full match."""

from __future__ import annotations

import pytest

from nbdeploy.builders.dockerfile import ImageSpec, render_dockerfile
from nbdeploy.errors import InvalidName, InvalidSpec
from nbdeploy.registry.names import check_model_name
from nbdeploy.service import validate_service_name


@pytest.mark.parametrize("name", ["model\n", "model\r\n", "m\nx"])
def test_model_name_with_a_newline_is_refused(name: str) -> None:
    with pytest.raises(InvalidName):
        check_model_name(name)


def test_model_name_without_newline_is_accepted() -> None:
    assert check_model_name("model") == "model"


@pytest.mark.parametrize("name", ["svc-one\n", "svc\n"])
def test_service_name_with_a_newline_is_refused(name: str) -> None:
    with pytest.raises(InvalidName):
        validate_service_name(name)


def test_service_name_without_newline_is_accepted() -> None:
    validate_service_name("svc-one")


@pytest.mark.parametrize("spec", [
    ImageSpec(env={"GOOD\n": "1"}),
    ImageSpec(labels={"org.example\n": "x"}),
    ImageSpec(system_packages=["libgomp1\n"]),
])
def test_dockerfile_words_with_a_newline_are_refused(spec: ImageSpec) -> None:
    with pytest.raises(InvalidSpec):
        render_dockerfile(spec)


def test_dockerfile_words_without_newline_render() -> None:
    text = render_dockerfile(ImageSpec(env={"GOOD": "1"}, labels={"org.example": "x"}, system_packages=["libgomp1"]))
    assert "GOOD=" in text and "libgomp1" in text
