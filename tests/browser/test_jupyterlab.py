"""The Rhai notebooks in a real JupyterLab, driven through Debian's chromium by
Playwright, as a researcher would use them (.ci/test-browser runs this).

For each Rhai notebook: open it, run all, and check that tables render as tables,
charts as images with a non-zero natural size, that the live training display is
redrawn at least twice while a cell trains and ends complete, and that no progress
text is painted as an error. Then, in a scratch notebook: interrupting a long
training cell stops it within seconds and the next cell still sees earlier
variables; Tab completes `kendall_t` to `kendall_tau`; Shift-Tab shows the docs of
`train`. Screenshots go to $SPARSELAB_BROWSER_OUT (default target/browser-test).
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from playwright.sync_api import sync_playwright

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.abspath(os.environ.get("SPARSELAB_BROWSER_OUT", os.path.join(ROOT, "target", "browser-test")))
CHROMIUM = os.environ.get("SPARSELAB_CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
NOTEBOOKS = ["quickstart", "sc_sdc", "snas", "methods"]
TOKEN = "sparselab-browser-test"
# The notebook on show (other panels are hidden, not removed).
NB = ".jp-NotebookPanel:not(.lm-mod-hidden)"
# Progress and notes the kernel writes; none of it may be styled as an error.
PROGRESS_WORDS = ["epoch ", "reused ", "train_loss", "s/epoch", "ETA"]

failures = []


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what, flush=True)
    if not cond:
        failures.append(what)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_lab(root_dir, env):
    port = free_port()
    workspaces = tempfile.mkdtemp(prefix="sparselab-lab-workspaces-")
    log = open(os.path.join(OUT, "jupyterlab.log"), "w")
    lab = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={root_dir}", "--ServerApp.disable_check_xsrf=True", "--allow-root", f"--LabApp.workspaces_dir={workspaces}",
         "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=1)
            return lab, url
        except Exception:
            time.sleep(0.5)
    lab.kill()
    raise SystemExit("JupyterLab did not start; see " + os.path.join(OUT, "jupyterlab.log"))


# Counts redraws of live displays and remembers their states (in the page).
OBSERVER = """
window.__live = { redraws: 0, states: [] };
new MutationObserver(muts => {
  for (const m of muts) for (const n of m.addedNodes) {
    if (!(n instanceof Element)) continue;
    const el = n.matches('.sparselab-live') ? n : n.querySelector('.sparselab-live');
    if (el) { window.__live.redraws++; window.__live.states.push(el.dataset.done + '/' + el.dataset.total + ':' + el.dataset.finished); }
  }
}).observe(document.body, { childList: true, subtree: true });
"""


def kernel_ready(url, name, timeout_s=60):
    """Waits until the server has exactly one session for the notebook, its kernel idle."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            sessions = json.load(urllib.request.urlopen(f"{url}/api/sessions?token={TOKEN}", timeout=2))
            mine = [x for x in sessions if x.get("path", "").endswith(f"{name}.ipynb")]
            if len(mine) == 1 and mine[0]["kernel"]["execution_state"] == "idle":
                return
        except Exception:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{name}: no single idle kernel after {timeout_s} s")


def open_notebook(page, url, name):
    # A new workspace of its own (workspaces live in a fresh folder): only this
    # notebook opens, once, with one kernel.
    page.goto(f"{url}/lab/workspaces/test-{name}/tree/{name}.ipynb?token={TOKEN}")
    page.wait_for_selector(f"{NB} .jp-Cell", timeout=60000)
    # The kernel is up when the toolbar's status says idle.
    page.wait_for_function("() => !!document.querySelector('.jp-Notebook') && [...document.querySelectorAll('.jp-Toolbar-kernelStatus, .jp-KernelStatus, [data-status]')].some(e => /idle/i.test(e.getAttribute('data-status') || e.textContent || ''))", timeout=60000)
    kernel_ready(url, name)
    page.wait_for_timeout(1000)


def wait_idle(page, timeout_s):
    """Waits until no code cell is queued or running."""
    page.wait_for_function(
        f"() => {{ const p = [...document.querySelectorAll('{NB} .jp-CodeCell .jp-InputPrompt')].map(e => e.textContent.trim());"
        " return p.length > 0 && p.every(t => !t.includes('*')); }",
        timeout=timeout_s * 1000)


MENUS = {"Run All Cells": "Run", "Interrupt Kernel": "Kernel", "Save Notebook": "File"}


def command(page, name):
    """Runs a JupyterLab command from the menu bar, as a user would."""
    page.keyboard.press("Escape")
    page.locator(".lm-MenuBar-itemLabel", has_text=MENUS[name]).first.click()
    page.locator(".lm-Menu-itemLabel", has_text=name).first.click()


