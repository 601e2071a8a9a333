"""The course notebooks as a reader sees them: each one run with "Run All" in JupyterLab and
Chromium, with no error but where a cell says it raises, every live view's status line whole
(not cut off, even side by side), and a screenshot of the page for a look.

CI runs the live-views lesson; ``BPFNB_BROWSER_NOTEBOOKS=all`` runs every lesson.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nbformat
import pytest

from tests.browser.conftest import ARTIFACTS, ENABLED, open_notebook

pytestmark = pytest.mark.skipif(not ENABLED, reason="browser test: set BPFNB_BROWSER=1")

COURSE = Path(__file__).parents[2] / "notebooks"
LESSONS = sorted(p.name for p in COURSE.glob("*.ipynb"))
CHOSEN = LESSONS if os.environ.get("BPFNB_BROWSER_NOTEBOOKS") == "all" else ["04-live-views.ipynb"]

# "Run All", awaited: the command's promise settles when every cell has run.
RUN_ALL = "async () => { await window.jupyterapp.commands.execute('notebook:run-all-cells'); }"
ERRORS = """() => Array.from(document.querySelectorAll('.jp-CodeCell')).map((cell, i) => [
    i, cell.querySelector('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')
        !== null && cell.innerText.includes('Error')
]).filter(([i, bad]) => bad).map(([i]) => i)"""
CUT_OFF = """() => Array.from(document.querySelectorAll('.bpfnb-live-view .bpfnb-status'))
    .filter(s => s.scrollWidth > s.clientWidth + 1 || s.scrollHeight > s.clientHeight + 1)
    .map(s => s.innerText)"""


@pytest.mark.parametrize("name", CHOSEN)
def test_a_lesson_runs_and_reads_well(lab: str, browser, tmp_path: Path, name: str) -> None:
    shutil.copy(COURSE / name, tmp_path / name)  # running it must not change the course
    for support in COURSE.glob("*.cfg"):
        shutil.copy(support, tmp_path / support.name)
    notebook = nbformat.read(COURSE / name, as_version=4)
    code_cells = [c for c in notebook.cells if c.cell_type == "code"]
    raising = {
        i for i, c in enumerate(code_cells) if "raises-exception" in c.metadata.get("tags", [])
    }
    page = open_notebook(browser, lab.format(name=name))
    shot = ARTIFACTS / f"course-{name.removesuffix('.ipynb')}.png"
    try:
        page.evaluate(RUN_ALL)
        page.wait_for_timeout(1500)  # a last refresh of the live views
        errors = set(page.evaluate(ERRORS)) - raising
        cut_off = page.evaluate(CUT_OFF)
        page.screenshot(path=str(shot))
        outputs = page.locator(".jp-CodeCell .jp-OutputArea")
        for i in range(outputs.count()):  # each cell's output, for a look at what it shows
            if outputs.nth(i).inner_text().strip() or outputs.nth(i).locator("img").count():
                outputs.nth(i).screenshot(path=str(shot.with_stem(f"{shot.stem}-cell{i}")))
    except Exception:
        page.screenshot(path=str(shot.with_stem(shot.stem + "-failure")), full_page=True)
        raise
    assert not errors, f"cells {sorted(errors)} of {name} raised"
    assert not cut_off, f"status lines cut off in {name}: {cut_off}"
