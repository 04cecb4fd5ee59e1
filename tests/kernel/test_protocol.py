"""Protocol behaviour of the sparselab kernel with real jupyter_client clients.

Environment: SPARSELAB_KERNEL_BIN (required, see conftest.py),
SPARSELAB_KERNEL_LONG_CELL (a cell that runs for many seconds unless interrupted;
default `sleep_ms(20000)` for the demo kernel), SPARSELAB_KERNEL_PANIC_CELL (a cell
whose native code panics; the test is skipped without it).
"""
from __future__ import annotations

import os
import time
from queue import Empty

import pytest
from jupyter_client.manager import start_new_kernel
from jupyter_client.session import Session

if not os.environ.get("SPARSELAB_KERNEL_BIN"):
    pytest.skip("SPARSELAB_KERNEL_BIN is not set", allow_module_level=True)

LONG_CELL = os.environ.get(
    "SPARSELAB_KERNEL_LONG_CELL",
    # sparselab: a training run of many minutes; the interrupt must stop it between batches.
    'let d = dataset("synthetic", #{ train: 20000, test: 100 });\n'
    'let n = mlp(d, #{ depth: 4, width: 256 });\n'
    'let r = train(n, d, #{ epochs: 1000, progress: false });',
)
PANIC_CELL = os.environ.get("SPARSELAB_KERNEL_PANIC_CELL", "")
TIMEOUT = 15


@pytest.fixture(scope="module")
def kernel():
    km, kc = start_new_kernel(kernel_name="sparselab", startup_timeout=60)
    yield km, kc
    kc.stop_channels()
    km.shutdown_kernel(now=False)


def drain(kc):
    for get in (kc.get_shell_msg, kc.get_iopub_msg):
        while True:
            try:
                get(timeout=0.2)
            except Empty:
                break


def iopub_until_idle(kc, msg_id, timeout=TIMEOUT):
    """The iopub messages whose parent is msg_id, up to and including its idle."""
    msgs = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            msg = kc.get_iopub_msg(timeout=0.5)
        except Empty:
            continue
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        msgs.append(msg)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return msgs
    raise AssertionError(f"no idle for {msg_id}; got {[m['msg_type'] for m in msgs]}")


