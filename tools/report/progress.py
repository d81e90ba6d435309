"""Showing a run's progress events: a live table with a row per trace on a terminal, plain lines elsewhere."""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import TextIO


def step_line(event: dict) -> str:
    score = "-" if event.get("score") is None else f"{event['score']:.5g}"
    if event.get("score_source") == "self_reported":
        score += "(self)"
    best = "-" if event.get("best") is None else f"{event['best']:.5g}"
    verdict = "NEW BEST" if event.get("improved_best") else ("accept" if event.get("accepted") else "reject")
    line = (f"[{event['step']:>3}/{event.get('budget')}] trace {event['trace']} exp {event['id']} "
            f"{(event.get('mode') or 'gradient')[:4]} {event['status']:<9} {event.get('runtime_s', 0):6.1f}s "
            f"score {score:<10} {verdict:<8} best {best:<9} {str(event.get('hypothesis'))[:60]}")
    if event.get("status") != "ok" and event.get("reason"):  # say why a step failed (a crash, no script, no key)
        line += f"\n      {event['reason'][:160]}"
    if event.get("switch"):
        line += f"\n      mode switch: {event['switch']}"
    return line


class Progress:
    """Call with each event; use as a context manager. json: one JSON line per event; live: a rich table."""

    def __init__(self, *, as_json: bool = False, live: bool | None = None, out: TextIO | None = None):
        self.out = out or sys.stdout
        self.as_json = as_json
        self.live = (self.out.isatty() if live is None else live) and not as_json
        self.rows: dict[int, dict] = {}
        self.started = time.time()
        self.phase, self.done, self.total, self.spent = "starting", 0, None, None
        self.maximize = True  # the best across traces (set from the task by the caller, when it knows it)
        self._lock = threading.Lock()  # rich draws on its own thread while events arrive on this one
        self._live = None

    def __enter__(self) -> Progress:
        if self.live:
            from rich.console import Console
            from rich.live import Live

            self._live = Live(self, console=Console(file=self.out), refresh_per_second=2)
            self._live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)

    def __call__(self, event: dict) -> None:
        if self.as_json:
            print(json.dumps(event, default=str), file=self.out, flush=True)
            return
        with self._lock:
            self._take(event)
        if self._live is not None:
            self._live.refresh()

    def _take(self, event: dict) -> None:
        kind = event.get("event")
        if kind == "phase":
            self.phase = event["phase"]
            self.total = event.get("steps", self.total)
            self.maximize = event.get("direction", "maximize" if self.maximize else "minimize") == "maximize"
            if not self.live:
                print(f"gome: {self.phase}", file=self.out, flush=True)
        elif kind == "rerun":
            self.phase = f"selecting: re-run {event['done']}/{event['of']}"
        row = self.rows.setdefault(event.get("trace", 0), {"best": None, "last": "", "mode": "", "step": 0})
        if kind == "step_started":
            row.update(step=event["step"], budget=event.get("budget"), mode=event.get("mode") or row["mode"],
                       last=f"running {event['id']} ({event.get('intent')})")
        elif kind == "step":
            self.done += 1
            self.spent = event.get("spent") or self.spent
            row.update(step=event["step"], budget=event.get("budget"), best=event.get("best"),
                       mode=event.get("mode") or row["mode"],
                       last=f"{event['id']} {event['status']} {event.get('score')} "
                            f"{'NEW BEST' if event.get('improved_best') else ''}".strip())
            if event.get("switch"):
                row["switch"] = event["switch"]
            if not self.live:
                print(step_line(event), file=self.out, flush=True)

    def __rich__(self):
        """The table, drawn afresh at every refresh: the clock runs between events."""
        with self._lock:
            return self._table()

    def _table(self):
        from rich.table import Table

        bests = [r["best"] for r in self.rows.values() if r["best"] is not None]
        best = "-" if not bests else f"{(max if self.maximize else min)(bests):.5g}"
        minutes, seconds = divmod(int(time.time() - self.started), 60)
        spent = self.spent or {}
        dollars = f", ${spent['dollars']:.4g}" if spent.get("dollars") else ""
        table = Table(title=f"gome  {minutes}:{seconds:02d}  {self.phase}  steps {self.done}/{self.total or '?'}  "
                            f"best {best}  tokens {spent.get('tokens', 0):,}{dollars}")
        for col in ("trace", "step", "mode", "best", "last step", "last switch"):
            table.add_column(col)
        for trace, r in sorted(self.rows.items()):
            if not r["step"]:
                continue
            row_best = "-" if r["best"] is None else f"{r['best']:.5g}"
            table.add_row(str(trace), f"{r['step']}/{r.get('budget', '?')}", r["mode"], row_best, r["last"],
                          r.get("switch", ""))
        return table
