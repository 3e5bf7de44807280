"""render_dockerfile and its helpers: pure, no engine."""

from __future__ import annotations

import json
import re

import pytest

from nbdeploy.builders.dockerfile import (
    CA_FILE,
    SERVER_REQUIREMENTS,
    UV_CONF,
    ImageSpec,
    lock_digest,
    quote,
    render_build_secrets,
    render_deps_dockerfile,
    render_dockerfile,
    render_uv_config,
    requirements_digest,
    requirements_text,
)
from nbdeploy.errors import InvalidSpec


LOCK = "joblib==1.4.2 \\\n    --hash=sha256:06d478d5674cbc267e7496a410ee875abd68e4340feff4490bcb7afb88060ae6\n"


def stages(text: str) -> list[str]:
    """The Dockerfile split at each FROM (first item: the text before the first FROM)."""
    return re.split(r"(?m)^(?=FROM )", text)


def final_stage(text: str) -> list[str]:
    return [line for line in stages(text)[-1].splitlines() if line and not line.startswith("#")]


def test_layers_run_from_stable_to_volatile():
    text = render_dockerfile(ImageSpec(pip_requirements=["scikit-learn==1.9.*"], system_packages=["libgomp1"]))
    order = ["apt-get install", "uv venv", "requirements/user.txt", "COPY --from=deps", "COPY nbdeploy_server/",
             "COPY app/", "COPY models/"]
    positions = [text.index(marker) for marker in order]
    assert positions == sorted(positions)
    locked = render_dockerfile(ImageSpec(lock=LOCK, system_packages=["libgomp1"]))
    order = ["apt-get install", "COPY build-tools/uv", "requirements/lock.txt", "uv pip sync --require-hashes",
             "COPY --from=deps", "COPY nbdeploy_server/", "COPY app/", "COPY models/"]
    positions = [locked.index(marker) for marker in order]
    assert positions == sorted(positions)


def test_models_are_the_last_layer_with_content():
    lines = final_stage(render_dockerfile(ImageSpec(labels={"nbdeploy.service": "svc"})))
    content = [i for i, line in enumerate(lines) if line.split()[0] in ("COPY", "RUN", "ADD")]
    assert lines[content[-1]].startswith("COPY models/ /var/azureml-app/azureml-models/")
    assert all(line.split()[0] in ("CMD", "LABEL") for line in lines[content[-1] + 1:])


def test_final_stage_is_non_root_with_healthcheck_and_env():
    text = render_dockerfile(ImageSpec(entry_script="src/score.py", source_dir="src", model_dir="azureml-models/m/2"))
    final = "\n".join(final_stage(text))
    assert "USER 1000:1000" in final
    assert "HEALTHCHECK" in final and "/health/ready" in final and "curl" not in final
    assert 'AML_APP_ROOT="/var/azureml-app"' in final
    assert 'AZUREML_ENTRY_SCRIPT="src/score.py"' in final
    assert 'AZUREML_MODEL_DIR="/var/azureml-app/azureml-models/m/2"' in final
    assert 'AZUREML_SOURCE_DIRECTORY="src"' in final
    cmd = json.loads(final.split("\nCMD ", 1)[1].splitlines()[0])
    assert cmd[:7] == ["python", "-m", "nbdeploy_server", "--host", "0.0.0.0", "--port", "5001"]
    assert "--source-dir" in cmd


def test_server_deps_are_pinned_and_installed_before_user_requirements():
    text = render_dockerfile(ImageSpec(pip_requirements=["joblib"]))
    assert all("==" in r for r in SERVER_REQUIREMENTS)
    assert {r.split("==")[0] for r in SERVER_REQUIREMENTS} == {"uvicorn", "httptools", "uvloop"}
    assert text.index("server-requirements.txt") < text.index("/requirements.txt")
    assert "jupyter" not in text.lower() and "kubernetes" not in text.lower()


def test_a_lock_is_installed_with_hashes_and_keys_its_layer():
    text = render_dockerfile(ImageSpec(lock=LOCK, pip_requirements=["joblib"]))
    assert f"# lock {lock_digest(LOCK)}" in text and f'nbdeploy.lock="{lock_digest(LOCK)}"' in text
    assert "uv pip sync --require-hashes" in text and "requirements/user.txt" not in text
    assert "--seed" not in text  # no pip in the venv unless asked
    assert "--seed" in render_dockerfile(ImageSpec(lock=LOCK, keep_pip=True))
    assert render_dockerfile(ImageSpec(lock=LOCK)) != render_dockerfile(ImageSpec(lock=LOCK + "six==1.0\n"))


def test_secrets_stay_in_the_deps_stage():
    spec = ImageSpec(ca_bundle="-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----",
                     pip_index_url="https://user:token@pypi.example/simple", lock=LOCK)
    text = render_dockerfile(spec)
    final = "\n".join(final_stage(text))
    assert "build-secrets" in text and "SSL_CERT_FILE=" in text and "UV_CONFIG_FILE=" in text
    assert "build-secrets" not in final and "UV_" not in final and "/tmp/nbdeploy-build" not in final
    assert "build-tools/uv" not in final  # uv itself is for the deps stage only
    assert "token" not in text  # credentials live in the uv.toml file, never in the Dockerfile
    assert "ARG" not in text  # proxies come as Docker's predefined build args, kept out of history
    assert "COPY --from=deps /opt/nbdeploy/venv /opt/nbdeploy/venv" in final