def channel_reply(channel, msg_id, timeout=TIMEOUT):
    """The reply to msg_id on a channel, skipping replies to other requests."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            msg = channel.get_msg(timeout=0.5)
        except Empty:
            continue
        if msg["parent_header"].get("msg_id") == msg_id:
            return msg
    raise AssertionError(f"no reply to {msg_id}")


def shell_reply(kc, msg_id, timeout=TIMEOUT):
    return channel_reply(kc.shell_channel, msg_id, timeout)


def execute(kc, code, **kw):
    msg_id = kc.execute(code, **kw)
    reply = shell_reply(kc, msg_id)
    return reply, iopub_until_idle(kc, msg_id)


def assert_alive(kc):
    msg_id = kc.kernel_info()
    reply = shell_reply(kc, msg_id, timeout=5)
    assert reply["content"]["status"] == "ok"
    assert reply["content"]["language_info"]["name"] == "rhai"


def test_bad_signature_is_dropped(kernel):
    _, kc = kernel
    drain(kc)
    forged = Session(key=b"not-the-key", username="mallory")
    msg = forged.send(kc.shell_channel.socket, "execute_request",
                      {"code": "let forged = 1;", "silent": False, "store_history": True,
                       "user_expressions": {}, "allow_stdin": False, "stop_on_error": True})
    with pytest.raises(Empty):
        kc.get_shell_msg(timeout=1.0)
    assert_alive(kc)
    reply, _ = execute(kc, "is_def_var(\"forged\")")
    assert reply["content"]["status"] == "ok"
    assert msg["header"]["msg_id"] != reply["parent_header"]["msg_id"]


def test_malformed_frames_are_dropped(kernel):
    _, kc = kernel
    drain(kc)
    sock = kc.shell_channel.socket
    session = kc.session
    garbage = [b"{not json", b"{}", b"{}", b"{}"]
    sock.send_multipart([b"<IDS|MSG>", session.sign(garbage)] + garbage)  # valid HMAC, bad JSON
    header = session.msg_header("kernel_info_request")
    parts = [session.pack(header), b"{}", b"{}", b"[1, 2]"]  # content not an object
    sock.send_multipart([b"<IDS|MSG>", session.sign(parts)] + parts)
    sock.send_multipart([b"<IDS|MSG>", b"deadbeef", b"{}"])  # too few frames
    sock.send_multipart([b"no delimiter at all"])
    with pytest.raises(Empty):
        kc.get_shell_msg(timeout=1.0)
    assert_alive(kc)


def test_interrupt_long_cell_keeps_state(kernel):
    km, kc = kernel
    drain(kc)
    reply, _ = execute(kc, "let survivor = 41;")
    assert reply["content"]["status"] == "ok"
    msg_id = kc.execute(LONG_CELL)
    # Wait until the cell is running.
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        msg = kc.get_iopub_msg(timeout=TIMEOUT)
        if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "execute_input":
            break
    time.sleep(0.5)
    started = time.monotonic()
    km.interrupt_kernel()  # interrupt_mode "message": interrupt_request on control
    reply = shell_reply(kc, msg_id, timeout=10)
    assert time.monotonic() - started < 5
    assert reply["content"]["status"] == "error"
    outputs = iopub_until_idle(kc, msg_id)
    errors = [m for m in outputs if m["msg_type"] == "error"]
    assert len(errors) == 1, [m["msg_type"] for m in outputs]
    assert errors[0]["content"]["ename"] == "Interrupted", errors[0]["content"]
    reply, outputs = execute(kc, "survivor + 1")
    assert reply["content"]["status"] == "ok"
    results = [m for m in outputs if m["msg_type"] == "execute_result"]
    assert results and results[0]["content"]["data"]["text/plain"] == "42"


def test_busy_idle_wrap_requests(kernel):
    _, kc = kernel
    drain(kc)
    msg_id = kc.kernel_info()
    assert shell_reply(kc, msg_id)["content"]["status"] == "ok"
    msgs = iopub_until_idle(kc, msg_id)
    assert [m["content"].get("execution_state") for m in msgs] == ["busy", "idle"]

    reply, msgs = execute(kc, 'print("out"); 1 + 1')
    kinds = [m["msg_type"] for m in msgs]
    assert kinds[0] == "status" and msgs[0]["content"]["execution_state"] == "busy"
    assert kinds[1] == "execute_input"
    assert kinds[-1] == "status" and msgs[-1]["content"]["execution_state"] == "idle"
    assert "stream" in kinds and "execute_result" in kinds
    assert kinds.index("stream") < kinds.index("execute_result")
    assert reply["content"]["execution_count"] == msgs[1]["content"]["execution_count"]

    for request in (lambda: kc.complete("pri"), lambda: kc.inspect("print"),
                    lambda: kc.is_complete("fn f() {"), lambda: kc.history(hist_access_type="tail", n=2),
                    lambda: kc.comm_info()):
        msg_id = request()
        assert shell_reply(kc, msg_id)["content"]["status"] in ("ok", "incomplete")
        msgs = iopub_until_idle(kc, msg_id)
        assert [m["content"]["execution_state"] for m in msgs] == ["busy", "idle"]


def test_two_displays_arrive_before_reply(kernel):
    _, kc = kernel
    drain(kc)
    msg_id = kc.execute('display("first"); display("second");')
    reply = shell_reply(kc, msg_id)
    assert reply["content"]["status"] == "ok"
    # Outputs are flushed before the reply: they are already waiting on iopub.
    got = []
    while True:
        try:
            msg = kc.get_iopub_msg(timeout=0.2)
        except Empty:
            break
        if msg["parent_header"].get("msg_id") == msg_id:
            got.append(msg)
    displays = [m for m in got if m["msg_type"] == "display_data"]
    assert [d["content"]["data"]["text/plain"] for d in displays] == ["first", "second"]
    assert got[-1]["msg_type"] == "status" and got[-1]["content"]["execution_state"] == "idle"
    for d in displays:
        assert d["header"]["date"] <= reply["header"]["date"]


def test_print_streams_while_cell_runs(kernel):
    _, kc = kernel
    drain(kc)
    code = 'print("early"); let i = 0; while i < 300000 { i += 1; } print("late");'
    msg_id = kc.execute(code)
    first_stream_at = reply_at = None
    deadline = time.monotonic() + TIMEOUT
    while reply_at is None and time.monotonic() < deadline:
        try:
            msg = kc.get_iopub_msg(timeout=0.01)
            if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream":
                first_stream_at = first_stream_at or time.monotonic()
        except Empty:
            pass
        try:
            if kc.get_shell_msg(timeout=0.01)["parent_header"].get("msg_id") == msg_id:
                reply_at = time.monotonic()
        except Empty:
            pass
    assert first_stream_at is not None and first_stream_at < reply_at
    iopub_until_idle(kc, msg_id)


def live_displays(msgs):
    return [m for m in msgs if m["msg_type"] in ("display_data", "update_display_data")
            and "sparselab-live" in str(m["content"]["data"].get("text/html", ""))]


def test_training_progress_is_one_live_display_updated_in_place(kernel):
    """A training cell shows one display (a display_id), updated in place at most
    about once a second and ending complete; no progress on stderr; a note (a
    reused run) on stdout."""
    _, kc = kernel
    drain(kc)
    code = ('let d = dataset("fashion-mnist", #{ subset: "bundled" });\n'
            'let n = mlp(d, #{ depth: 3, width: 1024 });\n'
            'train(n, d, #{ epochs: 5 }).test_acc')
    msg_id = kc.execute(code)
    msgs = iopub_until_idle(kc, msg_id, timeout=120)
    live = live_displays(msgs)
    assert live and live[0]["msg_type"] == "display_data", [m["msg_type"] for m in msgs]
    ids = {m["content"]["transient"]["display_id"] for m in live}
    assert len(ids) == 1, ids
    updates = [m for m in live if m["msg_type"] == "update_display_data"]
    assert len(updates) >= 2, len(updates)
    final = live[-1]["content"]["data"]
    assert 'data-finished="true"' in final["text/html"] and "5/5 epochs" in final["text/plain"], final["text/plain"]
    assert "<img" in final["text/html"], "the curves are drawn"
    # At most about once a second between the first display and the final update.
    from datetime import datetime
    when = lambda d: d if isinstance(d, datetime) else datetime.fromisoformat(str(d).replace("Z", "+00:00"))
    stamps = [when(m["header"]["date"]) for m in live[:-1]]
    gaps = [(b - a).total_seconds() for a, b in zip(stamps, stamps[1:])]
    assert all(g > 0.9 for g in gaps[1:]), gaps
    stderr = [m["content"]["text"] for m in msgs if m["msg_type"] == "stream" and m["content"]["name"] == "stderr"]
    assert not any("epoch" in t for t in stderr), stderr


def test_models_and_runs_display_richly_with_plain_text(kernel):
    """A Model shows its layer table with density bars, a Run its summary and
    learning curves; both keep text/plain."""
    _, kc = kernel
    drain(kc)
    msg_id = kc.execute('let d = dataset("synthetic", #{ train: 256, test: 64 });\n'
                        'let n = mlp(d, #{ depth: 2, width: 16, density: 0.5 });\nn')
    results = [m for m in iopub_until_idle(kc, msg_id) if m["msg_type"] == "execute_result"]
    data = results[0]["content"]["data"]
    assert "sparselab-model" in data["text/html"] and "<table>" in data["text/html"], data["text/html"][:200]
    assert "width:60px" in data["text/html"], "a 0.5 density bar is half of 120 px"
    assert "MLP" in data["text/plain"]
    msg_id = kc.execute('train(n, d, #{ epochs: 2, progress: false })')
    results = [m for m in iopub_until_idle(kc, msg_id, timeout=60) if m["msg_type"] == "execute_result"]
    data = results[0]["content"]["data"]
    assert "sparselab-run" in data["text/html"] and "<img" in data["text/html"]
    assert data["text/plain"].startswith("test_acc ")


def test_a_study_shows_its_pairs_and_running_test_live_and_its_result_richly(kernel):
    """sc_sdc: one live display (kind study) counting runs and pairs with the running
    one-sided test, the run under way inside it; at the end the same p-value as the
    result's test. The result map shows the test line, a chart and tables."""
    _, kc = kernel
    drain(kc)
    code = ('let d = dataset("synthetic", #{ train: 512, test: 128 });\n'
            'let s = sc_sdc(d, #{ depth: 1, max_width: 24, fractions: [0.3, 0.9], seeds: [0, 1], epochs: 2 });\n'
            's')
    msg_id = kc.execute(code)
    msgs = iopub_until_idle(kc, msg_id, timeout=120)
    live = live_displays(msgs)
    assert live and len({m["content"]["transient"]["display_id"] for m in live}) == 1
    htmls = [m["content"]["data"]["text/html"] for m in live]
    assert all('data-kind="study"' in h for h in htmls), htmls[0][:300]
    assert any("sparselab-live-run" in h for h in htmls), "the run under way shows inside the study"
    final = live[-1]["content"]["data"]
    assert 'data-finished="true"' in final["text/html"] and "sparselab-live-run" not in final["text/html"]
    assert "8/8 runs" in final["text/plain"] and "4 pairs" in final["text/plain"], final["text/plain"]
    result = [m for m in msgs if m["msg_type"] == "execute_result"][0]["content"]["data"]
    assert "sparselab-study" in result["text/html"] and "<img" in result["text/html"] and "<table" in result["text/html"]
    drain(kc)
    reply, out = execute(kc, 's.test.p_value')
    p = float([m for m in out if m["msg_type"] == "execute_result"][0]["content"]["data"]["text/plain"])
    assert f"p = {p:.4f}" in final["text/plain"], (p, final["text/plain"])
    assert f"p = {p:.4f}" in result["text/html"]


