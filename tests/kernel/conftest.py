"""Makes the `sparselab` kernelspec findable for the kernel tests.

Set SPARSELAB_KERNEL_BIN to the binary to test (launched as
`BIN kernel --connection-file {connection_file}`). A kernelspec pointing at it is
written under a temporary prefix (`P/share/jupyter/kernels/sparselab`, the layout
of `jupyter kernelspec install --prefix P`) and JUPYTER_PATH points there, so the
tests never touch the user's own kernelspecs. Without the variable, the kernel
tests are skipped.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

KERNEL_BIN = os.environ.get("SPARSELAB_KERNEL_BIN", "")
_PREFIX = Path(tempfile.mkdtemp(prefix="sparselab-kernelspec-"))
_ASSETS = Path(__file__).resolve().parents[2] / "assets" / "kernel"


def _install_kernelspec(prefix: Path, binary: str) -> Path:
    # The real installer, as a user runs it: `sparselab kernel install --prefix P`.
    import subprocess
    r = subprocess.run([binary, "kernel", "install", "--prefix", str(prefix)], capture_output=True, text=True)
    if r.returncode == 0:
        return prefix / "share" / "jupyter" / "kernels" / "sparselab"
    kdir = prefix / "share" / "jupyter" / "kernels" / "sparselab"
    kdir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [str(Path(binary).resolve()), "kernel", "--connection-file", "{connection_file}"],
        "display_name": "sparselab (Rhai)",
        "language": "rhai",
        "interrupt_mode": "message",
        "metadata": {"debugger": False},
    }
    (kdir / "kernel.json").write_text(json.dumps(spec, indent=2) + "\n")
    for logo in ("logo-32x32.png", "logo-64x64.png"):
        if (_ASSETS / logo).exists():
            shutil.copy(_ASSETS / logo, kdir / logo)
    return kdir


if KERNEL_BIN:
    _install_kernelspec(_PREFIX, KERNEL_BIN)
    data = str(_PREFIX / "share" / "jupyter")
    os.environ["JUPYTER_PATH"] = os.pathsep.join(
        p for p in (data, os.environ.get("JUPYTER_PATH", "")) if p
    )
    # Connection files go to the temporary prefix too.
    os.environ["JUPYTER_RUNTIME_DIR"] = str(_PREFIX / "runtime")


def pytest_report_header(config):
    return f"sparselab kernel: {KERNEL_BIN or '(SPARSELAB_KERNEL_BIN unset: kernel tests skipped)'}"


def pytest_unconfigure(config):
    shutil.rmtree(_PREFIX, ignore_errors=True)
