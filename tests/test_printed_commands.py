"""The commands ``smtplab serve`` prints under "Try, in another terminal:" work exactly as printed.

Each printed line is split with :func:`shlex.split`, as a shell would, and run
as it is against a real ``smtplab serve`` process: swaks must deliver, a whole
SMTP session typed into ``openssl s_client`` must deliver (its ``RCPT TO:`` line
starts with R, which s_client takes as "renegotiate" without ``-quiet``), and
dig must get the MX answer. The state dir has a space in its name, so a path
the command prints unquoted breaks it. A test skips, saying why, where its tool
is missing.

Run alone:  .venv/bin/python -m pytest tests/test_printed_commands.py -p no:nbval -o addopts="" -q
"""

from __future__ import annotations

import base64
import json
import mailbox
import os
import queue
import re
import select
import shlex
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from peers import need

SMTPLAB = [sys.executable, "-m", "smtplab.cli"]
TRY_HEADER = "Try, in another terminal:"
#: Seconds a reply, a delivery or a tool's run may take before a test calls it lost.
WAIT = 10.0


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """`smtplab serve` (text output) in its own process; yields (state dir, {tool: the printed line})."""
    state = tmp_path_factory.mktemp("printed") / "state dir"
    proc = subprocess.Popen([*SMTPLAB, "serve", "--state-dir", str(state)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, bufsize=0)
    try:
        commands = _read_try_block(proc)
        yield state, commands
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _read_try_block(proc: subprocess.Popen) -> dict[str, str]:
    """The command lines after the "Try" header, keyed by the tool each one runs.

    serve prints its whole description in one write and then waits, so the block
    ends where the output pauses.
    """
    out = proc.stdout
    seen = []
    while True:
        line = out.readline().decode()
        assert line, "smtplab serve ended before printing its commands:\n" + "".join(seen) + proc.stderr.read().decode()
        seen.append(line)
        if line.strip() == TRY_HEADER:
            break
    commands: dict[str, str] = {}
    while select.select([out], [], [], 2.0)[0]:
        line = out.readline().decode()
        if not line.strip():
            break
        printed = line.strip()
        commands[shlex.split(printed)[0]] = printed
    return commands


def _new_messages(state: Path, address: str) -> list[mailbox.MaildirMessage]:
    folder = state / "maildir" / address
    return list(mailbox.Maildir(folder, create=False)) if folder.exists() else []


def _wait_for_message(state: Path, address: str, marker: str) -> mailbox.MaildirMessage | None:
    """The message in `address`'s Maildir whose headers carry `marker`, once it is there."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        for message in _new_messages(state, address):
            if any(marker in str(value) for value in message.values()):
                return message
        time.sleep(0.05)
    return None


def test_serve_prints_swaks_openssl_and_dig(served):
    state, commands = served
    assert set(commands) == {"swaks", "openssl", "dig"}, commands
    openssl = shlex.split(commands["openssl"])
    assert {"-quiet", "-crlf"} <= set(openssl), "s_client eats lines starting with R or Q without -quiet"
    for argv in (openssl, shlex.split(commands["swaks"])):  # the CA path survives the shell, space and all
        ca = next(argv[i + 1] for i, arg in enumerate(argv) if arg in ("-CAfile", "--tls-ca-path"))
        assert Path(ca).is_file() and str(state) in ca


def test_swaks_as_printed_delivers(served):
    state, commands = served
    need("swaks")
    run = subprocess.run(shlex.split(commands["swaks"]), capture_output=True, text=True, timeout=30, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    after_data = run.stdout.split("-> .", 1)[-1]
    assert re.search(r"^<~ +250 ", after_data, re.MULTILINE), run.stdout  # 250 after the final dot
    message_id = re.search(r"^ ~> Message-Id: (<[^>]+>)", run.stdout, re.MULTILINE | re.IGNORECASE)
    assert message_id, run.stdout
    assert _wait_for_message(state, "carol@example.org", message_id.group(1)) is not None


class _Typist:
    """Types lines into a running tool as a person would: one line, then wait for the server's reply."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def type(self, *lines: str) -> None:
        for line in lines:
            self.proc.stdin.write(line + "\n")  # a terminal's Enter: LF; -crlf makes it CRLF on the wire
        self.proc.stdin.flush()

    def expect(self, code: int) -> str:
        """The last line of the next whole reply; fails unless its code is `code`."""
        deadline = time.monotonic() + WAIT
        while True:
            try:
                line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                pytest.fail(f"no {code} reply within {WAIT:g} s; the session so far:\n" + "".join(self.seen))
            if line is None:
                pytest.fail(f"the connection ended before a {code} reply; the session so far:\n" + "".join(self.seen))
            self.seen.append(line)
            if re.match(r"^[0-9]{3} ", line):
                assert int(line[:3]) == code, "".join(self.seen)
                return line


def test_a_whole_session_typed_into_openssl_as_printed_delivers(served):
    state, commands = served
    need("openssl")
    _type_a_whole_session(state, commands["openssl"])


@pytest.mark.parametrize("notebook", ["04-ports.ipynb", "05-starttls.ipynb"])
def test_the_notebooks_openssl_template_carries_a_whole_session(served, notebook):
    """The notebooks' s_client lines (placeholders filled in as they tell the student to) survive RCPT and QUIT."""
    state, _ = served
    need("openssl")
    cells = json.loads((Path(__file__).resolve().parent.parent / "notebooks" / notebook).read_text())["cells"]
    text = "".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    template = next(line for line in text.splitlines() if line.startswith("openssl s_client") and "<PORT_587>" in line)
    info = json.loads((state / "lab.json").read_text())
    sub = next(s for s in info["servers"] if s["host"] == "smtp.example.org" and s["port"] == 587)
    command = (template.replace("<ADDRESS>", sub["address"]).replace("<PORT_587>", str(sub["bound_port"]))
               .replace("<CA_CERT>", shlex.quote(info["ca_cert"])))
    _type_a_whole_session(state, command)


def _type_a_whole_session(state: Path, command: str) -> None:
    subject = f"typed into s_client {uuid.uuid4().hex}"
    token = base64.b64encode(b"\0alice\0wonderland").decode()
    proc = subprocess.Popen(shlex.split(command), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        typist = _Typist(proc)
        typist.type("EHLO client.example")
        typist.expect(250)
        typist.type(f"AUTH PLAIN {token}")
        typist.expect(235)
        typist.type("MAIL FROM:<alice@example.org>")
        typist.expect(250)
        typist.type("RCPT TO:<carol@example.org>")  # R at the start: "renegotiate" to s_client without -quiet
        typist.expect(250)
        typist.type("DATA")
        typist.expect(354)
        typist.type("From: alice@example.org", "To: carol@example.org", f"Subject: {subject}", "",
                    "Typed by hand into openssl s_client.", ".")
        typist.expect(250)
        typist.type("QUIT")  # Q at the start: "quit" to s_client without -quiet, before QUIT is sent
        typist.expect(221)
        proc.stdin.close()
        assert proc.wait(timeout=WAIT) == 0
        stderr = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "verify error" not in stderr, stderr  # the printed -CAfile is the lab CA that signed the certificate
    message = _wait_for_message(state, "carol@example.org", subject)
    assert message is not None, "the message typed into s_client did not arrive"
    assert "Typed by hand" in message.get_payload()


def test_dig_as_printed_gets_the_mx_answer(served):
    _state, commands = served
    need("dig")
    run = subprocess.run(shlex.split(commands["dig"]), capture_output=True, text=True, timeout=30, check=False,
                         env={**os.environ, "HOME": "/nonexistent"})  # no ~/.digrc changes what it prints
    assert run.returncode == 0, run.stdout + run.stderr
    assert "status: NOERROR" in run.stdout, run.stdout
    answer = run.stdout.split(";; ANSWER SECTION:", 1)[-1].split("\n\n", 1)[0]
    found = sorted(re.findall(r"^example\.net\.\s+\d+\s+IN\s+MX\s+(\d+ \S+)$", answer, re.MULTILINE))
    assert found == ["10 mx1.example.net.", "20 mx2.example.net."], run.stdout
