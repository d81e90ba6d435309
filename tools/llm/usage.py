"""The run's LLM ledger: one line per call in usage.jsonl, running totals shared by every trace of the run."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from gome.state.records import Price, cost, price_for
from gome.tools.files import read_text

MAX_LEDGER_BYTES = 256 << 20

_ledgers: dict[str, Ledger] = {}
_ledgers_lock = threading.Lock()


class Ledger:
    """Append-only usage log with totals per model. Built from the file when first opened, so a resumed run
    keeps counting from where it stopped."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self.by_model: dict[str, list[int]] = {}  # model -> [calls, input_tokens, output_tokens, cached_input]
        try:
            text = read_text(path, MAX_LEDGER_BYTES)
        except FileNotFoundError:
            text = ""
        for line in text.splitlines():
            try:
                self._count(json.loads(line))
            except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
                continue  # a line cut by a crash: skip it, count the rest

    @classmethod
    def of(cls, path: str | Path) -> Ledger:
        """The ledger of a usage.jsonl file, shared by everything in this process that writes to it (looked up by
        an absolute path as given, then as resolved: resolving costs a system call per folder, and every LLM call
        asks; a relative path means another file once the working folder changes)."""
        given = str(path) if os.path.isabs(path) else None
        with _ledgers_lock:
            if given is not None and (known := _ledgers.get(given)) is not None:
                return known
        real = Path(path).resolve()
        with _ledgers_lock:
            if str(real) not in _ledgers:
                _ledgers[str(real)] = cls(real)
            ledger = _ledgers[str(real)]
            if given is not None:
                _ledgers[given] = ledger
            return ledger

    def _count(self, row: dict) -> None:
        c = self.by_model.setdefault(row.get("model") or "?", [0, 0, 0, 0])
        c[0] += 1
        c[1] += int(row["input_tokens"])
        c[2] += int(row["output_tokens"])
        c[3] += int(row.get("cached_input_tokens") or 0)

    def add(self, row: dict) -> None:
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
            with open(fd, "a") as f:
                f.write(json.dumps(row) + "\n")
            self._count(row)

    def tokens(self) -> int:
        with self._lock:
            return sum(c[1] + c[2] for c in self.by_model.values())

    def spent(self, prices: dict[str, Price]) -> dict:
        """What the run has spent so far, as the budgets count it: {"tokens", "dollars"}."""
        return {"tokens": self.tokens(), "dollars": round(self.dollars(prices)[0], 6)}

    def dollars(self, prices: dict[str, Price]) -> tuple[float, int]:
        """Spend in USD from a price table (per million tokens), and the tokens of models it has no price for."""
        with self._lock:
            spent, unpriced = 0.0, 0
            for model, (_calls, tin, tout, cached) in self.by_model.items():
                price = price_for(prices, model)
                if price is None:
                    unpriced += tin + tout
                else:
                    spent += cost(price, tin, tout, cached)
            return spent, unpriced
