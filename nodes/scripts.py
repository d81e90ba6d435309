"""Saving a new script (or the failure to get one) as the experiment the next execute runs."""

from __future__ import annotations

from gome.tools.run_folder import experiment_dir, write_json


def save_script(run_dir: str, exp_id: str, code: str | None, *, parent: str | None, plan: dict,
                errors: list[str]) -> dict:
    """Write experiments/<id>/main.py and plan.json; return the `pending` summary for state."""
    folder = experiment_dir(run_dir, exp_id)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.iterdir():  # a node re-run after a crash starts its experiment afresh
        if stale.is_file():
            stale.unlink()
    if code is not None:
        (folder / "main.py").write_text(code)
    write_json(folder / "plan.json", {**plan, "parent": parent, "llm_errors": errors[-5:]})
    return {"id": exp_id, "parent": parent, "kind": plan.get("kind", "update"), "has_script": code is not None,
            "llm_error": None if code is not None else (errors[-1] if errors else "no script in the reply")}
