"""The smtplab command as a student uses it from a JupyterLab terminal, with real tools against it."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from peers import need

from smtplab.statefile import prepare_state_dir, publish, running_lab, withdraw
from smtplab.testing import closed_port

SMTPLAB = [sys.executable, "-m", "smtplab.cli"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """`smtplab serve --json` in its own process; yields (process, its JSON)."""
    state = tmp_path_factory.mktemp("served") / "state"  # serve makes it
    proc = subprocess.Popen([*SMTPLAB, "serve", "--json", "--state-dir", str(state)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()  # one JSON object on one line, once every server accepts connections
    assert line, proc.stderr.read()
    info = json.loads(line)
    yield proc, info
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_serve_prints_the_contract(served):
    _, info = served
    assert set(info) >= {"dns", "servers", "users", "ca_cert", "state_dir"}
    assert info["dns"]["address"] == "127.0.0.1" and info["dns"]["port"] > 0
    logical = {(s["host"], s["port"]) for s in info["servers"]}
    assert logical == {("smtp.example.org", p) for p in (25, 465, 587, 2525)} | {("mx1.example.net", 25), ("mx2.example.net", 25)}
    for server in info["servers"]:
        assert set(server) >= {"host", "port", "address", "bound_port", "role", "tls", "auth"}
        assert server["tls"] in ("none", "starttls", "implicit") and server["auth"] in ("none", "optional", "required")
        assert server["address"].startswith("127.")
        with socket.create_connection((server["address"], server["bound_port"]), timeout=2):
            pass  # every listener accepts connections by the time the line is printed
    assert {"address": "alice@example.org", "username": "alice", "password": "wonderland"} in info["users"]
    assert Path(info["ca_cert"]).read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert json.loads((Path(info["state_dir"]) / "lab.json").read_text()) == info


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_serve_keeps_its_state_to_its_owner(served):
    _, info = served  # lab.json holds the users' passwords; the transcripts hold AUTH lines
    assert _mode(Path(info["state_dir"])) == 0o700
    assert _mode(Path(info["state_dir"]) / "lab.json") == 0o600


def test_prepare_state_dir_tightens_only_what_is_a_state_dir(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    project.chmod(0o755)
    (project / "notes.txt").write_text("mine")
    assert _mode(prepare_state_dir(project)) == 0o755  # --state-dir . must not change someone's project
    old = tmp_path / "old-state"
    (old / "maildir").mkdir(parents=True)
    old.chmod(0o755)
    assert _mode(prepare_state_dir(old)) == 0o700  # a state dir from before this version
    assert _mode(prepare_state_dir(tmp_path / "new" / "state")) == 0o700


def test_the_published_state_is_withdrawn_only_by_its_own_lab(tmp_path):
    mine, theirs = {"servers": [], "name": "mine"}, {"servers": [], "name": "theirs"}
    path = publish(tmp_path, theirs)
    assert _mode(path) == 0o600 and json.loads(path.read_text()) == theirs
    withdraw(tmp_path, mine)  # a second serve published over the first: the first stopping keeps it
    assert path.exists()
    withdraw(tmp_path, theirs)
    assert not path.exists()


def test_a_file_left_by_a_killed_serve_is_no_running_lab(tmp_path):
    with closed_port() as (address, port):
        publish(tmp_path, {"servers": [{"address": address, "bound_port": port}]})
        assert running_lab(tmp_path) is None
    (tmp_path / "lab.json").write_text("{not json")
    assert running_lab(tmp_path) is None


def test_send_through_the_running_lab(served):
    _, info = served
    run = subprocess.run([*SMTPLAB, "send", "--to", "carol@example.org", "--subject", "from the terminal",
                          "--state-dir", info["state_dir"]], capture_output=True, text=True, timeout=30, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert " ~> AUTH PLAIN" in run.stdout and "base64" in run.stdout  # annotated, swaks-style
    assert "starting one" not in run.stderr
    new = Path(info["state_dir"], "maildir", "carol@example.org", "new")
    assert any(b"Subject: from the terminal" in p.read_bytes() for p in new.iterdir())


def test_send_reports_a_refusal_with_a_failing_status(served):
    _, info = served
    run = subprocess.run([*SMTPLAB, "send", "--to", "nobody@example.org", "--port", "465",
                          "--state-dir", info["state_dir"]], capture_output=True, text=True, timeout=30, check=False)
    assert run.returncode == 1
    assert "550 5.1.1" in run.stdout and "FAILED" in run.stdout


def test_swaks_against_the_served_lab(served):
    swaks = need("swaks")
    _, info = served
    sub = next(s for s in info["servers"] if s["port"] == 2525)
    run = subprocess.run([swaks, "--server", f"{sub['address']}:{sub['bound_port']}", "--tls", "--tls-verify",
                          "--tls-ca-path", info["ca_cert"], "--tls-sni", "smtp.example.org", "--auth", "LOGIN",
                          "--auth-user", "alice", "--auth-password", "wonderland", "--from", "alice@example.org",
                          "--to", "bob@example.net"], capture_output=True, text=True, timeout=30, check=False)
    assert run.returncode == 0, run.stdout
    assert "<~  250 2.0.0 OK: queued as" in run.stdout


def test_dig_asks_the_lab_dns(served):
    dig = need("dig")
    _, info = served
    run = subprocess.run([dig, "@" + info["dns"]["address"], "-p", str(info["dns"]["port"]), "example.net", "MX",
                          "+short", "+tries=1", "+time=2"], capture_output=True, text=True, timeout=10, check=False)
    assert sorted(run.stdout.split("\n")) == ["", "10 mx1.example.net.", "20 mx2.example.net."]
    tcp = subprocess.run([dig, "@" + info["dns"]["address"], "-p", str(info["dns"]["port"]), "+tcp", "+short",
                          "mx1.example.net", "A"], capture_output=True, text=True, timeout=10, check=False)
    assert tcp.stdout.strip() == next(s["address"] for s in info["servers"] if s["host"] == "mx1.example.net")


def test_sigterm_stops_cleanly_and_frees_every_port(served):
    proc, info = served
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    for server in info["servers"]:
        with socket.socket() as probe:
            assert probe.connect_ex((server["address"], server["bound_port"])) != 0
    assert not (Path(info["state_dir"]) / "lab.json").exists()


def test_send_without_a_running_lab_starts_one(tmp_path):
    env = {**os.environ, "SMTPLAB_STATE_DIR": str(tmp_path)}
    run = subprocess.run([*SMTPLAB, "send", "--to", "bob@example.net"],
                         capture_output=True, text=True, timeout=60, env=env, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "starting one just for this message" in run.stderr


def test_wrong_arguments_say_what_is_wrong(tmp_path):
    env = {**os.environ, "SMTPLAB_STATE_DIR": str(tmp_path)}
    run = subprocess.run([*SMTPLAB, "send", "--to", "bob@example.net", "--port", "26"], capture_output=True,
                         text=True, timeout=60, env=env, check=False)
    assert run.returncode == 2 and "no listener on port 26" in run.stderr and "Traceback" not in run.stderr