def test_deps_image_fetches_its_build_files_and_deletes_them_in_the_same_run():
    spec = ImageSpec(ca_bundle="PEM", pip_index_url="https://user:token@pypi.example/simple", lock=LOCK,
                     system_packages=["libgomp1"])
    deps = render_deps_dockerfile(spec, "http://127.0.0.1:5/one-time")
    runs = [line for line in deps.splitlines() if line.startswith("RUN ")]
    install = runs[-1]
    assert "http://127.0.0.1:5/one-time" in install and "ProxyHandler({})" in install
    assert install.endswith("; status=$?; rm -rf /tmp/nbdeploy-build; exit $status")
    assert "|| { echo nbdeploy-build-payload-unreachable >&2; exit 97; }" in install
    assert "uv pip sync --require-hashes" in install and "UV_CONFIG_FILE=/tmp/nbdeploy-build/uv.toml" in install
    assert "COPY" not in deps and "ADD" not in deps and "token" not in deps
    assert deps.index("apt-get install") < deps.index(install)
    final = render_dockerfile(spec, deps_image="nbdeploy/deps:abc")
    assert "FROM nbdeploy/deps:abc" in final and "COPY --from=deps" not in final
    assert "AS deps" not in final and "build-secrets" not in final and "build-tools" not in final
    with pytest.raises(InvalidSpec):
        render_deps_dockerfile(ImageSpec(), "http://x")  # a deps image needs a lock


def test_no_secrets_no_secret_copy():
    text = render_dockerfile(ImageSpec())
    assert "build-secrets" not in text and "SSL_CERT_FILE" not in text and "UV_NO_CONFIG=1" in text


def test_build_secret_files():
    spec = ImageSpec(ca_bundle="PEM", pip_index_url="https://i/simple", pip_extra_index_urls=["https://a", "https://b"],
                     pip_trusted_hosts=["i"])
    files = render_build_secrets(spec)
    assert files[CA_FILE] == "PEM\n"
    assert files[UV_CONF] == ('index-url = "https://i/simple"\nextra-index-url = ["https://a", "https://b"]\n'
                              'allow-insecure-host = ["i"]\n')
    assert render_uv_config(ImageSpec()) == "" and render_build_secrets(ImageSpec()) == {}


def test_uv_config_is_valid_toml_whatever_the_url_holds():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    assert tomllib.loads(render_uv_config(ImageSpec(pip_index_url='https://u:p"q@x/simple')))["index-url"] == 'https://u:p"q@x/simple'


def test_requirements_text_and_digest():
    assert requirements_text([" joblib ", "", "# c", "numpy<3"]) == "joblib\nnumpy<3\n"
    assert requirements_digest(["a", "b"]) == requirements_digest(["a", "", "b"])
    assert requirements_digest(["a", "b"]) != requirements_digest(["b", "a"])
    text = render_dockerfile(ImageSpec(pip_requirements=["a"]))
    assert requirements_digest(["a"]) in text  # the requirement layer is keyed by it


def test_no_user_requirements_no_user_layer():
    text = render_dockerfile(ImageSpec())
    assert "requirements/user.txt" not in text


def test_base_dockerfile_is_inlined_and_named():
    text = render_dockerfile(ImageSpec(base_dockerfile="FROM debian:bookworm\nRUN echo hi\n"))
    assert "FROM debian:bookworm AS nbdeploy-base" in text
    assert "FROM nbdeploy-base AS runtime" in text
    named = render_dockerfile(ImageSpec(base_dockerfile="FROM a AS b\nFROM c as mine\nRUN x"))
    assert "FROM mine AS runtime" in named
    with pytest.raises(InvalidSpec):
        render_dockerfile(ImageSpec(base_dockerfile="RUN echo no from"))


def test_base_image_and_system_packages():
    text = render_dockerfile(ImageSpec(base_image="nbdeploy/python-base:3.11-bookworm", system_packages=["b", "a", "a"]))
    assert text.count("FROM nbdeploy/python-base:3.11-bookworm AS runtime") == 1
    assert "--no-install-recommends a b;" in text and "rm -rf /var/lib/apt/lists/*" in text
    assert "apt-get" not in render_dockerfile(ImageSpec())
    with pytest.raises(InvalidSpec):
        render_dockerfile(ImageSpec(system_packages=["curl; rm -rf /"]))


def test_env_and_labels_are_quoted_literally():
    text = render_dockerfile(ImageSpec(env={"A": 'x "y" $HOME'}, labels={"nbdeploy.models": "m:1,n:2"}))
    assert r'A="x \"y\" \$HOME"' in text
    assert 'nbdeploy.models="m:1,n:2"' in text
    with pytest.raises(InvalidSpec):
        render_dockerfile(ImageSpec(env={"1BAD": "x"}))
    with pytest.raises(InvalidSpec):
        quote("a\nb", "x")


def test_gpu_request():
    assert "NVIDIA_VISIBLE_DEVICES" in render_dockerfile(ImageSpec(gpu=True))
    assert "NVIDIA_VISIBLE_DEVICES" not in render_dockerfile(ImageSpec())


def test_paths_must_stay_inside_the_app_root():
    with pytest.raises(InvalidSpec):
        render_dockerfile(ImageSpec(entry_script="../etc/passwd"))


def test_no_models_no_model_copy_and_deterministic():
    spec = ImageSpec(has_models=False, labels={"b": "2", "a": "1"})
    assert "COPY models/" not in render_dockerfile(spec)
    assert render_dockerfile(spec) == render_dockerfile(ImageSpec(has_models=False, labels={"a": "1", "b": "2"}))