def test_a_search_shows_scores_best_and_pareto_front_live_and_richly(kernel):
    _, kc = kernel
    drain(kc)
    code = ('let d = dataset("synthetic", #{ train: 512, test: 128 });\n'
            'snas(d, #{ samples: 4, search: "random", depth: 2, width: 16, train: #{ epochs: 1 } })')
    msg_id = kc.execute(code)
    msgs = iopub_until_idle(kc, msg_id, timeout=120)
    live = live_displays(msgs)
    assert live and all('data-kind="search"' in m["content"]["data"]["text/html"] for m in live)
    final = live[-1]["content"]["data"]
    assert "4/4 trials" in final["text/plain"] and "best score" in final["text/plain"], final["text/plain"]
    assert final["text/html"].count("<img") == 2, "score per trial and the Pareto front"
    result = [m for m in msgs if m["msg_type"] == "execute_result"][0]["content"]["data"]
    assert "sparselab-search" in result["text/html"] and result["text/html"].count("<img") == 2


def test_error_aborts_queued_cells(kernel):
    _, kc = kernel
    drain(kc)
    first = kc.execute('let i = 0; while i < 100000 { i += 1; } throw "stop here"')
    second = kc.execute("1 + 1")
    assert shell_reply(kc, first)["content"]["status"] == "error"
    assert shell_reply(kc, second)["content"]["status"] == "aborted"
    assert_alive(kc)


