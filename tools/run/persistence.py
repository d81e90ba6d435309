"""Postgres persistence (langgraph-checkpoint-postgres): the checkpointer and the store for `--db postgresql://`.

The run folder still holds every file; only checkpoints and the success memory move to the database, so
several machines can share one memory and a run can resume anywhere the folder and the database are reachable.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def postgres_persistence(url: str) -> Iterator[tuple[object, object]]:
    try:
        from langgraph.checkpoint.postgres import PostgresSaver
        from langgraph.store.postgres import PostgresStore
    except ImportError:
        raise RuntimeError("--db postgresql:// needs: pip install 'gome[postgres]'") from None
    with PostgresSaver.from_conn_string(url) as saver, PostgresStore.from_conn_string(url) as store:
        saver.setup()
        store.setup()
        yield saver, store
