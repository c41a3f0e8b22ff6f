"""The panel's channel, spoken as JupyterLab speaks it, against a real kernel (no browser).

The panel asks ``comm_info`` for the ``mlsecops_jupyter`` target, attaches to
the comm listed there (or opens one of its own), sends ``sync_request`` and
reads a snapshot, then receives every new record as an ``event``.
"""

from __future__ import annotations

import queue
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_kernel import Kernel, kernel_env, start_kernel

from mlsecops_jupyter.channel import TARGET

TIMEOUT = 30


class Panel:
    """A frontend's side of the channel, through the kernel client's own session."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.client = kernel.client

    def load_ext(self) -> None:
        reply, _ = self.execute("%load_ext mlsecops_jupyter")
        assert reply["status"] == "ok"

    def comm_info(self) -> dict[str, Any]:
        msg_id = self.client.comm_info(target_name=TARGET)
        reply = self._shell_reply(msg_id)
        comms: dict[str, Any] = reply["content"]["comms"]
        return comms

    def open_comm(self, data: dict[str, Any] | None = None) -> str:
        comm_id = uuid.uuid4().hex
        self._send("comm_open", {"comm_id": comm_id, "target_name": TARGET, "data": data or {}})
        return comm_id

    def send(self, comm_id: str, data: dict[str, Any]) -> None:
        self._send("comm_msg", {"comm_id": comm_id, "data": data})

    def close_comm(self, comm_id: str) -> None:
        self._send("comm_close", {"comm_id": comm_id, "data": {}})

    def receive(self, comm_id: str, kind: str) -> dict[str, Any]:
        """The next comm message of ``kind`` on ``comm_id`` (skipping everything else)."""
        while True:
            message = self.client.get_iopub_msg(timeout=TIMEOUT)
            content = message["content"]
            if (
                message["msg_type"] == "comm_msg"
                and content["comm_id"] == comm_id
                and content["data"].get("type") == kind
            ):
                data: dict[str, Any] = content["data"]
                return data

    def execute(self, code: str) -> tuple[dict[str, Any], list[tuple[str, str, dict[str, Any]]]]:
        """Run a cell; returns the reply and the comm messages (type, comm id, data) it caused."""
        seen: list[tuple[str, str, dict[str, Any]]] = []

        def collect(message: dict[str, Any]) -> None:
            if message["msg_type"] in ("comm_msg", "comm_close"):
                content = message["content"]
                seen.append((message["msg_type"], content["comm_id"], content["data"]))

        reply = self.client.execute_interactive(code, timeout=60, output_hook=collect)
        return reply["content"], seen

    def _send(self, msg_type: str, content: dict[str, Any]) -> None:
        message = self.client.session.msg(msg_type, content)
        self.client.shell_channel.send(message)

    def _shell_reply(self, msg_id: str) -> dict[str, Any]:
        while True:
            reply: dict[str, Any] = self.client.get_shell_msg(timeout=TIMEOUT)
            if reply["parent_header"].get("msg_id") == msg_id:
                return reply


def events_on(seen: list[tuple[str, str, dict[str, Any]]], comm_id: str) -> list[dict[str, Any]]:
    return [
        data["record"]
        for msg_type, cid, data in seen
        if msg_type == "comm_msg" and cid == comm_id and data.get("type") == "event"
    ]


@pytest.fixture
def panel(tmp_path: Path) -> Iterator[Panel]:
    running = start_kernel(tmp_path, kernel_env(tmp_path))
    (tmp_path / "plans.csv").write_text("plan,price\nbasic,10\npro,30\n")
    try:
        yield Panel(running)
    finally:
        running.client.stop_channels()
        if running.manager.is_alive():
            running.manager.shutdown_kernel(now=True)


@pytest.mark.kernel
def test_the_channel_exists_only_while_the_extension_is_loaded(panel: Panel) -> None:
    assert panel.comm_info() == {}

    panel.load_ext()
    [(beacon, info)] = panel.comm_info().items()
    assert info == {"target_name": TARGET}

    reply, seen = panel.execute("%unload_ext mlsecops_jupyter")
    assert reply["status"] == "ok"
    # The panels attached to it hear that the guardrails are off, from the
    # session's last event; no comm_close, which JupyterLab logs as an error in
    # every kernel connection that does not hold the comm.
    assert [r["kind"] for r in events_on(seen, beacon)] == ["session.ended"]
    assert [m for m in seen if m[0] == "comm_close"] == []
    assert panel.comm_info() == {}

    # The target is gone too: a comm opened now is closed by the kernel.
    late = panel.open_comm({"v": 1, "type": "sync_request"})
    while True:
        message = panel.client.get_iopub_msg(timeout=TIMEOUT)
        if message["msg_type"] == "comm_close" and message["content"]["comm_id"] == late:
            break
        assert message["msg_type"] != "comm_msg", message


@pytest.mark.kernel
def test_a_panel_attached_to_the_listed_comm_gets_a_snapshot_then_events(
    panel: Panel, tmp_path: Path
) -> None:
    panel.load_ext()
    [comm_id] = panel.comm_info()

    panel.send(comm_id, {"v": 1, "type": "sync_request", "request_id": "r1"})
    snapshot = panel.receive(comm_id, "snapshot")

    assert snapshot["v"] == 1
    assert snapshot["request_id"] == "r1"
    assert snapshot["identity"]["kernel_id"] == panel.kernel.manager.kernel_id
    assert snapshot["identity"]["notebook"] == "projects/churn/explore.ipynb"
    assert snapshot["guardrails"]["on"] is True
    assert set(snapshot["guardrails"]["names"]) == {"pii", "pickles", "datasets"}
    assert snapshot["audit"]["status"] == "ok"
    assert snapshot["audit"]["path"] == str(tmp_path / "audit" / "audit.sqlite3")
    assert snapshot["policy"]["source"] is None  # no policy file: built-in defaults
    assert [r["kind"] for r in snapshot["records"]] == ["session.started"]
    assert snapshot["records"][0]["schema"] == "mlsecops.event/v1"

    reply, seen = panel.execute("import pandas as pd\nplans = pd.read_csv('plans.csv')")
    assert reply["status"] == "ok"
    [read] = [r for r in events_on(seen, comm_id) if r["kind"] == "dataset.read"]
    assert read["data"]["uri"] == (tmp_path / "plans.csv").as_uri()
    assert read["data"]["reader"] == "pandas.read_csv"
    assert read["cell"] is not None

    # The next snapshot holds what happened since.
    panel.send(comm_id, {"v": 1, "type": "sync_request"})
    later = panel.receive(comm_id, "snapshot")
    assert read["id"] in [r["id"] for r in later["records"]]


CONTACTS = """
import pandas as pd
from faker import Faker
fake = Faker("en_US")
fake.seed_instance(7)
contacts = pd.DataFrame({
    "email": [fake.email() for _ in range(200)],
    "phone": [fake.phone_number() for _ in range(200)],
})
"""


@pytest.mark.kernel
def test_the_snapshot_lists_the_reviews_kept_in_the_policy_file(
    panel: Panel, tmp_path: Path
) -> None:
    """A review written to the policy file in an earlier session is in force, and the
    panel is told so in the snapshot, not by a ``review.pii`` event nobody made."""
    policy_file = tmp_path / "mlsecops.toml"
    policy_file.write_text(
        "[[pii.reviewed]]\n"
        'column = "email"\n'
        'variable = "contacts"\n'
        'verdict = "false_positive"\n'
        'reason = "synthetic test addresses"\n'
    )
    panel.load_ext()
    [comm_id] = panel.comm_info()
    reply, seen = panel.execute(CONTACTS)
    assert reply["status"] == "ok"
    [found] = [r for r in events_on(seen, comm_id) if r["kind"] == "pii.found"]
    assert [f["column"] for f in found["data"]["findings"]] == ["phone"]
    # A review for this session only: an event of its own, not a policy review.
    reply, seen = panel.execute(
        '%mlsecops review phone --variable contacts --accepted --reason "consented"'
    )
    assert reply["status"] == "ok"
    assert [r["kind"] for r in events_on(seen, comm_id)] == ["review.pii"]

    panel.send(comm_id, {"v": 1, "type": "sync_request"})
    snapshot = panel.receive(comm_id, "snapshot")

    assert snapshot["policy_reviews"] == [
        {
            "column": "email",
            "variable": "contacts",
            "verdict": "false_positive",
            "scope": "variable",
            "reason": "synthetic test addresses",
            "policy_path": str(policy_file),
        }
    ]
    reviewed = [r["data"]["column"] for r in snapshot["records"] if r["kind"] == "review.pii"]
    assert reviewed == ["phone"]


@pytest.mark.kernel
def test_every_open_comm_gets_each_event_and_a_closed_one_is_dropped(panel: Panel) -> None:
    panel.load_ext()
    [beacon] = panel.comm_info()
    # Two more frontends open their own comms; the first asks for a snapshot on open.
    first = panel.open_comm({"v": 1, "type": "sync_request"})
    assert panel.receive(first, "snapshot")["guardrails"]["on"] is True
    second = panel.open_comm()
    assert set(panel.comm_info()) == {beacon, first, second}

    _, seen = panel.execute("%mlsecops scan plans.csv")
    for comm_id in (beacon, first, second):
        assert [r["kind"] for r in events_on(seen, comm_id)] == ["pickle.file_scanned"]

    panel.close_comm(first)
    _, seen = panel.execute("%mlsecops scan plans.csv")
    assert events_on(seen, first) == []
    assert len(events_on(seen, second)) == 1
    assert len(events_on(seen, beacon)) == 1
    assert set(panel.comm_info()) == {beacon, second}


@pytest.mark.kernel
def test_a_frontend_closing_the_listed_comm_does_not_cut_off_the_other_panels(
    panel: Panel,
) -> None:
    """Two tabs hold the listed comm; one closes it: the other keeps receiving on that id."""
    panel.load_ext()
    [beacon] = panel.comm_info()
    panel.close_comm(beacon)
    panel.execute("1")  # the close has been handled once a later request is answered
    assert list(panel.comm_info()) == [beacon]

    _, seen = panel.execute("%mlsecops scan plans.csv")
    assert [r["kind"] for r in events_on(seen, beacon)] == ["pickle.file_scanned"]
    panel.send(beacon, {"v": 1, "type": "sync_request"})
    assert panel.receive(beacon, "snapshot")["guardrails"]["on"] is True


@pytest.mark.kernel
def test_a_kernel_restart_closes_no_comm(panel: Panel) -> None:
    """JupyterLab drops its comms as it restarts a kernel: a comm_close of the
    old kernel would be logged as "Comm not found" in the browser console."""
    panel.load_ext()
    [beacon] = panel.comm_info()
    panel.execute("1")  # everything the load sent is in
    panel.kernel.manager.restart_kernel(now=False)  # returns once the old kernel exited
    from_old_kernel: list[tuple[str, dict[str, Any]]] = []
    while True:
        try:
            message = panel.client.get_iopub_msg(timeout=2)
        except queue.Empty:
            break
        if message["msg_type"] in ("comm_msg", "comm_close"):
            from_old_kernel.append((message["msg_type"], message["content"]))
    kinds = [
        content["data"]["record"]["kind"]
        for msg_type, content in from_old_kernel
        if msg_type == "comm_msg" and content["data"].get("type") == "event"
    ]
    # What the old kernel said at exit did arrive, and it closed nothing.
    assert kinds == ["session.ended"], from_old_kernel
    assert all(content["comm_id"] == beacon for _, content in from_old_kernel)
    assert [m for m, _ in from_old_kernel if m == "comm_close"] == []


@pytest.mark.kernel
def test_bad_requests_are_answered_with_errors(panel: Panel) -> None:
    panel.load_ext()
    [comm_id] = panel.comm_info()

    panel.send(comm_id, {"v": 2, "type": "sync_request", "request_id": "a"})
    error = panel.receive(comm_id, "error")
    assert error["request_id"] == "a"
    assert "unsupported protocol version 2" in error["message"]

    panel.send(comm_id, {"v": 1, "type": "launch_rockets", "request_id": "b"})
    assert panel.receive(comm_id, "error")["message"] == "unknown message type 'launch_rockets'"


@pytest.mark.kernel
def test_provenance_export_is_answered(panel: Panel, tmp_path: Path) -> None:
    panel.load_ext()
    [comm_id] = panel.comm_info()
    panel.send(
        comm_id,
        {
            "v": 1,
            "type": "export_request",
            "request_id": "x",
            "model_paths": ["plans.csv"],
            "out_dir": "provenance",
        },
    )
    while True:
        message = panel.client.get_iopub_msg(timeout=TIMEOUT)
        data = message["content"].get("data", {})
        if message["msg_type"] == "comm_msg" and data.get("request_id") == "x":
            break
    assert data["type"] == "export_response", data
    assert data["paths"]
    assert all(Path(tmp_path, p).exists() for p in data["paths"])
    # The kernel checked the envelope it wrote, as `mlsecops verify` would.
    assert data["verified"] is True, data["verification"]
    assert any(line.startswith("OK   signature") for line in data["verification"])
    assert any("plans.csv: sha256 matches" in line for line in data["verification"])
    assert Path(data["cwd"]) == Path(tmp_path).resolve()


def test_outside_a_kernel_the_channel_is_inert(shell: Any) -> None:
    """Terminal IPython has no frontend: loading registers no comm target and says nothing."""
    from conftest import run

    from mlsecops_jupyter import channel, extension

    run(shell, "%load_ext mlsecops_jupyter")
    state = extension.loaded_extension()
    assert state is not None
    close = channel.open_channel(state.shell, state.session)
    close()
