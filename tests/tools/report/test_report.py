"""The report, built from recorded run folders (finished, in progress, crashed), opened in real headless Chromium.

CI installs Debian's chromium and chromium-driver and sets GOME_REQUIRE_BROWSER=1, so the browser checks fail
there rather than skip.
"""

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from gome import RunConfig, run_gome
from gome.tools.report.report import write_report
from tests.fakes.chat import ScriptedChatModel
from tests.fakes.scripts import breast_cancer_replies

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A real 4-step scripted run: a bug, a fix, an improvement, a rejected idea."""
    src = Path(__file__).resolve().parents[3] / "examples" / "breast-cancer"
    task = tmp_path_factory.mktemp("task") / "breast-cancer"
    shutil.copytree(src, task)
    final = run_gome(task, RunConfig(steps=4, select={"reruns": 0}, repair={"rounds": 0}, late_stage=1),
                     out=tmp_path_factory.mktemp("runs"), chat_model=ScriptedChatModel(replies=breast_cancer_replies()))
    return Path(final["run_dir"])


def md_links_resolve(md: Path) -> list[str]:
    """Every relative link and image in report.md points at a file (or an anchor) that exists."""
    text = md.read_text()
    anchors = set(re.findall(r'<a id="([^"]+)"></a>', text))
    broken = []
    for target in re.findall(r"\]\(([^)]+)\)", text):
        if target.startswith(("http://", "https://")):
            continue
        if target.startswith("#"):
            if target[1:] not in anchors:
                broken.append(target)
        elif not (md.parent / target).is_file():
            broken.append(target)
    return broken


def test_finished_run_report_has_every_section(finished_run):
    assert (finished_run / "report.html").is_file()  # written by finalize at the end of the run
    page, md = write_report(finished_run)
    text = md.read_text()
    for needle in ("status: **succeeded**", "## Solution tree", "- [0001](#exp-0001) buggy",
                   "    - [0003](#exp-0003) accepted", "      - [0004](#exp-0004) rejected",
                   "gradient: Standardize the features", "momentum: Use the real target column",
                   "diagnosis (llm): bug: The script crashed with KeyError", "+from sklearn.preprocessing import",
                   "## Success memory", "Diff against the first working draft (0002)", "| diagnose | 4 |",
                   "| execute (scripts) | 4 |", "![score vs step](score_vs_step.png)"):
        assert needle in text, needle
    assert md_links_resolve(md) == []
    html = page.read_text()
    assert "data:image/png;base64," in html and 'id="exp-0004"' in html and 'href="#exp-0003"' in html
    assert "http" not in re.sub(r'href="https?://[^"]*"', "", html).replace("http-equiv", "")  # no network needed


def test_report_of_a_run_in_progress(finished_run, tmp_path):
    run = shutil.copytree(finished_run, tmp_path / "run")
    (run / "experiments/0004/metrics.json").unlink()  # the last step is still running
    info = json.loads((run / "run.json").read_text())
    info.update(status="running", steps=info["steps"][:3])
    for key in ("finished_at", "stopped_by", "message"):
        info.pop(key, None)
    (run / "run.json").write_text(json.dumps(info))
    page, md = write_report(run)
    assert "status: **running**" in md.read_text() and "[0004](#exp-0004) in progress" in md.read_text()
    assert md_links_resolve(md) == []


def test_report_of_a_crashed_run(finished_run, tmp_path):
    run = shutil.copytree(finished_run, tmp_path / "run")
    (run / "crash.txt").write_text("Traceback (most recent call last):\nOSError: disk full\n")
    (run / "usage.jsonl").write_text((run / "usage.jsonl").read_text() + '{"node": "diag')  # a line cut by the crash
    info = json.loads((run / "run.json").read_text())
    info.update(status="crashed", message="OSError: disk full")
    (run / "run.json").write_text(json.dumps(info))
    page, md = write_report(run)
    assert "## Crash" in md.read_text() and "OSError: disk full" in page.read_text()


def browser():
    if not (CHROMIUM and DRIVER):
        message = "Debian packages chromium and chromium-driver are not installed"
        if os.environ.get("GOME_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1200,1600"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(DRIVER), options=opts)


def test_html_loads_in_chromium_without_errors_and_is_not_blank(finished_run, tmp_path):
    import matplotlib.image

    driver = browser()
    try:
        driver.get((finished_run / "report.html").as_uri())
        assert driver.title == "gome report"
        errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
        assert errors == []
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.complete, i.naturalWidth])")
        assert len(images) == 2 and all(done and width > 0 for done, width in images)
        driver.find_element("css selector", 'a[href="#exp-0003"]').click()  # the tree navigates to the step
        assert driver.execute_script("return location.hash") == "#exp-0003"
        shot = tmp_path / "report.png"
        driver.save_screenshot(str(shot))
    finally:
        driver.quit()
    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[0] > 500 and pixels[..., :3].std() > 0.05  # text and plots, not an empty page


def test_text_an_llm_or_a_script_wrote_never_becomes_html(finished_run, tmp_path):
    """Hypotheses, decisions, diagnoses, code and logs show as text in report.html: escaped, or inside a fenced
    block no line of them can close; an image URL in them fetches nothing."""
    from html.parser import HTMLParser

    run = shutil.copytree(finished_run, tmp_path / "run")
    record = json.loads((run / "experiments/0004/metrics.json").read_text())
    record["hypothesis"] = "<script>alert(1)</script> ![pixel](https://example.com/p.png)"
    record["decision"] = '<img src=x onerror="alert(2)">'
    record["diagnosis"]["summary"] = "</p><script>alert(3)</script>"
    record["gradient"]["hypothesis"]["change"] = "line one\n<script>alert(4)</script>"
    (run / "experiments/0004/metrics.json").write_text(json.dumps(record))
    main = run / "experiments/0003/main.py"
    main.write_text(main.read_text() + '"""\n```\n<script>alert(5)</script>\n````\n"""\n')
    (run / "crash.txt").write_text("Traceback (most recent call last):\n```\n<script>alert(1)</script>\n")
    page, md = write_report(run)
    text = page.read_text()

    class Tags(HTMLParser):
        def __init__(self):
            super().__init__()
            self.tags = []

        def handle_starttag(self, tag, attrs):
            self.tags.append((tag, dict(attrs)))

    parser = Tags()
    parser.feed(text)
    assert [t for t, _ in parser.tags if t == "script"] == []
    images = [a["src"] for t, a in parser.tags if t == "img"]
    assert len(images) == 2 and all(src.startswith("data:image/png;base64,") for src in images)
    assert not any("onerror" in a for _, a in parser.tags)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text  # the hypothesis and the crash log, as text
    for n in (2, 3, 4, 5):
        assert f"alert({n})" in text, n
    assert "0004: &lt;script&gt;alert(1)&lt;/script&gt;" in md.read_text()  # Markdown renderers show it as text
    assert md_links_resolve(md) == []
