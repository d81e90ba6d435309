"""Where a run's checkpoints and success memory live: SQLite in the run folder (default), or Postgres
(langgraph-checkpoint-postgres) for `--db postgresql://`, so several machines can share one memory and a run can
resume anywhere the folder and the database are reachable.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.config import get_config
from langgraph.store.sqlite import SqliteStore

from gome.tools.run.folder import RunFolder, RunFolderError

DB_NAME = "checkpoints.sqlite"
SAVE_WAIT_S = 600.0  # how long a node waits for the save it records before it stops the run


class CheckpointSaveError(RuntimeError):
    """A checkpoint could not be saved: the run stops rather than go on with work that resume would not find."""


class Saves:
    """A run's checkpoints saved (or loaded) by this process, per namespace, and the first save that failed.

    Checkpoints are saved in the background while the next node starts (durability "async"): waiting for each
    save cost a step about 2 ms. Two things make that safe. A node that records an experiment as finished (the
    checkpoint node: metrics.json, best/, the memory) first waits for the save of the checkpoint it runs from,
    which holds the experiment's run and diagnosis: without that wait, a kill after metrics.json was written
    could resume from before execute and run a finished experiment again. And a save that fails stops the run at
    the next node: LangGraph alone reports it only when the graph ends, and every later save fails on it."""

    def __init__(self):
        self._cond = threading.Condition()
        self._known: dict[str, deque[str]] = {}  # namespace -> the last checkpoint ids saved or loaded there
        self.error: BaseException | None = None

    def _saw(self, ns: str, checkpoint_id: str) -> None:
        with self._cond:
            self._known.setdefault(ns, deque(maxlen=16)).append(checkpoint_id)
            self._cond.notify_all()

    def _failed(self, error: BaseException) -> None:
        with self._cond:
            self.error = self.error or error
            self._cond.notify_all()

    def wait(self, ns: str, checkpoint_id: str, timeout_s: float = SAVE_WAIT_S) -> None:
        """Return once the checkpoint is saved; raise CheckpointSaveError if a save failed or it takes too long."""
        with self._cond:
            saved = self._cond.wait_for(lambda: self.error or checkpoint_id in self._known.get(ns, ()), timeout_s)
        if self.error is not None:
            raise unsaved(self.error)
        if not saved:
            raise CheckpointSaveError(f"the last checkpoint was not saved within {timeout_s:g} s; the run stops "
                                      "here so that no finished work goes unsaved: `gome resume` continues")

    def track(self, saver: Any) -> Any:
        """The saver, reporting here what it saved, loaded and failed to save."""
        put, put_writes, get_tuple = saver.put, saver.put_writes, saver.get_tuple

        def tracked_put(config, checkpoint, *args, **kwargs):
            try:
                saved = put(config, checkpoint, *args, **kwargs)
            except Exception as e:
                self._failed(e)
                raise
            self._saw(config["configurable"].get("checkpoint_ns", ""), checkpoint["id"])
            return saved

        def tracked_put_writes(*args, **kwargs):
            try:
                return put_writes(*args, **kwargs)
            except Exception as e:
                self._failed(e)
                raise

        def tracked_get_tuple(config):
            found = get_tuple(config)
            if found is not None:  # a resumed run's nodes start from checkpoints saved before
                self._saw(found.config["configurable"].get("checkpoint_ns", ""), found.checkpoint["id"])
            return found

        saver.put, saver.put_writes, saver.get_tuple = tracked_put, tracked_put_writes, tracked_get_tuple
        return saver


_runs: dict[str, Saves] = {}  # run folder -> its saves, while a run holds it in this process


def unsaved(error: BaseException) -> CheckpointSaveError:
    return CheckpointSaveError(
        f"a checkpoint could not be saved ({type(error).__name__}: {str(error)[:300]}); the run stops here so that "
        "no work goes unsaved: fix the cause (disk space, the database) and `gome resume` continues from the last "
        "checkpoint saved")


def raise_if_unsaved(run_dir: str | None) -> None:
    """At a node's start: raise CheckpointSaveError when a checkpoint of this run could not be saved."""
    saves = _runs.get(str(Path(run_dir))) if run_dir and _runs else None
    if saves is not None and saves.error is not None:
        raise unsaved(saves.error) from saves.error