def dismiss_news(page):
    """Answers JupyterLab's one-time question about news, which covers the corner."""
    no = page.locator(".jp-Notification-Toast-Close, .jp-toast-button:has-text('No')")
    if no.count():
        try:
            no.first.click(timeout=2000)
        except Exception:
            pass


def output_facts(page):
    return page.evaluate("""() => {
      const nb = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
      const outs = [...nb.querySelectorAll('.jp-OutputArea-output')];
      const err = outs.filter(o => o.getAttribute('data-mime-type') === 'application/vnd.jupyter.stderr').map(o => o.textContent);
      const imgs = [...nb.querySelectorAll('.jp-OutputArea-output img')].map(i => [i.naturalWidth, i.naturalHeight]);
      const tables = nb.querySelectorAll('.jp-OutputArea-output table').length;
      const errors = [...nb.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"]')].map(o => o.textContent);
      const live = [...nb.querySelectorAll('.sparselab-live')].map(e => e.dataset.finished);
      const kinds = [...nb.querySelectorAll('.sparselab-live')].map(e => e.dataset.kind);
      const rich = [...nb.querySelectorAll('.sparselab-study, .sparselab-search')].map(e => [e.className, e.querySelectorAll('img').length]);
      return { stderr: err, imgs, tables, errors, live, kinds, rich };
    }""")


def run_notebook(page, url, name):
    open_notebook(page, url, name)
    page.evaluate(OBSERVER)
    started = time.time()
    done = f"() => {{ const p = [...document.querySelectorAll('{NB} .jp-CodeCell .jp-InputPrompt')].map(e => e.textContent.trim());" \
           " return p.length > 0 && p.every(t => /\\[\\d+\\]/.test(t)); }"
    for attempt in range(3):
        command(page, "Run All Cells")
        try:
            # Every code cell has run (a number in its prompt), not merely none running.
            page.wait_for_function(done, timeout=(300 if attempt == 2 else 20) * 1000)
            break
        except Exception:
            started_any = page.evaluate(f"() => [...document.querySelectorAll('{NB} .jp-CodeCell .jp-InputPrompt')].some(e => /\\[(\\*|\\d+)\\]/.test(e.textContent))")
            if started_any:
                page.wait_for_function(done, timeout=300 * 1000)
                break
            page.screenshot(path=os.path.join(OUT, f"{name}-not-started-{attempt + 1}.png"))
            print(f"{name}: Run All did not start (attempt {attempt + 1}); again", flush=True)
    took = time.time() - started
    facts = output_facts(page)
    live = page.evaluate("() => window.__live")
    print(f"{name}: ran in {took:.1f} s; {facts['tables']} tables, {len(facts['imgs'])} images, live redraws {live['redraws']}", flush=True)
    check(not facts["errors"], f"{name}: no cell failed {facts['errors'][:1]}")
    check(facts["tables"] > 0, f"{name}: tables render as HTML tables")
    check(len(facts["imgs"]) > 0 and all(w > 0 and h > 0 for w, h in facts["imgs"]), f"{name}: charts render as images with non-zero natural size {facts['imgs'][:4]}")
    progress_as_error = [t for t in facts["stderr"] if any(w in t for w in PROGRESS_WORDS)]
    check(not progress_as_error, f"{name}: no progress text styled as an error {progress_as_error[:1]}")
    check(live["redraws"] >= 3, f"{name}: the live display was drawn and updated at least twice ({live['redraws']} draws: {live['states'][:6]})")
    check(facts["live"] and all(f == "true" for f in facts["live"]), f"{name}: every live display ends complete {facts['live']}")
    # A study and a search show one display for all their runs, and their result richly.
    for nb_name, kind, cls in (("sc_sdc", "study", "sparselab-study"), ("snas", "search", "sparselab-search")):
        if name == nb_name:
            check(kind in facts["kinds"], f"{name}: the {kind} has its own live display {facts['kinds']}")
            check(any(c == cls and n > 0 for c, n in facts["rich"]), f"{name}: the result shows as {cls} with charts {facts['rich']}")
    dismiss_news(page)
    page.screenshot(path=os.path.join(OUT, f"{name}.png"))
    # The live display and the chart after it, for the README.
    page.locator(f"{NB} .sparselab-live").first.scroll_into_view_if_needed()
    page.locator(f"{NB} .sparselab-live").first.evaluate("e => e.closest('.jp-Cell').scrollIntoView({block: 'start'})")
    page.wait_for_timeout(300)
    page.screenshot(path=os.path.join(OUT, f"{name}-live.png"))
    command(page, "Save Notebook")
    page.wait_for_timeout(500)
    return took


