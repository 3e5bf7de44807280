"""Image builds against the real engine: layering, caching, failures, secrets."""

from __future__ import annotations

import io
import json
import tarfile
import uuid
from pathlib import Path

import pytest

from nbdeploy.builders.docker_builder import BuildSettings, build_image
from nbdeploy.builders.dockerfile import ImageSpec
from nbdeploy.errors import BuildError

from .docker_testapp import BASE_IMAGE, RUN_ID, TEST_LABEL, make_app

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module", autouse=True)
def remove_deps_images(engine):
    """Deps images (nbdeploy/deps:*) are shared caches; those this run made go once the images FROM them are gone."""
    yield
    for _ in range(2):
        for image in engine.images.list(name="nbdeploy/deps", filters={"label": f"{TEST_LABEL}={RUN_ID}"}):
            try:
                engine.images.remove(image.id, force=True)
            except Exception:  # noqa: BLE001 - a child image of another test still exists
                pass


def bytes_read() -> int:
    """This process's rchar: every byte passed through read(), page cache included."""
    return int(next(line for line in Path("/proc/self/io").read_text().splitlines() if line.startswith("rchar:")).split()[1])


def spec_for(**changes) -> ImageSpec:
    base = dict(base_image=BASE_IMAGE, model_dir="azureml-models/m/1", labels={TEST_LABEL: RUN_ID})
    return ImageSpec(**{**base, **changes})


def test_build_streams_tags_by_digest_and_reuses(engine, resources, tmp_path):
    app = make_app(tmp_path / "app")
    repo = resources.repository()
    lines: list[str] = []
    first = build_image(engine, spec_for(), app, repo, progress=lines.append)
    assert not first.cached and first.tag == f"{repo}:{first.digest[:20]}"
    assert any(line.startswith("Step 1/") for line in lines) and any("Successfully built" in line for line in lines)
    again = build_image(engine, spec_for(), app, repo, progress=lines.append)
    assert again.cached and again.image_id == first.image_id

    image = engine.images.get(first.tag)
    config = image.attrs["Config"]
    assert config["User"] == "1000:1000"
    assert config["Labels"][TEST_LABEL] == RUN_ID
    assert "AML_APP_ROOT=/var/azureml-app" in config["Env"]
    assert config["Healthcheck"]["Test"][0] == "CMD"
    # the model layer is the last one with content
    with_content = [h for h in image.history() if h["Size"] > 0 or "COPY" in h["CreatedBy"]]
    assert "COPY dir" in with_content[0]["CreatedBy"]
    out = engine.containers.run(first.tag, ["sh", "-c", "id -u; ls /var/azureml-app/azureml-models/m/1; "
                                            "python -c 'import uvicorn, nbdeploy_server'; ls /tmp; "
                                            "python -m pip --version || echo no-pip"], remove=True)
    text = out.decode()
    assert text.splitlines()[0] == "1000" and "model.json" in text and "no-pip" in text


def test_model_only_change_rebuilds_only_the_model_layer(engine, resources, tmp_path):
    app = make_app(tmp_path / "app", weight=1.0)
    repo = resources.repository()
    build_image(engine, spec_for(), app, repo)
    make_app(app, weight=3.0)
    lines: list[str] = []
    second = build_image(engine, spec_for(), app, repo, progress=lines.append)
    steps = "\n".join(lines).split("Step ")[1:]
    metadata = ("FROM", "LABEL", "CMD", "ENV AZUREML_MODEL_DIR")
    rebuilt = [s.splitlines()[0] for s in steps if "Using cache" not in s and not s.split(" : ")[1].startswith(metadata)]
    assert rebuilt and all("COPY models/" in s for s in rebuilt), rebuilt
    assert not second.cached  # speed is measured in benchmarks/build.py, not asserted here


def test_missing_pip_package_names_it(engine, resources, tmp_path):
    app = make_app(tmp_path / "app")
    missing = f"nbdeploy-no-such-package-{uuid.uuid4().hex[:6]}==0.0.1"
    with pytest.raises(BuildError) as info:
        build_image(engine, spec_for(pip_requirements=[missing]), app, resources.repository(),
                    settings=BuildSettings(lock_dir=tmp_path / "locks"))
    err = info.value  # found while locking, before anything is sent to the engine
    assert f"could not find the package {missing!r}" in err.reason
    assert err.step == "uv pip compile"
    assert any("not found in the package registry" in line for line in err.build_log)


