"""Opt-in: notebooks/rust_api.ipynb in the stock evcxr kernel, through the
"Rust (sparselab)" kernelspec, twice: a first session (which compiles sparselab and
its dependencies into the build folder unless an earlier run left them there) and a
second session (which should compile only its cells). Run with `.ci/test-evcxr`
(`--cold` empties the build folders first); the timings are printed and written to
target/evcxr-test/timings.json.
"""
from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "target" / "evcxr-test"


def run_session():
    nb = nbformat.read(ROOT / "notebooks" / "rust_api.ipynb", as_version=4)
    times = []
    client = NotebookClient(nb, kernel_name="sparselab-rust", timeout=3600, resources={"metadata": {"path": str(ROOT / "notebooks")}})
    with client.setup_kernel():
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            t0 = time.monotonic()
            client.execute_cell(cell, i)
            times.append(round(time.monotonic() - t0, 1))
    return nb, times


@pytest.mark.skipif(os.environ.get("SPARSELAB_TEST_EVCXR") != "1", reason="opt-in: .ci/test-evcxr")
def test_rust_api_notebook_renders_frames_and_charts_and_a_second_session_is_fast():
    OUT.mkdir(parents=True, exist_ok=True)
    sessions = []
    for n in (1, 2):
        t0 = time.monotonic()
        nb, cells = run_session()
        sessions.append({"session": n, "seconds": round(time.monotonic() - t0, 1), "cells": cells})
        print(f"session {n}: {sessions[-1]['seconds']} s; per code cell {cells}", flush=True)
        nbformat.write(nb, OUT / f"rust_api-session{n}.ipynb")
        outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
        errors = [o for o in outputs if o.output_type == "error"]
        assert not errors, errors
        shown = [o for o in outputs if o.output_type in ("display_data", "execute_result")]
        html = [o["data"]["text/html"] for o in shown if "text/html" in o.get("data", {})]
        pngs = [base64.b64decode(o["data"]["image/png"]) for o in shown if "image/png" in o.get("data", {})]
        # The history of 2 epochs as a table: a header and two rows.
        assert any("<table" in h and h.count("<tr") == 3 for h in html), html
        assert pngs and all(p[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
        text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
        assert "test_acc " in text and "epochs 2" in text, text
        # notebook::rhai: the synthetic dataset's train size, as asked for.
        assert "\n100\n" in "\n" + text, text
    (OUT / "timings.json").write_text(json.dumps(sessions, indent=1) + "\n")
