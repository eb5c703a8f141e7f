"""A fleet `--address` that is not a Ray head of the kind it names is refused within seconds, naming only what was
given: an HTTP server, a Ray Client port without ray://, a head's GCS port with ray://. Ray itself would retry
such an address for minutes, deaf to SIGTERM, and print internal addresses the user never typed."""

import http.server
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

import scaleproof
from scaleproof.errors import ParamsError
from scaleproof.fleet import check_reachable
from tests import ROOT

LIB = str(Path(scaleproof.__file__).parents[1])
IPV4 = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def http_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def test_an_http_server_given_as_the_address_is_refused_by_the_fleet_command_in_seconds(http_server, tmp_path):
    address = f"127.0.0.1:{http_server}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([LIB, str(ROOT)])}
    t0 = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "scaleproof.cli", "fleet", "--params",
                           str(ROOT / "params" / "smoke.yaml"), "--gpus", "CPU", "--address", address, "--outputs",
                           str(tmp_path)], env=env, capture_output=True, text=True, timeout=120)
    assert time.monotonic() - t0 < 60, "refused in seconds, not after Ray's retries"
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"--address {address}: something listens there but does not speak gRPC" in done.stderr
    assert set(IPV4.findall(done.stdout + done.stderr)) <= {"127.0.0.1"}, "no address the user did not type"
    assert not any(tmp_path.iterdir())


@pytest.fixture(scope="module")
def ray_head():
    """A real Ray head on loopback with its Ray Client server, in its own `ray start --block` and temp folder."""
    gcs, client = free_port(), free_port()
    ray = Path(sys.executable).parent / "ray"
    head = subprocess.Popen([str(ray), "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(gcs),
                             "--ray-client-server-port", str(client), "--num-cpus", "0", "--include-dashboard=false",
                             "--temp-dir", tempfile.mkdtemp(prefix="ray-"), "--disable-usage-stats", "--block"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                check_reachable(f"127.0.0.1:{gcs}", timeout_s=2)
                check_reachable(f"ray://127.0.0.1:{client}", timeout_s=2)
                break
            except ParamsError:
                assert head.poll() is None and time.monotonic() < deadline, "the Ray head did not come up"
                time.sleep(1)
        yield gcs, client
    finally:
        head.terminate()
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()
            head.wait()


def test_the_wrong_kind_of_ray_address_is_refused_naming_the_right_form(ray_head):
    gcs, client = ray_head
    t0 = time.monotonic()
    with pytest.raises(ParamsError, match=rf"--address 127\.0\.0\.1:{client} answers gRPC but not as a Ray head's "
                                          rf"GCS address .*give ray://127\.0\.0\.1:{client}"):
        check_reachable(f"127.0.0.1:{client}")  # the client port without ray://
    with pytest.raises(ParamsError, match=rf"--address ray://127\.0\.0\.1:{gcs} answers gRPC but not as a Ray Client "
                                          r"server .*give it without ray://"):
        check_reachable(f"ray://127.0.0.1:{gcs}")
    assert time.monotonic() - t0 < 15


def test_the_fleet_driver_answers_sigterm_and_records_its_members(tmp_path):
    """SIGTERM to `scaleproof fleet` (on a Ray of its own) while a member runs: the member is stopped and recorded
    as interrupted by SIGTERM in fleet.json, the driver exits 143, and no process it started is left."""
    import json
    import signal

    import psutil

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([LIB, str(ROOT)])}
    driver = subprocess.Popen([sys.executable, "-m", "scaleproof.cli", "fleet", "--params",
                               str(ROOT / "params" / "smoke.yaml"), "--outputs", str(tmp_path), "--fleet-id", "f"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen, deadline = [], time.monotonic() + 240
    while time.monotonic() < deadline:
        line = driver.stdout.readline()
        seen.append(line)
        if not line or "scheduled on a node" in line:
            break
    assert "scheduled on a node" in "".join(seen), "".join(seen)
    time.sleep(5)  # the member's chain is running
    children = psutil.Process(driver.pid).children(recursive=True)
    sent = time.monotonic()
    driver.send_signal(signal.SIGTERM)
    out, _ = driver.communicate(timeout=120)
    assert driver.returncode == 143, "".join(seen) + out
    assert time.monotonic() - sent < 90
    member = json.loads((tmp_path / "f" / "fleet.json").read_text())["members"][0]
    assert member["status"] == "interrupted" and "stopped by SIGTERM" in member["error"], member
    _, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, [" ".join(p.cmdline())[:100] for p in alive]
