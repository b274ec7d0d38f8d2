from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml

from cairn.entities import FileInfo
from cairn.errors import InvalidParameterError, NotFoundError, UnsafePathError
from cairn.tracking.artifacts import (
    ArtifactRepository,
    figure_to_bytes,
    get_artifact_repository,
    serialize_dict,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import TextIO


@pytest.fixture(params=["local", "memory"])
def repo(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ArtifactRepository]:
    """The same test against a local folder and an fsspec memory:// filesystem."""
    if request.param == "local":
        yield ArtifactRepository(str(tmp_path / "artifacts"))
        return
    import fsspec

    uri = f"memory://cairn-tests/{uuid.uuid4().hex}/artifacts"
    yield ArtifactRepository(uri)
    fs = fsspec.filesystem("memory")
    if fs.exists(uri):
        fs.rm(uri, recursive=True)


@pytest.fixture
def local_repo(tmp_path: Path) -> ArtifactRepository:
    (tmp_path / "artifacts").mkdir()
    return ArtifactRepository(str(tmp_path / "artifacts"))


@pytest.fixture
def src_tree(tmp_path: Path) -> Path:
    """A local folder: top.txt, a/one.txt, a/b/two.bin."""
    src = tmp_path / "src"
    (src / "a" / "b").mkdir(parents=True)
    (src / "top.txt").write_text("top")
    (src / "a" / "one.txt").write_text("one!")
    (src / "a" / "b" / "two.bin").write_bytes(b"\x00\x01\x02")
    return src


def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# -- round trips ---------------------------------------------------------------------------


def test_root_uri_is_kept_as_given(tmp_path: Path) -> None:
    uri = str(tmp_path / "artifacts")
    assert get_artifact_repository(uri).root_uri == uri
    assert repr(ArtifactRepository(uri)) == f"ArtifactRepository({uri!r})"


def test_log_artifact_round_trip(repo: ArtifactRepository, tmp_path: Path) -> None:
    src = tmp_path / "model.txt"
    src.write_text("weights")
    repo.log_artifact(src)
    repo.log_artifact(str(src), "sub/dir")

    assert repo.list_artifacts() == [
        FileInfo("model.txt", False, 7),
        FileInfo("sub", True, None),
    ]
    assert repo.list_artifacts("sub") == [FileInfo("sub/dir", True, None)]
    assert repo.list_artifacts("./sub//dir/") == [FileInfo("sub/dir/model.txt", False, 7)]
    assert repo.read_bytes("sub/dir/model.txt") == b"weights"

    local = repo.download_artifacts("sub/dir/model.txt", tmp_path / "dl")
    assert local == str(tmp_path / "dl" / "sub" / "dir" / "model.txt")
    assert Path(local).read_text() == "weights"


def test_log_artifact_overwrites(repo: ArtifactRepository, tmp_path: Path) -> None:
    src = tmp_path / "f.txt"
    src.write_text("first")
    repo.log_artifact(src)
    src.write_text("second")
    repo.log_artifact(src)
    assert repo.read_bytes("f.txt") == b"second"


def test_log_artifacts_round_trip_nested(
    repo: ArtifactRepository, src_tree: Path, tmp_path: Path
) -> None:
    repo.log_artifacts(src_tree)
    repo.log_artifacts(src_tree / "a", "copy/of/a")

    assert repo.list_artifacts() == [
        FileInfo("a", True, None),
        FileInfo("copy", True, None),
        FileInfo("top.txt", False, 3),
    ]
    assert repo.list_artifacts("a") == [
        FileInfo("a/b", True, None),
        FileInfo("a/one.txt", False, 4),
    ]
    assert repo.list_artifacts("a/b") == [FileInfo("a/b/two.bin", False, 3)]
    assert repo.list_artifacts("copy/of/a/b") == [FileInfo("copy/of/a/b/two.bin", False, 3)]

    everything = repo.download_artifacts(None, tmp_path / "all")
    assert everything == str(tmp_path / "all")
    assert _tree(Path(everything)) == {
        **_tree(src_tree),
        **{f"copy/of/a/{k}": v for k, v in _tree(src_tree / "a").items()},
    }

    sub = repo.download_artifacts("copy/of", tmp_path / "part")
    assert sub == str(tmp_path / "part" / "copy" / "of")
    assert _tree(Path(sub)) == {f"a/{k}": v for k, v in _tree(src_tree / "a").items()}


def test_log_artifacts_keeps_empty_folders_locally(
    local_repo: ArtifactRepository, src_tree: Path, tmp_path: Path
) -> None:
    (src_tree / "empty").mkdir()
    local_repo.log_artifacts(src_tree, "x")
    assert FileInfo("x/empty", True, None) in local_repo.list_artifacts("x")
    assert (Path(local_repo.download_artifacts("x", tmp_path / "dl")) / "empty").is_dir()


def test_log_artifacts_follows_source_links_without_looping(
    local_repo: ArtifactRepository, src_tree: Path
) -> None:
    (src_tree / "a" / "b" / "loop").symlink_to(src_tree)
    (src_tree / "alias.txt").symlink_to(src_tree / "top.txt")
    local_repo.log_artifacts(src_tree)
    assert local_repo.read_bytes("alias.txt") == b"top"
    assert not local_repo.exists("a/b/loop/a")


def test_write_and_read_text_and_bytes(repo: ArtifactRepository) -> None:
    repo.write_text("notes/readme.md", "héllo")
    repo.write_bytes("blob.bin", b"\xff\x00")
    assert repo.read_bytes("notes/readme.md") == "héllo".encode()
    assert repo.read_bytes("./blob.bin") == b"\xff\x00"
    assert repo.list_artifacts("notes") == [FileInfo("notes/readme.md", False, 6)]


@pytest.mark.parametrize("name", ["", ".", "./", None])
def test_write_to_the_root_is_refused(repo: ArtifactRepository, name: str) -> None:
    with pytest.raises(InvalidParameterError, match="name a file under the root"):
        repo.write_bytes(name, b"x")
    with pytest.raises(InvalidParameterError, match="name a file under the root"):
        repo.read_bytes(name)


def test_read_missing_file_is_not_found(repo: ArtifactRepository) -> None:
    with pytest.raises(NotFoundError, match=r"Cannot read artifact 'nope\.txt'"):
        repo.read_bytes("nope.txt")


def test_read_folder_is_refused(repo: ArtifactRepository) -> None:
    repo.write_text("d/f.txt", "x")
    with pytest.raises(InvalidParameterError, match="Cannot read artifact 'd'"):
        repo.read_bytes("d")


def test_list_missing_or_file_path_is_empty(repo: ArtifactRepository) -> None:
    assert repo.list_artifacts() == []
    assert repo.list_artifacts("missing/dir") == []
    repo.write_text("f.txt", "x")
    assert repo.list_artifacts("f.txt") == []


def test_download_missing_is_not_found(repo: ArtifactRepository, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match=r"Cannot download artifact 'missing/x\.txt'"):
        repo.download_artifacts("missing/x.txt", tmp_path / "dl")


def test_download_empty_root_gives_empty_folder(repo: ArtifactRepository, tmp_path: Path) -> None:
    local = repo.download_artifacts(None, tmp_path / "dl")
    assert os.listdir(local) == []


def test_download_without_dst_uses_private_temp_dir(repo: ArtifactRepository) -> None:
    repo.write_text("a/b.txt", "x")
    local = Path(repo.download_artifacts("a"))
    try:
        assert (local / "b.txt").read_text() == "x"
        assert stat.S_IMODE(local.parent.stat().st_mode) == 0o700
    finally:
        import shutil

        shutil.rmtree(local.parent)


def test_delete_and_exists(repo: ArtifactRepository, src_tree: Path) -> None:
    repo.log_artifacts(src_tree)
    assert repo.exists("a/one.txt") and repo.exists("a") and repo.exists(None)
    repo.delete_artifacts("a/one.txt")
    assert not repo.exists("a/one.txt")
    repo.delete_artifacts("a")
    assert not repo.exists("a/b/two.bin")
    assert repo.list_artifacts() == [FileInfo("top.txt", False, 3)]
    repo.delete_artifacts("never/existed")
    repo.delete_artifacts()
    assert repo.list_artifacts() == []
    assert not repo.exists("top.txt")


def test_log_artifact_of_folder_is_refused(repo: ArtifactRepository, src_tree: Path) -> None:
    with pytest.raises(InvalidParameterError, match="it is a folder; use log_artifacts"):
        repo.log_artifact(src_tree)


def test_log_artifact_of_missing_file_is_not_found(
    repo: ArtifactRepository, tmp_path: Path
) -> None:
    with pytest.raises(NotFoundError, match="no such file"):
        repo.log_artifact(tmp_path / "nope.txt")


def test_log_artifacts_of_file_or_missing_is_refused(
    repo: ArtifactRepository, src_tree: Path
) -> None:
    with pytest.raises(InvalidParameterError, match="not a folder; use log_artifact"):
        repo.log_artifacts(src_tree / "top.txt")
    with pytest.raises(NotFoundError, match="no such folder"):
        repo.log_artifacts(src_tree / "nope")


# -- local roots ---------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["file:///{}", "file:/{}", "local:///{}"])
def test_local_uri_forms(form: str, tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    repo = ArtifactRepository(form.format(str(root).lstrip("/")))
    repo.write_text("a/b.txt", "x")
    assert (root / "a" / "b.txt").read_text() == "x"


def test_file_uri_with_remote_host_is_refused() -> None:
    with pytest.raises(InvalidParameterError, match="file URIs must be local"):
        ArtifactRepository("file://otherhost/srv/artifacts")


def test_relative_local_root_is_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    ArtifactRepository("rel/artifacts").write_text("f.txt", "x")
    assert (tmp_path / "rel" / "artifacts" / "f.txt").read_text() == "x"


def test_local_files_get_the_umask_not_the_source_mode(
    local_repo: ArtifactRepository, tmp_path: Path
) -> None:
    src = tmp_path / "script.sh"
    src.write_text("#!/bin/sh")
    src.chmod(0o777)
    old = os.umask(0o027)
    try:
        local_repo.log_artifact(src, "bin")
        local_repo.write_text("notes.txt", "x")
    finally:
        os.umask(old)
    root = Path(local_repo.root_uri)
    assert stat.S_IMODE((root / "bin" / "script.sh").stat().st_mode) == 0o640
    assert stat.S_IMODE((root / "notes.txt").stat().st_mode) == 0o640
    assert stat.S_IMODE((root / "bin").stat().st_mode) == 0o750


def test_import_does_not_load_fsspec_or_yaml() -> None:
    code = "import sys, cairn.tracking.artifacts; print({'fsspec', 'yaml'} & set(sys.modules))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "set()"


# -- unsafe paths --------------------------------------------------------------------------

UNSAFE = [
    ("..", "'..' components"),
    ("a/../../b", "'..' components"),
    ("%2e%2e/x", "'..' components"),
    ("%252e%252e/x", "'..' components"),
    ("/etc/passwd", "absolute paths"),
    ("C:\\x", "absolute paths"),
    ("a\\..\\b", "backslashes"),
    ("a\x00b", "NUL bytes"),
    ("file:///etc/passwd", "URI schemes"),
    ("~/.ssh", "'~' expansion"),
]


def _operations(tmp_path: Path) -> dict[str, Callable[[ArtifactRepository, str], object]]:
    src = tmp_path / "payload.txt"
    src.write_text("payload")
    src_dir = tmp_path / "payload-dir"
    src_dir.mkdir(exist_ok=True)
    (src_dir / "f.txt").write_text("payload")
    return {
        "log_artifact": lambda repo, p: repo.log_artifact(src, p),
        "log_artifacts": lambda repo, p: repo.log_artifacts(src_dir, p),
        "list": lambda repo, p: repo.list_artifacts(p),
        "download": lambda repo, p: repo.download_artifacts(p, tmp_path / "dl"),
        "delete": lambda repo, p: repo.delete_artifacts(p),
        "read": lambda repo, p: repo.read_bytes(p),
        "write": lambda repo, p: repo.write_bytes(p, b"x"),
        "exists": lambda repo, p: repo.exists(p),
    }


@pytest.mark.parametrize(
    "operation",
    ["log_artifact", "log_artifacts", "list", "download", "delete", "read", "write", "exists"],
)
@pytest.mark.parametrize(("path", "reason"), UNSAFE, ids=[p for p, _ in UNSAFE])
def test_unsafe_paths_are_refused(
    repo: ArtifactRepository, tmp_path: Path, operation: str, path: str, reason: str
) -> None:
    repo.write_text("keep.txt", "keep")
    with pytest.raises(UnsafePathError, match=f"Unsafe artifact path .*{reason}"):
        _operations(tmp_path)[operation](repo, path)
    assert repo.list_artifacts() == [FileInfo("keep.txt", False, 4)]
    assert not (tmp_path / "dl").exists()


def test_log_artifact_with_unsafe_basename_is_refused(
    repo: ArtifactRepository, tmp_path: Path
) -> None:
    src = tmp_path / "a\\b.txt"
    src.write_text("x")
    with pytest.raises(UnsafePathError, match="backslashes"):
        repo.log_artifact(src)


# -- symlinks inside a local root ----------------------------------------------------------


@pytest.fixture
def linked_root(tmp_path: Path) -> tuple[ArtifactRepository, Path]:
    """A local root with ``out`` -> an outside folder and ``out.txt`` -> an outside file."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    root = tmp_path / "artifacts"
    root.mkdir()
    (root / "ok.txt").write_text("ok")
    (root / "out").symlink_to(outside)
    (root / "out.txt").symlink_to(outside / "secret.txt")
    (root / "inner").symlink_to(root / "ok.txt")
    return ArtifactRepository(str(root)), outside


def test_symlink_out_is_refused_on_list(linked_root: tuple[ArtifactRepository, Path]) -> None:
    repo, _ = linked_root
    with pytest.raises(UnsafePathError, match="outside the artifact root"):
        repo.list_artifacts("out")


def test_symlink_out_is_refused_on_read(linked_root: tuple[ArtifactRepository, Path]) -> None:
    repo, _ = linked_root
    with pytest.raises(UnsafePathError, match="outside the artifact root"):
        repo.read_bytes("out/secret.txt")
    with pytest.raises(UnsafePathError, match="outside the artifact root"):
        repo.read_bytes("out.txt")
    with pytest.raises(UnsafePathError, match="outside the artifact root"):
        repo.exists("out.txt")


def test_symlink_out_is_refused_on_download(
    linked_root: tuple[ArtifactRepository, Path], tmp_path: Path
) -> None:
    repo, _ = linked_root
    with pytest.raises(UnsafePathError, match="outside the artifact root"):
        repo.download_artifacts("out", tmp_path / "dl1")
    with pytest.raises(UnsafePathError, match="outside the artifact root"):
        repo.download_artifacts("out.txt", tmp_path / "dl2")


def test_symlink_out_is_refused_on_write(
    linked_root: tuple[ArtifactRepository, Path], tmp_path: Path
) -> None:
    repo, outside = linked_root
    src = tmp_path / "new.txt"
    src.write_text("new")
    with pytest.raises(UnsafePathError, match="outside the artifact root"):
        repo.write_text("out/planted.txt", "x")
    with pytest.raises(UnsafePathError, match="outside the artifact root"):
        repo.write_text("out.txt", "overwritten")
    with pytest.raises(UnsafePathError, match="outside the artifact root"):
        repo.log_artifact(src, "out")
    assert sorted(os.listdir(outside)) == ["secret.txt"]
    assert (outside / "secret.txt").read_text() == "secret"


def test_symlinks_out_are_invisible_to_listing_and_download_of_parent(
    linked_root: tuple[ArtifactRepository, Path], tmp_path: Path
) -> None:
    repo, _ = linked_root
    assert repo.list_artifacts() == [FileInfo("inner", False, 2), FileInfo("ok.txt", False, 2)]
    local = Path(repo.download_artifacts(None, tmp_path / "dl"))
    assert _tree(local) == {"inner": b"ok", "ok.txt": b"ok"}


def test_delete_of_symlink_removes_only_the_link(
    linked_root: tuple[ArtifactRepository, Path],
) -> None:
    repo, outside = linked_root
    repo.delete_artifacts("out")
    repo.delete_artifacts("out.txt")
    assert (outside / "secret.txt").read_text() == "secret"
    assert [info.path for info in repo.list_artifacts()] == ["inner", "ok.txt"]


def test_local_scheme_root_is_also_checked_for_links(
    linked_root: tuple[ArtifactRepository, Path],
) -> None:
    repo, _ = linked_root
    via_fsspec_url = ArtifactRepository(f"local://{repo.root_uri}")
    with pytest.raises(UnsafePathError, match="outside the artifact root"):
        via_fsspec_url.read_bytes("out.txt")


# -- serialization helpers -----------------------------------------------------------------


def test_serialize_dict_json_and_yaml() -> None:
    data = {"z": 1, "a": {"nested": [1, 2]}, "s": "é"}
    as_json = serialize_dict(data, "params.json")
    assert json.loads(as_json) == data
    assert as_json.startswith(b'{\n  "z": 1')
    for name in ("conf.yaml", "CONF.YML"):
        as_yaml = serialize_dict(data, name)
        assert yaml.safe_load(as_yaml) == data
        assert as_yaml.decode().splitlines()[0] == "z: 1"  # insertion order kept


def test_serialize_dict_refuses_other_extensions() -> None:
    with pytest.raises(InvalidParameterError, match=r"use a \.json, \.yaml or \.yml extension"):
        serialize_dict({"a": 1}, "data.txt")


@pytest.mark.parametrize("name", ["x.json", "x.yaml"])
def test_serialize_dict_refuses_unserializable_values(name: str) -> None:
    with pytest.raises(InvalidParameterError, match=f"Cannot serialize to '{name}'"):
        serialize_dict({"a": object()}, name)


@pytest.mark.parametrize(
    ("name", "magic"),
    [
        ("plot.png", b"\x89PNG\r\n\x1a\n"),
        ("plot.PNG", b"\x89PNG\r\n\x1a\n"),
        ("plot.pdf", b"%PDF"),
        ("plot.jpg", b"\xff\xd8\xff"),
        ("plot.svg", b"<?xml"),
    ],
)
def test_figure_to_bytes_matplotlib(name: str, magic: bytes) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    try:
        assert figure_to_bytes(fig, name).startswith(magic)
    finally:
        plt.close(fig)


def test_logged_figure_is_a_valid_png(repo: ArtifactRepository) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure()
    fig.subplots().plot([1, 2, 3])
    repo.write_bytes("plots/fig.png", figure_to_bytes(fig, "plots/fig.png"))
    assert repo.read_bytes("plots/fig.png")[:8] == b"\x89PNG\r\n\x1a\n"


def test_figure_to_bytes_html_with_write_html() -> None:
    class FakePlotly:
        def write_html(self, file: TextIO, /) -> None:
            file.write("<html></html>")

    assert figure_to_bytes(FakePlotly(), "fig.html") == b"<html></html>"


def test_figure_to_bytes_refuses_unknown_format() -> None:
    from matplotlib.figure import Figure

    with pytest.raises(InvalidParameterError, match=r"Invalid figure file 'fig\.gif'"):
        figure_to_bytes(Figure(), "fig.gif")
    with pytest.raises(InvalidParameterError, match=r"Invalid figure file 'fig\.html'"):
        figure_to_bytes(Figure(), "fig.html")