def scratch_notebook(path):
    cell = lambda src: {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": src}
    nb = {
        "cells": [
            cell("let x = 41;"),
            cell('let d = dataset("fashion-mnist", #{ subset: "bundled" });\nlet n = mlp(d, #{ depth: 3, width: 512 });\ntrain(n, d, #{ epochs: 1000 })'),
            cell("x + 1"),
            cell(""),
        ],
        "metadata": {"kernelspec": {"display_name": "sparselab (Rhai)", "language": "rhai", "name": "sparselab"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    with open(path, "w") as f:
        json.dump(nb, f)


def run_cell(page, i):
    """Runs code cell i from its editor with Shift+Enter and waits until the kernel
    has taken it (its prompt shows * or a number); presses again if the first key
    press was lost while the page settled."""
    prompt = f"() => /\\[(\\*|\\d+)\\]/.test(document.querySelectorAll('{NB} .jp-Cell')[{i}].querySelector('.jp-InputPrompt').textContent)"
    for attempt in range(3):
        cell_editor(page, i).click()
        page.keyboard.press("Shift+Enter")
        try:
            page.wait_for_function(prompt, timeout=10000)
            return
        except Exception:
            if attempt == 2:
                raise


def cell_editor(page, i):
    return page.locator(f"{NB} .jp-Cell").nth(i).locator(".cm-content")


def interactive(page, url):
    open_notebook(page, url, "scratch")
    run_cell(page, 0)
    wait_idle(page, 60)
    run_cell(page, 1)
    page.wait_for_function("() => document.querySelectorAll('.sparselab-live').length > 0", timeout=60000)
    page.wait_for_timeout(2000)
    t0 = time.time()
    command(page, "Interrupt Kernel")
    wait_idle(page, 60)
    stopped = time.time() - t0
    check(stopped < 10, f"interrupt stops a 1000-epoch training cell within seconds ({stopped:.1f} s)")
    run_cell(page, 2)
    wait_idle(page, 60)
    result = page.locator(f"{NB} .jp-Cell").nth(2).locator(".jp-OutputArea-output").all_text_contents()
    check(any("42" in r for r in result), f"the next cell still sees earlier variables: x + 1 = {result}")
    page.screenshot(path=os.path.join(OUT, "interrupt.png"), full_page=True)

    # Tab completion in the empty last cell.
    ed = cell_editor(page, 3)
    ed.click()
    page.keyboard.type("kendall_t")
    page.keyboard.press("Tab")
    page.wait_for_timeout(1500)
    text = ed.inner_text()
    items = page.locator(".jp-Completer-item").all_text_contents() if page.locator(".jp-Completer").is_visible() else []
    check("kendall_tau" in text or any("kendall_tau" in i for i in items), f"Tab offers kendall_tau for kendall_t (cell {text!r}, completer {items[:5]})")
    page.keyboard.press("Escape")
    page.screenshot(path=os.path.join(OUT, "completion.png"))

    # Shift-Tab inside train( shows its docs.
    ed.click()
    page.keyboard.press("Control+a")
    page.keyboard.type("train(")
    page.keyboard.press("Shift+Tab")
    page.wait_for_function("() => { const t = document.querySelector('.jp-Tooltip'); return t && t.innerText.includes('train'); }", timeout=15000)
    tip = page.locator(".jp-Tooltip").inner_text()
    check("train" in tip and ("epochs" in tip or "optimizer" in tip), f"Shift-Tab shows the docs of train ({tip[:80]!r})")
    page.screenshot(path=os.path.join(OUT, "tooltip.png"))


def main():
    os.makedirs(OUT, exist_ok=True)
    work = tempfile.mkdtemp(prefix="sparselab-browser-")
    for n in NOTEBOOKS:
        shutil.copy(os.path.join(ROOT, "notebooks", f"{n}.ipynb"), work)
    scratch_notebook(os.path.join(work, "scratch.ipynb"))
    env = dict(os.environ)
    lab, url = start_lab(work, env)
    timings = {}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
            for n in NOTEBOOKS:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                timings[n] = run_notebook(page, url, n)
                page.close()
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            interactive(page, url)
            browser.close()
    finally:
        lab.terminate()
        try:
            lab.wait(timeout=20)
        except subprocess.TimeoutExpired:
            lab.kill()
        for n in NOTEBOOKS:
            done = os.path.join(work, f"{n}.ipynb")
            if os.path.exists(done):
                shutil.copy(done, os.path.join(OUT, f"{n}.ipynb"))
        shutil.rmtree(work, ignore_errors=True)
    print("timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
    print(f"screenshots in {OUT}")
    if failures:
        print(f"{len(failures)} check(s) failed:\n  " + "\n  ".join(failures))
        sys.exit(1)
    print("all browser checks passed")


if __name__ == "__main__":
    main()