def test_second_build_of_an_unchanged_bundle_reads_no_model_byte(engine, resources, tmp_path):
    import nbdeploy
    from nbdeploy.builders.bundle import create_bundle

    ws = nbdeploy.Workspace.create(tmp_path / "ws")
    model_file = tmp_path / "model.bin"
    with open(model_file, "wb") as f:
        f.truncate(500 << 20)  # sparse: every read() of it still passes 500 MB
    model = nbdeploy.Model.register(model_file, "big", workspace=ws)
    (tmp_path / "score.py").write_text("def init():\n    pass\n\ndef run(data):\n    return data\n")
    bundle = create_bundle(ws, [model], nbdeploy.InferenceConfig(str(tmp_path / "score.py")))
    repo = resources.repository()
    settings = BuildSettings.from_env()
    first = build_image(engine, spec_for(model_dir=bundle.model_dir), bundle.path, repo, settings=settings)
    assert not first.cached and first.context_bytes >= 500 << 20
    before = bytes_read()
    again = build_image(engine, spec_for(model_dir=bundle.model_dir), bundle.path, repo, settings=settings)
    assert bytes_read() - before < 10 << 20
    assert again.cached and again.tag == first.tag and again.image_id == first.image_id


def test_absent_base_image_points_to_base_image_build(engine, resources, tmp_path):
    app = make_app(tmp_path / "app")
    absent = f"nbdeploy-test/absent-{RUN_ID}:1"
    with pytest.raises(BuildError) as info:
        build_image(engine, spec_for(base_image=absent), app, resources.repository())
    assert f"nbdeploy base-image build --tag {absent}" in str(info.value)


@pytest.mark.parametrize("deps_image", [True, False], ids=["deps-image", "deps-stage"])
def test_build_secrets_do_not_reach_the_final_image(engine, resources, tmp_path, deps_image):
    """uv.toml credentials, the CA bundle, uv and proxy build args stay out of every layer, the config and history.

    Both ways of installing the venv: a deps image fed from the host (local engines) and a deps stage.
    """
    app = make_app(tmp_path / "app")
    token = f"nbdeploy-secret-{uuid.uuid4().hex}"
    host_ca = Path(BuildSettings.from_env().ca_bundle or "/etc/ssl/certs/ca-certificates.crt").read_text()
    settings = BuildSettings(proxies={"NO_PROXY": f"localhost,{token}-proxy.invalid"}, deps_image=deps_image,
                             lock_dir=tmp_path / "locks")
    # a requirement of its own: the venv is installed here, through the proxy, trusting the CA given
    spec = spec_for(ca_bundle=host_ca + f"\n# {token}-ca\n", pip_trusted_hosts=[f"{token}-pip.invalid"],
                    pip_requirements=[f"six  # {uuid.uuid4().hex}"])
    lines: list[str] = []
    built = build_image(engine, spec, app, resources.repository(), settings=settings, progress=lines.append)
    if deps_image:
        assert any(line.startswith("building the dependencies image") for line in lines)
    else:
        assert any("build-secrets" in line for line in lines)  # the deps stage did get them
    out = engine.containers.run(built.tag, ["python", "-c", "import six; print('six-ok')"], remove=True)
    assert b"six-ok" in out

    image = engine.images.get(built.tag)
    history = json.dumps(image.history())
    assert token not in history and token not in json.dumps(image.attrs)
    blob = b"".join(image.save(named=True))
    with tarfile.open(fileobj=io.BytesIO(blob)) as outer:
        for member in outer.getmembers():
            if not member.isfile():
                continue
            data = outer.extractfile(member).read()
            assert token.encode() not in data, member.name
            if member.name.endswith("layer.tar"):
                with tarfile.open(fileobj=io.BytesIO(data)) as layer:
                    names = layer.getnames()
                    assert not any("nbdeploy-build" in n or n.endswith(("pip.conf", "uv.toml", "/uv")) for n in names), \
                        member.name


def test_base_dockerfile_is_honoured_and_large_context_reported(engine, resources, tmp_path):
    app = make_app(tmp_path / "app")
    base = f"FROM {BASE_IMAGE}\nRUN echo from-base-dockerfile > /etc/nbdeploy-marker\n"
    lines: list[str] = []
    built = build_image(engine, spec_for(base_dockerfile=base), app, resources.repository(),
                        settings=BuildSettings(large_context_bytes=1000), progress=lines.append)
    assert any(line.startswith("warning: the build context is large") for line in lines)
    out = engine.containers.run(built.tag, ["cat", "/etc/nbdeploy-marker"], remove=True)
    assert out.decode().strip() == "from-base-dockerfile"
