"""The `gome` command."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from gome.state.records import ModelSpec, RunConfig
from gome.tools.files import read_text
from gome.tools.llm.local_model import LocalModelError
from gome.tools.llm.models import ModelConfigError, check_model, make_chat_model, resolve_spec
from gome.tools.run.folder import MAX_CODE_BYTES, RunFolder, RunFolderError, is_disk_full, new_run_dir
from gome.tools.sandbox import make_executor
from gome.tools.sandbox.e2b import E2BUnavailable
from gome.tools.sandbox.ray_executor import RayUnavailable
from gome.tools.task.loading import TaskError, find_data_dir, load_task
from gome.tools.task.metrics import ScoringError
from gome.tools.task.submission import grade

EXIT_OK, EXIT_NO_SUBMISSION, EXIT_USAGE, EXIT_PAUSED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
RUN, MODEL = RunConfig(), ModelSpec()  # the defaults, written once in state/records.py
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([hms]?)")


def parse_duration(text: str) -> float:
    """'90' or '90s', '30m', '2h', '1h30m' -> seconds."""
    text = text.strip().lower()
    parts = _DURATION.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (use e.g. 90s, 30m, 2h, 1h30m)")
    seconds = sum(float(n) * {"h": 3600, "m": 60, "s": 1, "": 1}[u] for n, u in parts)
    if seconds <= 0:
        raise argparse.ArgumentTypeError("a duration must be positive")
    return seconds


def _count(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
        return value
    return parse


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text}")
    return value


def _seconds(value: float) -> str:
    """3600.0 -> 1h, 90.0 -> 1m30s: a duration as people write it (and as --time takes it)."""
    h, rest = divmod(int(value), 3600)
    m, sec = divmod(rest, 60)
    return "".join(f"{n}{u}" for n, u in ((h, "h"), (m, "m"), (sec, "s")) if n) or "0s"


class Help(argparse.RawDescriptionHelpFormatter):
    """Help that names each default once (not after a text that already does), durations as durations."""

    def _get_help_string(self, action):
        text = action.help or ""
        d = action.default
        if "default" in text or d is None or d is False or d in ([], argparse.SUPPRESS) or not action.option_strings:
            return text
        shown = _seconds(d) if action.type is parse_duration else d
        return f"{text} (default: {shown})".lstrip()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gome")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gome", description="An MLE agent: give it a task folder, get a submission.")
    p.add_argument("--version", action="version", version=f"gome {_version()}")
    sub = p.add_subparsers(dest="command", required=True)
    _run_parser(sub)
    _resume_parser(sub)
    sub.add_parser("doctor", help="show which sandbox isolation works on this machine, and why")
    rep = sub.add_parser("report", help="write report.html and report.md for a run folder (running, crashed or done)")
    rep.add_argument("run_dir", help="the run folder")
    g = sub.add_parser("grade", help="score a submission against a task's hidden answers (private/answers.csv)")
    g.add_argument("task_dir", help="the task folder")
    g.add_argument("submission", help="submission CSV, or a run folder (uses its best/submission.csv)")
    g.add_argument("--answers", help="answers CSV (default: TASK_DIR/private/answers.csv)")
    g.add_argument("--json", action="store_true", help="print the grade as one JSON object")
    _suite_parsers(sub)
    return p


def _run_parser(sub) -> None:
    r = sub.add_parser("run", help="solve a task folder", formatter_class=Help)
    r.add_argument("task_dir", help="task folder: description.md, train/test/sample submission CSVs, task.toml")
    m = r.add_argument_group("model")
    m.add_argument("--model", help="provider:name (e.g. openai:gpt-4.1-mini), or local (local:PATH.gguf): "
                   "Qwen2.5-Coder-1.5B served by llama.cpp here (default: $GOME_MODEL, else local)")
    m.add_argument("--base-url", help="OpenAI-compatible server (default: $OPENAI_BASE_URL)")
    m.add_argument("--temperature", type=float, default=MODEL.temperature, help="sampling temperature")
    m.add_argument("--llm-timeout", type=parse_duration, default=MODEL.timeout_s, help="limit of one LLM call")
    m.add_argument("--retries", type=_count(0), default=MODEL.max_retries, help="retries of a failed LLM call")
    m.add_argument("--price", action="append", default=[], metavar="MODEL=IN,OUT",
                   help="USD per million input,output[,cached input] tokens, e.g. gpt-4.1-mini=0.4,1.6,0.1 "
                   "(repeatable)")
    g = r.add_argument_group("search")
    g.add_argument("--mode", choices=["gradient", "tree", "auto"], default=RUN.mode,
                   help="gradient (Gome), tree (AIDE-style search), or auto (switches by what pays off)")
    g.add_argument("--traces", type=_count(1), default=RUN.traces, help="parallel traces sharing one success memory")
    g.add_argument("--tree-policy", choices=["greedy", "uct"], default=RUN.tree.policy,
                   help="tree mode: improve the best node, or the UCT choice")
    g.add_argument("--repair-rounds", type=_count(0), default=RUN.repair.rounds,
                   help="repairs of a failing script within its step, before its idea is judged")
    g.add_argument("--late-stage", type=float, default=RUN.late_stage, metavar="SHARE",
                   help="share of the budget after which gradient steps blend the best candidates (1: never)")
    g.add_argument("--whole-scripts", action="store_true",
                   help="small steps and repairs re-type the whole script instead of answering with edits")
    g.add_argument("--seed", type=int, default=RUN.seed, help="seed of every split and model, and of the search")
    g.add_argument("--review", action="store_true", help="pause before each new script runs, for approval")
    b = r.add_argument_group("budgets")
    b.add_argument("--steps", type=_count(1), default=RUN.steps, help="experiments in the whole run")
    b.add_argument("--time", type=parse_duration, default=RUN.time_s, help="wall-clock budget (e.g. 30m, 1h30m)")
    b.add_argument("--script-timeout", type=parse_duration, default=RUN.script_timeout_s,
                   help="limit of one script run")
    b.add_argument("--threads", type=_count(1), default=RUN.threads, help="CPU threads a script may use")
    b.add_argument("--max-tokens", type=_count(1), help="LLM token budget of the whole run (default: none)")
    b.add_argument("--max-dollars", type=_positive, help="LLM spend budget of the whole run, from --price "
                   "(default: none)")
    sel = r.add_argument_group("final selection")
    sel.add_argument("--top-k", type=_count(1), default=RUN.select.top_k, help="candidates re-run")
    sel.add_argument("--reruns", type=_count(0), default=RUN.select.reruns, help="extra seeds per candidate (0: off)")
    t = r.add_argument_group("task settings, when the folder has no task.toml")
    t.add_argument("--metric", help="e.g. roc_auc, rmse, accuracy, f1_macro")
    t.add_argument("--direction", choices=["maximize", "minimize"], help="whether a higher metric is better "
                   "(default: the metric's own)")
    t.add_argument("--id-column", help="the id column of test and the submission")
    t.add_argument("--target", action="append", dest="target_columns", help="target column (repeatable)")
    x = r.add_argument_group("sandbox")
    x.add_argument("--executor", choices=["local", "e2b", "ray"], default="local",
                   help="where scripts run: the local sandbox, e2b cloud sandboxes (needs E2B_API_KEY), or a Ray "
                        "cluster's nodes (each in its local sandbox)")
    x.add_argument("--ray-address", help="the Ray cluster for --executor ray (default: $RAY_ADDRESS, else a local "
                   "one)")
    x.add_argument("--gpus", type=_positive, default=0, help="GPUs per script, from the Ray cluster")
    x.add_argument("--allow-network", action="store_true", help="let scripts reach the network")
    x.add_argument("--memory", type=_positive, help="GiB of memory per script (default: 80%% of RAM / traces)")
    o = r.add_argument_group("output")
    o.add_argument("--out", default="runs", help="parent folder of run folders")
    o.add_argument("--db", help="postgresql://... for the checkpointer and store (default: SQLite in the run)")
    o.add_argument("--json", action="store_true", help="stdout: progress events and the result as JSON lines only")


def _resume_parser(sub) -> None:
    res = sub.add_parser("resume", help="continue a run that was killed, crashed, interrupted or paused")
    res.add_argument("run_dir", help="the run folder")
    res.add_argument("--model", help="override the run's model (provider:name)")
    res.add_argument("--base-url", help="override the run's OpenAI-compatible server")
    res.add_argument("--db", help="the run's postgresql:// URL, when it used Postgres")
    res.add_argument("--json", action="store_true", help="stdout: progress events and the result as JSON lines only")
    answer = res.add_mutually_exclusive_group()
    answer.add_argument("--approve", action="store_true", help="review: run the script as it is")
    answer.add_argument("--reject", action="store_true", help="review: skip the script (costs the step)")
    answer.add_argument("--edit", metavar="FILE", help="review: run FILE's code instead")


def _suite_parsers(sub) -> None:
    t = sub.add_parser("tasks", help="the local benchmark suite: list its tasks, or build them")
    tsub = t.add_subparsers(dest="tasks_command", required=True)
    ls = tsub.add_parser("list", help="the suite's tasks: source, kind, modality, metric")
    ls.add_argument("--suite", help="a built suite: print its table (trivial, reference median and gold scores)")
    b = tsub.add_parser("build", help="build tasks with their reference leaderboards and check their checksums")
    b.add_argument("names", nargs="*", help="tasks to build (default: all)")
    b.add_argument("--out", default="suite", help="folder of the built tasks")
    b.add_argument("--no-leaderboard", action="store_true", help="data only: skip the reference pipelines")
    b.add_argument("--record", action="store_true", help="rewrite checksums.json instead of checking it")
    e = sub.add_parser("eval", help="run gome on suite tasks x modes x seeds x models, grade, and aggregate",
                       formatter_class=Help)
    e.add_argument("--suite", default="suite", help="folder built by `gome tasks build`")
    e.add_argument("--tasks", type=_names, help="comma-separated tasks (default: every built task)")
    e.add_argument("--modes", type=_names, default=["gradient", "tree"], help="comma-separated modes")
    e.add_argument("--seeds", type=_seeds, default=[0], help="comma-separated seeds")
    e.add_argument("--models", type=_names, default=["local"], help="comma-separated models (provider:name or local)")
    e.add_argument("--steps", type=_count(1), default=4, help="experiments per run")
    e.add_argument("--time", type=parse_duration, default=1800.0, help="wall-clock budget per run")
    e.add_argument("--traces", type=_count(1), default=1, help="parallel traces per run")
    e.add_argument("--reruns", type=_count(0), default=0, help="extra seeds per candidate in final selection")
    e.add_argument("--out", default="eval", help="folder of cells and results (run again to resume)")
    e.add_argument("--json", action="store_true", help="progress events as JSON lines")
    e.add_argument("--ray", action="store_true", help="run the cells as Ray tasks spread over a cluster (--out and "
                   "--suite on a filesystem every node sees)")
    e.add_argument("--ray-address", help="the Ray cluster (default: $RAY_ADDRESS, else a local one)")


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected a comma-separated list")
    return names


def _seeds(text: str) -> list[int]:
    try:
        return [int(n) for n in _names(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds must be integers: {text!r}") from None


def parse_prices(items: list[str]) -> dict[str, tuple[float, ...]]:
    prices = {}
    for item in items:
        name, _, rates = item.partition("=")
        try:
            price = tuple(float(x) for x in rates.split(","))
        except ValueError:
            price = ()
        if len(price) not in (2, 3) or min(price) < 0:
            raise ValueError(f"--price {item!r}: expected MODEL=IN,OUT or MODEL=IN,OUT,CACHED (USD per million "
                             "tokens)")
        prices[name.split(":", 1)[-1]] = price
    return prices


def cmd_run(args, chat_model=None, executor=None) -> int:
    from gome.graph.run import run_gome  # imports langgraph: keep `gome --help` fast

    overrides = {"metric": args.metric, "direction": args.direction, "id_column": args.id_column,
                 "target_columns": args.target_columns}
    try:
        task = load_task(args.task_dir, overrides)
    except TaskError as e:
        print(f"gome: {e}", file=sys.stderr)
        return EXIT_USAGE
    spec = ModelSpec(model=args.model, base_url=args.base_url, temperature=args.temperature,
                     timeout_s=args.llm_timeout, max_retries=args.retries)
    try:
        if chat_model is None:
            chat_model = make_chat_model(spec)
        spec = resolve_spec(spec)
        config = RunConfig(
            mode=args.mode, traces=args.traces, steps=args.steps, time_s=args.time,
            script_timeout_s=args.script_timeout, threads=args.threads, seed=args.seed, model=spec,
            max_tokens=args.max_tokens, max_dollars=args.max_dollars,
            prices={**RunConfig().prices, **parse_prices(args.price)},
            tree={"policy": args.tree_policy}, select={"top_k": args.top_k, "reruns": args.reruns},
            repair={"rounds": args.repair_rounds}, late_stage=args.late_stage,
            review=args.review, edits=not args.whole_scripts)
        if config.max_dollars and spec.model and config.price_of(spec.model) is None:
            raise ValueError(f"--max-dollars needs a price for {spec.model!r}: pass --price NAME=IN,OUT")
        if executor is None:
            executor = make_executor(args.executor, slots=config.traces, allow_network=args.allow_network,
                                     memory_gib=args.memory, ray_address=args.ray_address, gpus=args.gpus,
                                     cpus=config.threads if args.executor == "ray" else None)
    except (E2BUnavailable, RayUnavailable, ModelConfigError, LocalModelError, ValueError) as e:
        print(f"gome: {e}", file=sys.stderr)
        return EXIT_USAGE

    try:
        run_dir = new_run_dir(args.out, task.name)
    except RunFolderError as e:
        print(f"gome: {e}", file=sys.stderr)
        return EXIT_USAGE
    print(f"gome: {task.name} ({task.metric}, {task.direction}); mode {args.mode}, {args.traces} trace(s), "
          f"{args.steps} steps, {args.time:g} s budget", file=sys.stderr)
    RunFolder(run_dir).update_run_json(executor={"kind": args.executor, "allow_network": args.allow_network,
                                       "memory": args.memory, "ray_address": args.ray_address, "gpus": args.gpus})
    return supervise(run_dir, args.json, lambda on_event: run_gome(
        args.task_dir, config, run_dir=run_dir, task_overrides=overrides, chat_model=chat_model,
        executor=executor, on_event=on_event, db=args.db))


def supervise(run_dir: Path, as_json: bool, go) -> int:
    """Run `go(on_event)` with a progress display; turn its end (done, paused, interrupted, crashed) into a
    message and an exit code. Nothing finished is lost in any case: it is all in the run folder."""
    from gome.tools.report.progress import Progress

    try:
        with Progress(as_json=as_json) as progress:
            final = go(progress)
    except RunFolderError as e:  # in use, or a checkpoint database that cannot be trusted: nothing ran
        print(f"gome: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:  # run.json already says so (the runner records how a run ended)
        print(f"gome: interrupted; resume with: gome resume {run_dir}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:  # a bug or a broken disk: the runner kept the traceback in the run folder
        why = "no space left on the disk" if is_disk_full(e) else f"{type(e).__name__}: {e}"
        print(f"gome: the run crashed ({why}); traceback in {run_dir / 'crash.txt'}; "
              f"every finished experiment is in {run_dir}; resume with: gome resume {run_dir}", file=sys.stderr)
        return EXIT_NO_SUBMISSION
    if final.get("status") == "paused":
        RunFolder(run_dir).update_run_json(status="paused")
        for item in final.get("interrupts", []):
            if item.get("error"):
                print(f"gome: {item['error']}", file=sys.stderr)
            print(f"gome: waiting for review of experiment {item.get('id')}: {run_dir}/experiments/"
                  f"{item.get('id')}/main.py", file=sys.stderr)
        print(f"gome: answer with: gome resume {run_dir} --approve | --reject | --edit FILE", file=sys.stderr)
        return EXIT_PAUSED
    print(f"gome: {final.get('status')}: {final.get('message')}", file=sys.stderr)
    print(f"gome: run folder {run_dir}", file=sys.stderr)
    if final.get("status") != "succeeded":
        return EXIT_NO_SUBMISSION
    submission = run_dir / "best" / "submission.csv"
    print(json.dumps({"event": "done", "status": "succeeded", "submission": str(submission)}) if as_json
          else submission)
    return EXIT_OK


def cmd_resume(args, chat_model=None, executor=None) -> int:
    from gome.graph.run import resume_gome

    run_dir = Path(args.run_dir).resolve()
    run = RunFolder(run_dir).read("run", {})
    if not run.get("inputs"):
        print(f"gome: {run_dir} is not a gome run folder (no run.json with inputs)", file=sys.stderr)
        return EXIT_USAGE
    try:
        answer = review_answer(args)
    except OSError as e:
        print(f"gome: --edit {args.edit}: cannot read it ({e.strerror})", file=sys.stderr)
        return EXIT_USAGE
    config = RunConfig.model_validate(run["inputs"]["config"])
    spec = config.model.model_copy(update={k: v for k, v in {"model": args.model, "base_url": args.base_url}.items()
                                           if v})
    saved = run.get("executor") or {}
    try:
        chat_model = chat_model or make_chat_model(spec)
        executor = executor or make_executor(saved.get("kind", "local"), slots=config.traces,
                                             allow_network=saved.get("allow_network", False),
                                             memory_gib=saved.get("memory"), ray_address=saved.get("ray_address"),
                                             gpus=saved.get("gpus") or 0,
                                             cpus=config.threads if saved.get("kind") == "ray" else None)
    except (ModelConfigError, E2BUnavailable, RayUnavailable, LocalModelError, ValueError) as e:
        print(f"gome: {e}", file=sys.stderr)
        return EXIT_USAGE
    print(f"gome: resuming {run_dir}", file=sys.stderr)
    return supervise(run_dir, args.json, lambda on_event: resume_gome(
        run_dir, chat_model=chat_model, executor=executor, on_event=on_event, db=args.db, resume=answer))


def review_answer(args) -> dict | None:
    if getattr(args, "approve", False):
        return {"action": "approve"}
    if getattr(args, "reject", False):
        return {"action": "reject"}
    if getattr(args, "edit", None):
        return {"action": "edit", "code": read_text(args.edit, MAX_CODE_BYTES)}
    return None


def cmd_doctor() -> int:
    """What the local sandbox can use here, link by link, what e2b needs, and whether the model can be built."""
    import importlib.util
    import os

    from gome.tools.sandbox.isolation import probe

    iso = probe()
    print(f"isolation level: {iso.level}{'' if iso.full else '  (weaker than the full chain)'}")
    for name, value in (("bubblewrap (namespaces, read-only mounts, no network)", iso.bwrap),
                        ("cgroup (memory, pids, CPU; kills every process)", iso.cgroup and f"cgroup {iso.cgroup}"),
                        ("non-root uid per slot", iso.setpriv), ("rlimits (file size, core, CPU time)", iso.prlimit)):
        print(f"  {'ok ' if value else 'no '} {name}: {value or 'missing'}")
    for why in iso.missing:
        print(f"      why: {why}")
    has_sdk = importlib.util.find_spec("e2b_code_interpreter") is not None
    print(f"e2b: SDK {'installed' if has_sdk else 'missing (pip install gome[e2b])'}, "
          f"E2B_API_KEY {'set' if os.environ.get('E2B_API_KEY') else 'not set'}")
    model_ok, line = check_model()  # the model a run with no --model would use ($GOME_MODEL, else local)
    print(line)
    return EXIT_OK if iso.full and model_ok else EXIT_NO_SUBMISSION


def cmd_report(run_dir: str) -> int:
    from gome.tools.report.report import write_report

    if not (Path(run_dir) / "run.json").is_file():
        print(f"gome: {run_dir} is not a run folder (no run.json)", file=sys.stderr)
        return EXIT_USAGE
    page, md = write_report(run_dir)
    print(page)
    print(md)
    return EXIT_OK


def cmd_grade(args) -> int:
    task_dir = Path(args.task_dir).resolve()
    answers = Path(args.answers) if args.answers else find_data_dir(task_dir).parent / "private" / "answers.csv"
    submission = Path(args.submission)
    if submission.is_dir():
        submission = submission / "best" / "submission.csv"
    try:
        task = load_task(task_dir)
        if not answers.is_file():
            raise ScoringError(f"no answers at {answers} (pass --answers)")
        score = grade(task, submission, answers)
    except (TaskError, ScoringError) as e:
        print(f"gome: {e}", file=sys.stderr)
        return EXIT_USAGE
    graded = {"task": task.name, "metric": task.metric, "score": round(score, 5),
              "is_lower_better": task.direction == "minimize", "submission": str(submission)}
    if args.json:
        print(json.dumps(graded))
    else:
        better = "lower" if graded["is_lower_better"] else "higher"
        rows = [("task", task.name), ("metric", f"{task.metric} ({better} is better)"), ("score", f"{score:.5g}"),
                ("submission", str(submission))]
        print("\n".join(f"{k:<11}{v}" for k, v in rows))
    return EXIT_OK


def cmd_tasks(args) -> int:
    from gome.evals.suite.build import SuiteError, build_suite, suite_table
    from gome.evals.suite.catalog import TASKS

    if args.tasks_command == "list" and args.suite:
        print(suite_table(args.suite), end="")
        return EXIT_OK
    if args.tasks_command == "list":
        print(f"{'TASK':16} {'KIND':10} {'MODALITY':8} {'METRIC':9} SOURCE")
        for s in TASKS:
            print(f"{s.name:16} {s.kind:10} {s.modality:8} {s.metric:9} {s.source}")
        return EXIT_OK
    try:
        build_suite(args.out, args.names or None, leaderboard=not args.no_leaderboard, record=args.record,
                    on_task=lambda name, path: print(f"gome: built {name} -> {path}", file=sys.stderr))
    except KeyError as e:
        print(f"gome: {e.args[0]}", file=sys.stderr)
        return EXIT_USAGE
    except ImportError as e:
        print(f"gome: the suite needs its dataset packages: pip install 'gome[suite]' ({e})", file=sys.stderr)
        return EXIT_USAGE
    except SuiteError as e:
        print(f"gome: {e}", file=sys.stderr)
        return EXIT_NO_SUBMISSION
    print(Path(args.out).resolve())
    return EXIT_OK


def main(argv: list[str] | None = None, *, chat_model=None, executor=None) -> int:
    """Entry point. chat_model / executor let embedding code and tests inject their own."""
    args = build_parser().parse_args(argv)
    if args.command == "run":
        return cmd_run(args, chat_model=chat_model, executor=executor)
    if args.command == "resume":
        return cmd_resume(args, chat_model=chat_model, executor=executor)
    if args.command == "doctor":
        return cmd_doctor()
    if args.command == "report":
        return cmd_report(args.run_dir)
    if args.command == "tasks":
        return cmd_tasks(args)
    if args.command == "eval":
        from gome.evals.runner import main as eval_main

        return eval_main(args)
    return cmd_grade(args)


if __name__ == "__main__":
    sys.exit(main())
