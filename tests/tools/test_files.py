"""Reading and writing what a script could have touched: no link followed, regular files only, sizes capped,
folders copied and removed without following links or crossing mounts."""

import os

import pytest

from gome.tools.files import UnsafeFile, copy_tree, read_bytes, remove_tree, write_text


def test_reads_refuse_links_fifos_and_oversized_files(tmp_path):
    (tmp_path / "real").write_text("hello")
    os.symlink(tmp_path / "real", tmp_path / "link")
    os.mkfifo(tmp_path / "fifo")
    assert read_bytes(tmp_path / "real", 5) == b"hello"
    with pytest.raises(UnsafeFile, match="symbolic link"):
        read_bytes(tmp_path / "link", 100)
    with pytest.raises(UnsafeFile, match="not a regular file"):
        read_bytes(tmp_path / "fifo", 100)  # returns at once: a FIFO is never opened for a blocking read
    with pytest.raises(UnsafeFile, match="over the 4-byte limit"):
        read_bytes(tmp_path / "real", 4)


def test_writes_replace_a_link_instead_of_writing_through_it(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("untouched")
    os.symlink(victim, tmp_path / "stdout.txt")
    write_text(tmp_path / "stdout.txt", "the script's output")
    assert victim.read_text() == "untouched" and not (tmp_path / "stdout.txt").is_symlink()
    assert (tmp_path / "stdout.txt").read_text() == "the script's output"


def test_a_tree_with_a_link_anywhere_is_refused(tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "a.csv").write_text("x")
    copy_tree(src, tmp_path / "ok")
    assert (tmp_path / "ok" / "sub" / "a.csv").read_text() == "x"
    os.symlink("/etc", src / "sub" / "etc")
    with pytest.raises(UnsafeFile, match="symbolic link"):
        copy_tree(src, tmp_path / "refused")
    os.symlink(src, tmp_path / "src-link")
    with pytest.raises(UnsafeFile, match="is a link"):
        copy_tree(tmp_path / "src-link", tmp_path / "refused2")


def test_a_tree_nested_thousands_deep_is_removed(tmp_path):
    deep = tmp_path / "work"
    deep.mkdir()
    os.chdir(deep)
    try:
        for _ in range(3000):  # deeper than Python's recursion limit: shutil.rmtree would raise RecursionError
            os.mkdir("d")
            os.chdir("d")
    finally:
        os.chdir(tmp_path)
    remove_tree(deep)
    assert not deep.exists()
