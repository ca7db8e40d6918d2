"""Discovery follows symbolic links (issue 16): a folder of links to series is a common way to
gather a study, and it used to say it held nothing. Loops (a link to an ancestor) end: each
real folder is walked once."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from meddiag_desktop.scans import ScanError, discover, load

needs_symlinks = pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links")


@pytest.fixture
def two_series(tmp_path: Path, write_series) -> Path:
    """Two small CT series in their own folders under ``tmp_path / "store"``."""
    store = tmp_path / "store"
    write_series(store / "a", [(0.0, 0.0, float(z)) for z in range(4)])
    write_series(store / "b", [(0.0, 0.0, 2.0 * z) for z in range(5)])
    return store


@needs_symlinks
def test_folder_of_links_to_series_folders(tmp_path: Path, two_series: Path) -> None:
    gathered = tmp_path / "study"
    gathered.mkdir()
    (gathered / "first").symlink_to(two_series / "a", target_is_directory=True)
    (gathered / "second").symlink_to(two_series / "b", target_is_directory=True)
    found = discover(gathered)
    assert sorted(len(s.slices) for s in found) == [4, 5]
    assert all(s.loadable for s in found)
    assert all(str(s.files[0]).startswith(str(gathered)) for s in found)


@needs_symlinks
def test_folder_of_links_to_slice_files(tmp_path: Path, two_series: Path) -> None:
    linked = tmp_path / "links"
    linked.mkdir()
    for path in sorted((two_series / "a").iterdir()):
        (linked / path.name).symlink_to(path)
    volume = load(linked)
    assert volume.shape_zyx[0] == 4


@needs_symlinks
def test_link_to_an_ancestor_ends_and_lists_each_series_once(
    tmp_path: Path, two_series: Path
) -> None:
    (two_series / "a" / "loop").symlink_to(two_series, target_is_directory=True)
    (two_series / "b" / "again").symlink_to(two_series / "a", target_is_directory=True)
    started = time.perf_counter()
    found = discover(two_series)
    assert time.perf_counter() - started < 10
    assert sorted(len(s.slices) for s in found) == [4, 5]
    assert sorted(s.file_count for s in found) == [4, 5]


@needs_symlinks
def test_link_to_itself_and_a_dangling_link(tmp_path: Path, two_series: Path) -> None:
    """A link that leads nowhere is named as unreadable, not a crash or a silent skip."""
    (two_series / "a" / "self").symlink_to(two_series / "a" / "self")
    (two_series / "a" / "gone.dcm").symlink_to(tmp_path / "nowhere.dcm")
    found = discover(two_series)
    assert sorted(len(s.slices) for s in found if s.loadable) == [4, 5]
    unreadable = [s for s in found if not s.loadable]
    assert unreadable and "gone.dcm" in unreadable[0].reason


@needs_symlinks
def test_symlinked_root_folder(tmp_path: Path, two_series: Path) -> None:
    (tmp_path / "root-link").symlink_to(two_series / "b", target_is_directory=True)
    assert load(tmp_path / "root-link").shape_zyx[0] == 5
    with pytest.raises(ScanError, match="does not exist"):
        discover(tmp_path / "missing-link")