def test_panic_becomes_error_reply(kernel):
    if not PANIC_CELL:
        pytest.skip("SPARSELAB_KERNEL_PANIC_CELL is not set")
    _, kc = kernel
    drain(kc)
    reply, msgs = execute(kc, PANIC_CELL)
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "Panic"
    reply, _ = execute(kc, "survivor")
    assert reply["content"]["status"] == "ok"


def test_heartbeat_echoes(kernel):
    _, kc = kernel
    time.sleep(1.5)
    assert kc.hb_channel.is_beating()


@pytest.mark.parametrize("channel", ["shell", "control"])
def test_shutdown_request_exits_process(channel):
    km, kc = start_new_kernel(kernel_name="sparselab", startup_timeout=60)
    try:
        msg = kc.session.msg("shutdown_request", {"restart": False})
        getattr(kc, f"{channel}_channel").send(msg)
        # start_new_kernel's wait_for_ready resends kernel_info_request every second
        # until one is answered, so on a loaded machine a stale kernel_info_reply can
        # still sit on shell: skip replies to other requests.
        reply = channel_reply(getattr(kc, f"{channel}_channel"), msg["header"]["msg_id"])
        assert reply["parent_header"]["msg_id"] == msg["header"]["msg_id"]
        assert reply["msg_type"] == "shutdown_reply"
        assert reply["content"] == {"status": "ok", "restart": False}
        deadline = time.monotonic() + 5
        while km.is_alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not km.is_alive()
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_nbclient_runs_notebook():
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("fn sq(x) { x * x }\nlet base = 3;"),
        nbformat.v4.new_code_cell('print("base is " + base);\ndisplay(sq(base));\nsq(base) + 1'),
        nbformat.v4.new_code_cell("clear_output();\nprint(\"after clear\");"),
    ]
    client = nbclient.NotebookClient(nb, kernel_name="sparselab", timeout=60)
    client.execute()
    second = nb.cells[1].outputs
    assert [o["output_type"] for o in second] == ["stream", "display_data", "execute_result"]
    assert second[0]["text"] == "base is 3\n"
    assert second[1]["data"]["text/plain"] == "9"
    assert second[2]["data"]["text/plain"] == "10"
    assert [o.get("text") for o in nb.cells[2].outputs] == ["after clear\n"]
