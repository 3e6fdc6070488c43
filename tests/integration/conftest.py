"""Fixtures for the flowsim integration tests.

flowsim is started as a subprocess (the binary from $FLOWSIM, set by meson,
or build/sim/flowsim under the repository root), always with
``--listen 127.0.0.1:0 --port-file <tmp>/port --truth``; it is stopped with
SIGTERM sent to its own pid only, and must exit with status 0.

Only the Python standard library and pytest are used.
"""

import gzip
import http.client
import json
import os
import signal
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest

from mount import MountFactory

REPO = Path(__file__).resolve().parents[2]
DEFAULT_BINARY = REPO / "build/sim/flowsim"
DEFAULT_FLOWFETCH = REPO / "build/fetch/flowfetch"

# The frozen clock every deterministic sim uses (and its value in ms).
NOW_ISO = "2026-11-29T12:00:00Z"
NOW_MS = 1795953600000

# Options of the module-wide default sim.  max_records, export delay and
# retention differ from flowsim's defaults on purpose, so /info proves it
# reports the options and not constants.
DEFAULT_SIM_ARGS = [
    "--now", NOW_ISO,
    "--seed", "1",
    "--max-records", "5000",
    "--export-delay", "120",
    "--retention-days", "30",
]

START_DEADLINE_S = 10.0
STOP_DEADLINE_S = 10.0
HTTP_TIMEOUT_S = 60.0


def flowsim_binary():
    return Path(os.environ.get("FLOWSIM") or DEFAULT_BINARY)


def require_binary():
    b = flowsim_binary()
    if not (b.is_file() and os.access(b, os.X_OK)):
        pytest.fail(f"flowsim binary not found or not executable: {b} "
                    f"(build it with ninja -C build, or set FLOWSIM)",
                    pytrace=False)
    return b


def flowfetch_binary():
    """flowfetch: $FLOWFETCH (set by meson), else build/fetch/flowfetch."""
    return Path(os.environ.get("FLOWFETCH") or DEFAULT_FLOWFETCH)


def require_flowfetch():
    b = flowfetch_binary()
    if not (b.is_file() and os.access(b, os.X_OK)):
        pytest.fail(f"flowfetch binary not found or not executable: {b} "
                    f"(build it with ninja -C build, or set FLOWFETCH)",
                    pytrace=False)
    return b


class SimError(AssertionError):
    pass