def wait_saved(run_dir: str | None) -> None:
    """In a node: wait until the checkpoint it runs from is saved (see Saves). A graph run by other means than
    gome's runner (the LangGraph server) has its own persistence, and returns at once."""
    saves = _runs.get(str(Path(run_dir))) if run_dir and _runs else None
    if saves is None:
        return
    conf = get_config()["configurable"]
    graph_ns = conf.get("checkpoint_ns", "").rpartition("|")[0]  # the node's graph: the task's namespace, less it
    checkpoint_id = (conf.get("checkpoint_map") or {}).get(graph_ns)
    if checkpoint_id is not None:
        saves.wait(graph_ns, checkpoint_id)


def is_postgres(db: str | None) -> bool:
    return bool(db) and db.startswith(("postgresql://", "postgres://"))


@contextmanager
def persistence(folder: RunFolder, db: str | None = None) -> Iterator[tuple[Any, Any]]:
    """(checkpointer, store) for the run, its saves tracked (Saves) while the run holds it."""
    key, saves = str(folder.root), Saves()
    _runs[key] = saves
    try:
        with _persistence(folder, db) as (saver, store):
            yield saves.track(saver), store
    finally:
        _runs.pop(key, None)


@contextmanager
def _persistence(folder: RunFolder, db: str | None) -> Iterator[tuple[Any, Any]]:
    if is_postgres(db):
        try:
            from langgraph.checkpoint.postgres import PostgresSaver
            from langgraph.store.postgres import PostgresStore
        except ImportError:
            raise RuntimeError("--db postgresql:// needs: pip install 'gome[postgres]'") from None
        with PostgresSaver.from_conn_string(db) as saver, PostgresStore.from_conn_string(db) as store:
            saver.setup()
            store.setup()
            yield saver, store
        return
    path = str(folder.path(DB_NAME))
    with closing(sqlite3.connect(path, check_same_thread=False)) as saver_conn, \
            closing(sqlite3.connect(path, check_same_thread=False, isolation_level=None)) as store_conn:
        for conn in (saver_conn, store_conn):
            # The saver keeps the database in WAL mode. There a commit need not wait for the disk (fsync) and still
            # survives the process being killed at any point, which is what resume is for; a power cut may lose
            # what the system had not yet written (those steps run again) but never corrupts the file. A step
            # makes about ten commits: ten fsyncs were a tenth of gome's own time per step.
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        store = SqliteStore(store_conn)
        store.setup()
        yield SqliteSaver(saver_conn), store


def check_resumable(folder: RunFolder, db: str | None) -> None:
    """Before a resume: the SQLite checkpoint file must exist and be a sound database (Postgres is checked once
    open). Starting a run over because its checkpoints are gone would run finished work again."""
    if is_postgres(db):
        return
    path = folder.path(DB_NAME)
    if not path.is_file() or path.is_symlink():
        raise RunFolderError(
            f"{path} is missing: without it gome cannot tell what has finished, and will not start the run over "
            f"({folder.finished()} experiment(s) finished). Restore the file, or start a new run.")
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            verdict = conn.execute("PRAGMA quick_check").fetchone()[0]
        if verdict != "ok":
            raise sqlite3.DatabaseError(verdict)
    except sqlite3.DatabaseError as e:
        raise damaged(path, folder, e) from None


def damaged(db: object, folder: RunFolder, error: Exception) -> RunFolderError:
    return RunFolderError(f"{db} is damaged ({error}); gome will not start the run over. The finished experiments "
                          f"are in {folder.root / 'experiments'}; restore the database from a backup, or start a new "
                          "run.")
