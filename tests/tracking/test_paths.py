from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cairn.errors import UnsafePathError
from cairn.tracking._paths import ensure_within, normalize_artifact_path

if TYPE_CHECKING:
    from pathlib import Path


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (None, ""),
        ("", ""),
        (".", ""),
        ("./", ""),
        ("a", "a"),
        ("a/", "a"),
        ("./a/./b", "a/b"),
        ("a//b///c", "a/b/c"),
        ("a/b/.", "a/b"),
        ("...", "..."),
        ("a..b/c", "a..b/c"),
        ("100%.txt", "100%.txt"),
        ("a%2Fb", "a%2Fb"),
        ("x/~y", "x/~y"),
        ("dir/run:1", "dir/run:1"),
        ("données/é.txt", "données/é.txt"),
    ],
)
def test_normalize_accepts_relative_paths(path: str | None, expected: str) -> None:
    assert normalize_artifact_path(path) == expected


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("..", "'..' components"),
        ("../x", "'..' components"),
        ("a/../../b", "'..' components"),
        ("a/..", "'..' components"),
        ("a/b/../c", "'..' components"),
        ("%2e%2e/x", r"\(after percent-decoding\): '..' components"),
        ("%2E%2E/x", r"\(after percent-decoding\): '..' components"),
        ("a/%2e%2e%2fb", r"\(after percent-decoding\): '..' components"),
        ("%252e%252e/x", r"\(after percent-decoding\): '..' components"),
        ("%25252e%25252e/x", r"\(after percent-decoding\): '..' components"),
        ("/etc/passwd", "absolute paths"),
        ("//server/share", "absolute paths"),
        ("%2fetc%2fpasswd", r"\(after percent-decoding\): absolute paths"),
        ("C:\\x", "absolute paths"),
        ("c:/x", "absolute paths"),
        ("\\\\server\\share", "absolute paths"),
        ("a\\..\\b", "backslashes"),
        ("a\\b", "backslashes"),
        ("a%5cb", r"\(after percent-decoding\): backslashes"),
        ("a\x00b", "NUL bytes"),
        ("a%00b", r"\(after percent-decoding\): NUL bytes"),
        ("file:///etc/passwd", "URI schemes"),
        ("s3://bucket/key", "URI schemes"),
        ("file:x", "URI schemes"),
        ("~/.ssh", "'~' expansion"),
        ("~root/.ssh", "'~' expansion"),
        ("~", "'~' expansion"),
    ],
)
def test_normalize_refuses_unsafe_paths(path: str, reason: str) -> None:
    with pytest.raises(UnsafePathError, match=rf"Unsafe artifact path .*{reason}"):
        normalize_artifact_path(path)


def test_refusal_names_the_path() -> None:
    with pytest.raises(UnsafePathError, match=r"'a/\.\./\.\./b'"):
        normalize_artifact_path("a/../../b")


def test_refusal_is_an_invalid_parameter_with_status_400() -> None:
    with pytest.raises(UnsafePathError, match=r"'\.\.' components") as info:
        normalize_artifact_path("../x")
    assert info.value.http_status == 400
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"


def _is_inside(root: str, path: str) -> bool:
    root = os.path.normpath(root)
    path = os.path.normpath(path)
    return path == root or path.startswith(root + os.sep)


_path_text = st.one_of(
    st.text(),
    st.lists(
        st.sampled_from(
            ["a", "b", ".", "..", "", "%2e", "%2E%2e", "%25", "%252e", "/", "\\", "~", "c:", "\x00"]
        ),
        max_size=8,
    ).map("/".join),
    st.lists(st.sampled_from(["a", ".", "..", "%2e", "%25", "2e", "/", "\\"]), max_size=12).map(
        "".join
    ),
)


@given(_path_text)
def test_normalized_paths_stay_inside_any_root(path: str) -> None:
    try:
        normalized = normalize_artifact_path(path)
    except UnsafePathError:
        return
    assert ".." not in normalized.split("/")
    assert not normalized.startswith("/")
    assert "\\" not in normalized and "\x00" not in normalized
    assert normalize_artifact_path(normalized) == normalized
    root = "/srv/cairn/artifacts"
    assert _is_inside(root, os.path.join(root, normalized))


def test_ensure_within_accepts_the_root_and_paths_below(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    assert ensure_within(str(root), str(root)) == os.path.realpath(root)
    assert ensure_within(str(root), str(root / "a" / "new.txt")) == os.path.realpath(
        root / "a" / "new.txt"
    )


def test_ensure_within_accepts_links_that_stay_inside(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "real").mkdir(parents=True)
    (root / "alias").symlink_to(root / "real")
    assert ensure_within(str(root), str(root / "alias" / "f")) == os.path.realpath(
        root / "real" / "f"
    )


def test_ensure_within_refuses_lexical_escape(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(UnsafePathError, match="outside the artifact root"):
        ensure_within(str(root), str(root / ".." / "other"))


def test_ensure_within_refuses_sibling_with_common_prefix(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    (tmp_path / "root2").mkdir()
    with pytest.raises(UnsafePathError, match="outside the artifact root"):
        ensure_within(str(tmp_path / "root"), str(tmp_path / "root2" / "x"))


def test_ensure_within_refuses_symlink_pointing_out(tmp_path: Path) -> None:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "link").symlink_to(outside)
    with pytest.raises(UnsafePathError, match=r"symlink pointing out"):
        ensure_within(str(root), str(root / "link" / "secret"))


def test_ensure_within_follows_a_root_that_is_itself_a_link(tmp_path: Path) -> None:
    real_root = tmp_path / "disk" / "artifacts"
    real_root.mkdir(parents=True)
    root = tmp_path / "artifacts"
    root.symlink_to(real_root)
    assert ensure_within(str(root), str(root / "x")) == os.path.realpath(real_root / "x")
