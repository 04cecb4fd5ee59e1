"""The Jupyter conformance suite (jupyter_kernel_test) against the sparselab kernel.

Only functions of sparselab's script API are used: `print`, `display(x)`,
`eprint(x)`, `clear_output()`, `throw`, arithmetic. Environment overrides:
SPARSELAB_KERNEL_INSPECT (name to inspect, default "print"; e.g. "mlp").
"""
from __future__ import annotations

import os
import unittest

import jupyter_kernel_test
import pytest

if not os.environ.get("SPARSELAB_KERNEL_BIN"):
    pytest.skip("SPARSELAB_KERNEL_BIN is not set", allow_module_level=True)


class SparselabKernelTests(jupyter_kernel_test.KernelTests):
    kernel_name = "sparselab"
    language_name = "rhai"
    file_extension = ".rhai"

    code_hello_world = 'print("hello, world")'
    code_stderr = 'eprint("to stderr")'

    # Names declared in the code being completed are offered, so these do not
    # depend on the size of the host's API.
    completion_samples = [
        {"text": "let zebra_count = 1; zebra_c", "matches": ["zebra_count"]},
        {"text": "let zz_a = 1; let zz_b = 2; zz_", "matches": ["zz_a", "zz_b"]},
        {"text": "fn yak_shave(x) { x } yak_s", "matches": ["yak_shave"]},
    ]

    complete_code_samples = ["1 + 2", "let x = 5;", "fn f(x) { x * 2 }", 'print("hello")', ""]
    incomplete_code_samples = [
        "fn f(x) {",
        "let a = [1, 2,",
        'print("abc',
        "if true {\n    1",
        "let cfg = #{ epochs: 3,",
    ]
    invalid_code_samples = ["let = 5;", "1 2", "}", "let x = ;"]

    # No pager payloads: docs come through inspect_request instead.
    code_page_something = ""

    code_generate_error = 'throw "boom"'

    code_execute_result = [
        {"code": "1 + 2 * 3", "result": "7"},
        {"code": "6 * 7", "result": "42"},
        {"code": "10 / 4", "result": "2"},
    ]

    code_display_data = [
        {"code": 'display("shown")', "mime": "text/plain"},
        # evcxr's convention, printed by a cell, becomes display_data.
        {
            "code": 'print("EVCXR_BEGIN_CONTENT text/html\\n<b>bold</b>\\nEVCXR_END_CONTENT")',
            "mime": "text/html",
        },
    ]

    supported_history_operations = ("tail", "range", "search")
    code_history_pattern = "1 + 2*"

    code_inspect_sample = os.environ.get("SPARSELAB_KERNEL_INSPECT", "print")

    code_clear_output = "clear_output()"


if __name__ == "__main__":
    unittest.main()
