"""Where a run's checkpoints and success memory live: SQLite in the run folder (default), or Postgres
(langgraph-checkpoint-postgres) for `--db postgresql://`, so several machines can share one memory and a run can
resume anywhere the folder and the database are reachable.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from typing import Any

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.store.sqlite import SqliteStore

from gome.tools.run.folder import RunFolder, RunFolderError

DB_NAME = "checkpoints.sqlite"


def is_postgres(db: str | None) -> bool:
    return bool(db) and db.startswith(("postgresql://", "postgres://"))


@contextmanager
def persistence(folder: RunFolder, db: str | None = None) -> Iterator[tuple[Any, Any]]:
    """(checkpointer, store) for the run."""
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
