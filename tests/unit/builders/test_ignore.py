"""The one ignore-file engine (bundles and build contexts): gitignore rules, file precedence, folder walks."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbdeploy.builders.ignore import IgnoreRules, walk_files


@pytest.mark.parametrize(
    ("patterns", "path", "is_dir", "expected"),
    [
        ("*.csv", "data/x.csv", False, True),  # unanchored: any depth
        ("*.csv\n!keep.csv", "a/keep.csv", False, False),  # negation re-includes
        ("!keep.csv\n*.csv", "keep.csv", False, True),  # the last matching pattern decides
        ("/data/", "data", True, True),  # anchored, folders only
        ("/data/", "sub/data", True, False),
        ("data/", "data", False, False),  # a folder-only pattern never matches a file
        ("data/", "sub/data", True, True),  # unanchored folder pattern: any depth
        ("docs/*.md", "docs/a.md", False, True),  # an inner slash anchors the pattern
        ("docs/*.md", "x/docs/a.md", False, False),
        ("docs/*.md", "docs/x/a.md", False, False),  # '*' does not cross '/'
        ("**/big/**", "a/big/c.bin", False, True),
        ("**/big", "x/y/big", True, True),
        ("a/**/z.txt", "a/z.txt", False, True),  # '**/' also matches no folder
        ("a/**/z.txt", "a/b/c/z.txt", False, True),
        ("logs", "x/logs", True, True),
        ("file[0-9].txt", "file3.txt", False, True),
        ("file?.txt", "file10.txt", False, False),
        ("# comment\n\n", "x", False, False),
        ("\\#hash", "#hash", False, True),  # escaped '#'
    ],
)
def test_gitignore_rules(patterns, path, is_dir, expected):
    assert IgnoreRules.parse(patterns).ignored(path, is_dir=is_dir) is expected


def test_nothing_under_an_ignored_folder_comes_back(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "keep.csv").write_text("x")
    (tmp_path / "data" / "drop.csv").write_text("x")
    (tmp_path / ".gitignore").write_text("data/\n!data/keep.csv\n")
    assert [rel for rel, _ in walk_files(tmp_path)] == []  # as git: the folder is excluded, so is its content
    (tmp_path / ".gitignore").write_text("data/*\n!data/keep.csv\n")
    assert [rel for rel, _ in walk_files(tmp_path)] == ["data/keep.csv"]
    assert IgnoreRules.parse("data/\n").excludes("data/keep.csv")


def make_tree(root: Path) -> Path:
    for rel in ["score.py", "a.log", "b.tmp", "c.bak", "src/util.py", "src/__pycache__/util.cpython-311.pyc",
                ".git/HEAD", ".venv/bin/python", ".ipynb_checkpoints/x.ipynb", "notes.pyc"]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("x")
    return root


def listed(root: Path) -> list[str]:
    return [rel for rel, _ in walk_files(root)]


def test_amlignore_wins_then_dockerignore_then_gitignore(tmp_path):
    root = make_tree(tmp_path)
    (root / ".gitignore").write_text("*.log\n")
    assert listed(root) == ["b.tmp", "c.bak", "score.py", "src/util.py"]
    assert IgnoreRules.for_folder(root).source == ".gitignore"
    (root / ".dockerignore").write_text("*.tmp\n")
    assert listed(root) == ["a.log", "c.bak", "score.py", "src/util.py"]
    (root / ".amlignore").write_text("*.bak\n")
    assert listed(root) == ["a.log", "b.tmp", "score.py", "src/util.py"]  # only the first file found counts
    assert IgnoreRules.for_folder(root).source == ".amlignore"


def test_defaults_leave_out_caches_vcs_venvs_and_ignore_files_unless_negated(tmp_path):
    root = make_tree(tmp_path)
    assert listed(root) == ["a.log", "b.tmp", "c.bak", "score.py", "src/util.py"]
    (root / ".amlignore").write_text("!notes.pyc\n")
    assert "notes.pyc" in listed(root) and ".amlignore" not in listed(root)


def test_bundles_and_build_contexts_leave_out_the_same_files(tmp_path):
    import nbdeploy
    from nbdeploy.builders.bundle import create_bundle
    from nbdeploy.builders.docker_builder import context_files
    from nbdeploy.builders.dockerfile import ImageSpec

    src = make_tree(tmp_path / "src")
    (src / "score.py").write_text("def init():\n    pass\n\ndef run(data):\n    return data\n")
    (src / "data").mkdir()
    (src / "data" / "big.csv").write_text("1,2\n")
    (src / "data" / "keep.csv").write_text("1,2\n")
    (src / ".gitignore").write_text("*.tmp\n")  # not read: .amlignore wins
    (src / ".amlignore").write_text("data/*\n!data/keep.csv\n*.log\nscore.py\n")
    ws = nbdeploy.Workspace.create(tmp_path / "ws")
    (tmp_path / "m.txt").write_text("m")
    model = nbdeploy.Model.register(tmp_path / "m.txt", "m", workspace=ws)
    bundle = create_bundle(ws, [model], nbdeploy.InferenceConfig("score.py", source_directory=str(src)))
    in_bundle = sorted(rel for rel, _ in walk_files(bundle.path / "src"))
    assert in_bundle == ["b.tmp", "c.bak", "data/keep.csv", "score.py", "src/util.py"]  # the entry script always goes in
    files = context_files(ImageSpec(lock="six==1.0\n", entry_script="src/score.py", source_dir="src",
                                    model_dir=bundle.model_dir), bundle.path, "src")
    assert sorted(f[len("app/src/"):] for f in files if f.startswith("app/src/")) == in_bundle
