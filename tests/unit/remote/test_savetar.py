"""Pure logic of image shipping: chain IDs, the present prefix, and rewriting save archives (synthetic tars)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

from nbdeploy.remote import savetar
from nbdeploy.remote.ship import chain_ids, present_prefix


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _save_archive(layers: list[bytes]) -> bytes:
    """A docker-save-shaped archive: folders named arbitrarily (not in layer order), manifest last."""
    buf = io.BytesIO()
    folders = [f"{9 - i}f{i}" for i in range(len(layers))]  # sorts in reverse layer order
    with tarfile.open(fileobj=buf, mode="w") as tf:
        def add(name: str, data: bytes | None) -> None:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tf.addfile(info)
            else:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))

        add("cfg.json", b'{"rootfs": {}}')
        for folder, data in sorted(zip(folders, layers)):
            add(folder, None)
            add(f"{folder}/VERSION", b"1.0")
            add(f"{folder}/json", b"{}")
            add(f"{folder}/layer.tar", data)
        add("manifest.json", json.dumps([{"Config": "cfg.json", "RepoTags": ["x:1"],
                                          "Layers": [f"{f}/layer.tar" for f in folders]}]).encode())
    return buf.getvalue()


def _chunks(data: bytes, size: int = 7000) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


def test_chain_ids_follow_the_oci_rule() -> None:
    a, b = _digest(b"a"), _digest(b"b")
    chains = chain_ids([a, b])
    assert chains[0] == a
    assert chains[1] == "sha256:" + hashlib.sha256(f"{a} {b}".encode()).hexdigest()


def test_present_prefix_stops_at_the_first_missing_chain() -> None:
    ids = [_digest(bytes([i])) for i in range(4)]
    chains = chain_ids(ids)
    assert present_prefix(ids, set(chains[:2])) == 2
    assert present_prefix(ids, {chains[0], chains[2]}) == 1
    assert present_prefix(ids, set()) == 0
    # the same diff_id on another parent is another chain
    assert present_prefix([ids[1]], set(chains)) == 0


def test_spool_drops_unwanted_layers_with_their_folders(tmp_path: Path) -> None:
    layers = [b"x" * 3000, b"y" * 1500, b"z" * 700]
    archive = savetar.spool(_chunks(_save_archive(layers)), tmp_path, lambda d: d == _digest(layers[2]))
    assert archive.layer_digests == {f"{9 - i}f{i}": _digest(data) for i, data in enumerate(layers)}
    assert archive.dropped_folders == {"9f0", "8f1"} and archive.dropped_bytes == 4500
    assert [p.name for p in tmp_path.iterdir()] and len(list(tmp_path.iterdir())) == 1

    out = b"".join(archive.stream())
    assert len(out) == archive.size()
    with tarfile.open(fileobj=io.BytesIO(out)) as tf:
        names = tf.getnames()
        assert sorted(names) == sorted(["cfg.json", "7f2", "7f2/VERSION", "7f2/json", "7f2/layer.tar",
                                        "manifest.json"])
        assert tf.extractfile("7f2/layer.tar").read() == layers[2]  # type: ignore[union-attr]
        manifest = json.loads(tf.extractfile("manifest.json").read())  # type: ignore[union-attr]
        assert manifest[0]["Layers"] == ["9f0/layer.tar", "8f1/layer.tar", "7f2/layer.tar"]


def test_spool_keeping_everything_reproduces_the_members(tmp_path: Path) -> None:
    original = _save_archive([b"a" * 10, b"b" * 513])
    archive = savetar.spool(_chunks(original, 100), tmp_path, lambda d: True)
    out = b"".join(archive.stream())
    with tarfile.open(fileobj=io.BytesIO(original)) as a, tarfile.open(fileobj=io.BytesIO(out)) as b:
        assert a.getnames() == b.getnames()
        for name in a.getnames():
            ma, mb = a.getmember(name), b.getmember(name)
            if ma.isfile():
                assert a.extractfile(ma).read() == b.extractfile(mb).read()  # type: ignore[union-attr]


def test_chunk_reader_reads_across_chunks() -> None:
    reader = savetar._ChunkReader([b"abc", b"", b"defg", b"h"])
    assert reader.read(2) == b"ab" and reader.read(4) == b"cdef" and reader.read(-1) == b"gh" and reader.read(3) == b""