class Sim:
    """One flowsim process and a small stdlib HTTP client for it."""

    def __init__(self, workdir, args=(), binary=None):
        self.binary = Path(binary) if binary else require_binary()
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.args = list(args)
        self.port_file = self.workdir / "port"
        self.stderr_path = self.workdir / "stderr"
        self.proc = None
        self.port = None
        self.returncode = None
        self.stop_duration = None

    # ---- process ---------------------------------------------------------

    def cmdline(self):
        return [str(self.binary), "--listen", "127.0.0.1:0",
                "--port-file", str(self.port_file), "--truth", *self.args]

    def stderr_text(self):
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def start(self):
        if self.port_file.exists():
            self.port_file.unlink()
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(self.cmdline(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=self._stderr)
        deadline = time.monotonic() + START_DEADLINE_S
        while True:
            rc = self.proc.poll()
            if rc is not None:
                self.returncode = rc
                self._stderr.close()
                raise SimError(
                    f"flowsim died at start-up with status {rc}\n"
                    f"command: {' '.join(self.cmdline())}\n"
                    f"stderr:\n{self.stderr_text()}")
            text = ""
            try:
                text = self.port_file.read_text().strip()
            except OSError:
                pass
            if text:
                try:
                    self.port = int(text)
                except ValueError:
                    self.stop(check=False)
                    raise SimError(f"port file holds {text!r}, not a port")
                if not 0 < self.port < 65536:
                    self.stop(check=False)
                    raise SimError(f"port file holds {text!r}, not a port")
                return self
            if time.monotonic() > deadline:
                self.stop(check=False)
                raise SimError(
                    f"flowsim wrote no port file within {START_DEADLINE_S} s\n"
                    f"command: {' '.join(self.cmdline())}\n"
                    f"stderr:\n{self.stderr_text()}")
            time.sleep(0.02)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, check=True, sig=signal.SIGTERM):
        """Signal our own pid (SIGTERM), wait, SIGKILL it after the deadline;
        check the exit status is 0."""
        if self.proc is None:
            return None
        if self.returncode is None:
            killed = False
            t0 = time.monotonic()
            if self.proc.poll() is None:
                self.proc.send_signal(sig)
                try:
                    self.proc.wait(timeout=STOP_DEADLINE_S)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
                    killed = True
            self.stop_duration = time.monotonic() - t0
            self.returncode = self.proc.returncode
            self._stderr.close()
            if check and killed:
                raise SimError(
                    f"flowsim did not exit within {STOP_DEADLINE_S} s of "
                    f"{signal.Signals(sig).name} (killed)\n"
                    f"stderr:\n{self.stderr_text()[-4000:]}")
        if check and self.returncode != 0:
            raise SimError(
                f"flowsim exited with status {self.returncode} after a stop "
                f"(want 0)\nstderr:\n{self.stderr_text()[-4000:]}")
        return self.returncode

    # ---- HTTP ------------------------------------------------------------

    def connection(self, timeout=HTTP_TIMEOUT_S):
        return http.client.HTTPConnection("127.0.0.1", self.port,
                                          timeout=timeout)

    @staticmethod
    def url(path, params=None):
        if params:
            if isinstance(params, dict):
                params = [(k, v) for k, v in params.items() if v is not None]
            return path + "?" + urllib.parse.urlencode(params)
        return path

    def request(self, method, path, params=None, headers=None, token=None,
                timeout=HTTP_TIMEOUT_S):
        """One request on a fresh connection: (status, headers, body bytes).

        Transport errors (reset, timeout, IncompleteRead) propagate."""
        hdrs = dict(headers or {})
        if token is not None:
            hdrs["Authorization"] = f"Bearer {token}"
        conn = self.connection(timeout)
        try:
            conn.request(method, self.url(path, params), headers=hdrs)
            resp = conn.getresponse()
            body = resp.read()
            return resp.status, resp.headers, body
        finally:
            conn.close()

    def get(self, path, params=None, headers=None, token=None,
            timeout=HTTP_TIMEOUT_S):
        return self.request("GET", path, params, headers, token, timeout)

    def post(self, path, params=None, headers=None, token=None,
             timeout=HTTP_TIMEOUT_S):
        return self.request("POST", path, params, headers, token, timeout)

    def get_json(self, path, params=None, headers=None, token=None,
                 expect=200):
        status, hdrs, body = self.get(path, params, headers, token)
        if hdrs.get("Content-Encoding", "").lower() == "gzip":
            body = gzip.decompress(body)
        if status != expect:
            raise SimError(f"GET {self.url(path, params)}: status {status}, "
                           f"want {expect}; body {body[:300]!r}")
        try:
            return json.loads(body)
        except ValueError as e:
            raise SimError(f"GET {self.url(path, params)}: body is not JSON "
                           f"({e}): {body[:300]!r}")

    # ---- the API ---------------------------------------------------------

    def info(self, token=None):
        return self.get_json("/api/v1/info", token=token)

    def flows(self, ip, start, end, peer=None, limit=None, token=None):
        params = {"ip": ip, "start": start, "end": end, "peer": peer,
                  "limit": limit}
        doc = self.get_json("/api/v1/flows", params, token=token)
        if not isinstance(doc, dict) or not isinstance(doc.get("flows"), list):
            raise SimError(f"/flows answer has no 'flows' list: "
                           f"{str(doc)[:300]}")
        return doc["flows"]

    # ---- the test endpoints ---------------------------------------------

    def truth(self, ip, start, end, peer=None, list=None):
        params = {"ip": ip, "start": start, "end": end, "peer": peer,
                  "list": list}
        return self.get_json("/_sim/truth", params)

    def counters(self):
        return self.get_json("/_sim/counters")

    def reset_counters(self):
        status, _, body = self.post("/_sim/counters/reset")
        if status != 200:
            raise SimError(f"POST /_sim/counters/reset: {status} "
                           f"{body[:200]!r}")
        return body

    def set_faults(self, **rates):
        """set_faults(fail_500=1, slow=0.5) or set_faults(**{"500": 1})."""
        params = {}
        for k, v in rates.items():
            k = k[len("fail_"):] if k.startswith("fail_") else k
            params[k] = v
        status, _, body = self.post("/_sim/faults", params)
        if status != 200:
            raise SimError(f"POST /_sim/faults {params}: {status} "
                           f"{body[:200]!r}")
        return json.loads(body)

    def scenario(self):
        return self.get_json("/_sim/scenario")


class SimFactory:
    """Starts sims for one test or module; stops them all afterwards."""

    def __init__(self, tmpdir):
        self.tmpdir = Path(tmpdir)
        self.sims = []

    def __call__(self, *args, start=True):
        s = Sim(self.tmpdir / f"sim{len(self.sims)}", args)
        self.sims.append(s)
        if start:
            s.start()
        return s

    def stop_all(self):
        errors = []
        for s in self.sims:
            if s.port is None and s.returncode is not None:
                continue        # failed at start-up: already reported
            try:
                s.stop(check=True)
            except SimError as e:
                errors.append(str(e))
        if errors:
            pytest.fail("\n\n".join(errors), pytrace=False)


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """The module's default sim: started once, reused, stopped at the end."""
    s = Sim(tmp_path_factory.mktemp("flowsim"), DEFAULT_SIM_ARGS)
    s.start()
    try:
        yield s
    finally:
        s.stop(check=True)


@pytest.fixture
def make_sim(tmp_path):
    """make_sim(*extra_args) -> a started Sim, stopped (and checked) after
    the test."""
    f = SimFactory(tmp_path)
    try:
        yield f
    finally:
        f.stop_all()


@pytest.fixture(scope="module")
def make_module_sim(tmp_path_factory):
    f = SimFactory(tmp_path_factory.mktemp("flowsims"))
    try:
        yield f
    finally:
        f.stop_all()


@pytest.fixture(scope="session")
def flowsim_path():
    return require_binary()


@pytest.fixture(scope="session")
def flowfetch_path():
    return require_flowfetch()


@pytest.fixture
def mounts(tmp_path, token_file):
    """mounts(url=..., opts=[...]) -> a started flowfs Mount (mount.py);
    all unmounted and checked (stderr, exit status, nothing left mounted)
    after the test.  mounts.allow(regex, ...) expects error lines.  Uses
    the test module's token_file fixture."""
    f = MountFactory(tmp_path, None, token_file)
    try:
        yield f
    finally:
        f.finish()
