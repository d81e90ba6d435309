"""Reading and writing what a script could have touched: no link followed, regular files only, sizes capped,
folders copied and removed without following links or crossing mounts."""

import os

import pytest

from gome.tools import files
from gome.tools.files import (
    UnsafeFile,
    copy_tree,
    file_version,
    made_of,
    read_bytes,
    remove_tree,
    write_bytes,
    write_text,
)


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


def test_what_is_made_of_a_file_is_made_again_only_when_the_file_changes(tmp_path):
    made = []

    def parse(path):  # one function object: made_of remembers what each `make` made
        made.append(path)
        return path.read_text()

    record = tmp_path / "metrics.json"
    record.write_text("one")
    assert [made_of(record, parse) for _ in range(3)] == ["one"] * 3 and len(made) == 1
    with open(record, "w") as f:  # someone else rewrites it in place: a new size
        f.write("three")
    assert made_of(record, parse) == "three" and len(made) == 2
    st = os.stat(record)
    os.utime(record, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched: the same bytes, a new mtime
    assert made_of(record, parse) == "three" and len(made) == 3
    assert made_of(record, parse) == "three" and len(made) == 3


def test_gomes_own_writes_are_made_again_even_when_the_file_looks_the_same(tmp_path, monkeypatch):
    made = []

    def parse(path):
        made.append(path)
        return path.read_bytes()

    record = tmp_path / "plan.json"
    write_text(record, "aaa")
    # a coarse clock and a reused inode: the new file's version equals the old one's; only forget() tells them apart
    monkeypatch.setattr(files, "file_version", lambda path: ("same",))
    assert made_of(record, parse) == b"aaa" and made_of(record, parse) == b"aaa" and len(made) == 1
    write_text(record, "bbb")
    assert made_of(record, parse) == b"bbb" and len(made) == 2
    write_bytes(record, b"ccc")
    assert made_of(record, parse) == b"ccc" and len(made) == 3


def test_a_link_or_a_missing_file_is_never_remembered(tmp_path):
    made = []

    def parse(path):  # make decides what a link or a missing file is
        made.append(path)
        return None if path.is_symlink() or not path.exists() else path.read_text()

    (tmp_path / "real").write_text("x")
    os.symlink(tmp_path / "real", tmp_path / "link")
    assert file_version(tmp_path / "link") is None and file_version(tmp_path / "absent") is None
    assert file_version(tmp_path) is None and file_version(tmp_path / "real") is not None
    for _ in range(2):
        assert made_of(tmp_path / "link", parse) is None and made_of(tmp_path / "absent", parse) is None
    assert len(made) == 4


def test_an_empty_folder_is_removed_without_reading_the_mount_table(tmp_path, monkeypatch):
    mount_reads = []
    real = files.mounts_below
    monkeypatch.setattr(files, "mounts_below", lambda path: mount_reads.append(path) or real(path))
    (tmp_path / "empty").mkdir()
    remove_tree(tmp_path / "empty")
    assert not (tmp_path / "empty").exists() and mount_reads == []
    (tmp_path / "full" / "sub").mkdir(parents=True)
    (tmp_path / "full" / "sub" / "a.csv").write_text("x")
    remove_tree(tmp_path / "full")  # not empty: the mounts below it are looked up and it is still removed
    assert not (tmp_path / "full").exists() and len(mount_reads) == 1


def test_a_cache_per_file_version_reads_again_when_the_file_changes_and_never_caches_a_link(tmp_path):
    reads = []

    @files.per_version(2)
    def rows(path, sep):
        reads.append(path)
        return open(path).read().split(sep)

    data = tmp_path / "train.csv"
    data.write_text("a,b")
    assert rows(data, ",") == rows(str(data), ",") == ["a", "b"] and len(reads) == 1
    write_text(data, "c,d")  # replaced: a new version
    assert rows(data, ",") == ["c", "d"] and len(reads) == 2
    os.symlink(data, tmp_path / "link")
    assert rows(tmp_path / "link", ",") == rows(tmp_path / "link", ",") == ["c", "d"] and len(reads) == 4
