"""Opt-in: notebooks/rust_api.ipynb in the evcxr Rust kernel (compiling sparselab
inside evcxr takes many minutes). Run with:

    cargo install evcxr_jupyter && evcxr_jupyter --install
    export LIBTORCH=$(readlink -f .libtorch) SPARSELAB_TEST_EVCXR=1
    .venv-test/bin/pytest tests/kernel/test_rust_api_notebook.py
"""
from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(os.environ.get("SPARSELAB_TEST_EVCXR") != "1", reason="opt-in: SPARSELAB_TEST_EVCXR=1")
def test_rust_api_notebook_renders_frames_and_charts():
    nb = nbformat.read(ROOT / "notebooks" / "rust_api.ipynb", as_version=4)
    NotebookClient(nb, kernel_name="rust", timeout=3600, resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    mimes = {m for o in outputs if o.output_type in ("display_data", "execute_result") for m in o.get("data", {})}
    assert {"text/html", "image/png"} <= mimes, mimes
