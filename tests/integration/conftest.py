"""Fixtures for the flowsim integration tests.

flowsim is started as a subprocess (the binary from $FLOWSIM, set by meson,
or build/sim/flowsim under the repository root), always with
``--listen 127.0.0.1:0 --port-file <tmp>/port --truth``; it is stopped with
SIGTERM sent to its own pid only, and must exit with status 0.

Only the Python standard library and pytest are used.
"""

import csv
import gzip
import hashlib
import http.client
import io
import json
import os
import secrets
import signal
import socket
import sqlite3
import ssl
import subprocess
import threading
import time
import urllib.parse
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from mount import MountFactory, fail_on_sanitizer

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

# The run's seed of the tests' random choices (random.Random(SEED) and
# strings derived from it: test_property's queries, test_crash's kill
# points): $FLOWFS_SEED, else drawn at start.  A test that takes the
# fixture 'seed' has it in its JUnit properties and, when it fails, in a
# section of its report: FLOWFS_SEED=N replays its choices.
SEED = int(os.environ.get("FLOWFS_SEED") or secrets.randbits(32))

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


@pytest.fixture(scope="module")
def token():
    """The module's bearer token: a module that starts its sims with a
    token of its own overrides this one."""
    return "flowfs-test-" + secrets.token_hex(16)


@pytest.fixture(scope="module")
def token_file(tmp_path_factory, token):
    """The module's token (its fixture 'token') in a file of mode 0600."""
    p = tmp_path_factory.mktemp("token") / "token"
    p.write_text(token + "\n")
    p.chmod(0o600)
    return p


def sim_args(token_file, *extra):
    """A sim with the frozen clock that asks for the token in token_file."""
    return ["--now", NOW_ISO, "--token-file", str(token_file), *extra]


@pytest.fixture
def seed(record_property):
    """The run's seed (SEED), recorded for the report."""
    record_property("seed", SEED)
    return SEED


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test that took the seed says how to replay it."""
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and "seed" in getattr(item, "fixturenames", ()):
        rep.sections.append(("seed", f"FLOWFS_SEED={SEED} replays this "
                             f"test's random choices"))


@pytest.fixture(scope="session")
def flowsim_path():
    return require_binary()


def url_of(sim):
    return f"http://127.0.0.1:{sim.port}"


class TlsProxy:
    """A TLS front for a sim on 127.0.0.1:0 (a self-signed certificate for
    'san', by default the address it listens on), piping bytes to the sim's
    plain port."""

    def __init__(self, tmp, backend_port, san="IP:127.0.0.1", name="cert"):
        self.cert = tmp / f"{name}.pem"
        self.key = tmp / f"{name}-key.pem"
        cn = san.split(":", 1)[1]
        r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                            "-nodes", "-keyout", str(self.key), "-out",
                            str(self.cert), "-days", "2", "-subj", f"/CN={cn}",
                            "-addext", f"subjectAltName={san}"],
                           capture_output=True, timeout=60)
        if r.returncode != 0:
            pytest.skip(f"cannot make a certificate: {r.stderr[-300:]!r}")
        self.backend = backend_port
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(self.cert, self.key)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        try:
            t = self.ctx.wrap_socket(c, server_side=True)
        except (OSError, ssl.SSLError):
            c.close()
            return
        b = socket.create_connection(("127.0.0.1", self.backend))

        def pump(src, dst):
            try:
                while True:
                    d = src.recv(65536)
                    if not d:
                        break
                    dst.sendall(d)
            except OSError:
                pass
            finally:
                for x in (src, dst):
                    try:
                        x.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        th = threading.Thread(target=pump, args=(b, t), daemon=True)
        th.start()
        pump(t, b)
        th.join(30)
        t.close()
        b.close()

    def close(self):
        self.stopping = True
        self.sock.close()


# ---- mounts ---------------------------------------------------------------------------

@pytest.fixture
def mounts(tmp_path, token_file):
    """The tests' one mount fixture: mounts(url=..., opts=[...],
    token_file=..., ...) -> a started Mount (MountFactory.__call__; the
    token file is the module's unless given); all unmounted and checked
    (stderr, exit status, nothing left mounted) after the test.
    mounts.allow(regex, ...) expects error lines."""
    f = MountFactory(tmp_path, None, token_file)
    try:
        yield f
    finally:
        f.finish()


# ---- flowfetch: running it, reading what it writes, judging it -------------------------


# docs/design.md, "flows.csv": the columns, in this order.
COLUMNS = [
    "firstSeen", "lastSeen", "duration", "proto", "srcAddr", "srcPort",
    "dstAddr", "dstPort", "flags", "packets", "bytes", "srcAS", "dstAS",
    "inIf", "outIf", "exporter", "app", "srcGroups", "dstGroups",
    "icmpType", "icmpCode", "sampling", "ts", "communityId", "flowId",
]

INT_COLUMNS = {"srcPort", "dstPort", "packets", "bytes", "srcAS", "dstAS",
               "icmpType", "icmpCode", "sampling"}

DECIMAL_COLUMNS = {"duration", "ts"}

RUN_TIMEOUT_S = 180                     # one flowfetch run, at most


def digest_of(ids):
    return hashlib.sha256("".join(i + "\n" for i in sorted(ids))
                          .encode()).hexdigest()


class Fetch:
    """One finished flowfetch run: its command, exit status (rc), stdout
    (bytes: the output when -o -), stderr (text, undecodable bytes
    replaced), output file (out: None with -o - or no -o) and duration."""

    def __init__(self, cmd, rc, stdout, stderr, out, seconds):
        self.cmd, self.rc, self.stdout, self.stderr = cmd, rc, stdout, stderr
        self.out, self.seconds = out, seconds

    def describe(self):
        return (f"command: {' '.join(map(str, self.cmd))}\n"
                f"exit status {self.rc} after {self.seconds:.1f} s\n"
                f"stderr:\n{self.stderr[-3000:]}")

    def ok(self, want=0):
        assert self.rc == want, \
            f"flowfetch exited {self.rc}, want {want}\n{self.describe()}"
        return self


# The one way the tests run flowfetch: fetch_cmd writes its command line,
# fetch_env its environment; run_fetch runs it to the end (a Fetch),
# start_fetch in the background (a Popen, for kill -9, a terminal, its
# argv); flowfetch(...) is fetch_cmd and run_fetch in one call.

def fetch_env(tmp, token=None):
    """flowfetch's environment: this process's (the sanitizers' options
    included) without FLOWFS_TOKEN, unless 'token' gives it, and HOME and
    XDG_CACHE_HOME under 'tmp', so that a run never touches the user's
    own cache or settings."""
    env = {k: v for k, v in os.environ.items() if k != "FLOWFS_TOKEN"}
    if token is not None:
        env["FLOWFS_TOKEN"] = token
    env["XDG_CACHE_HOME"] = str(Path(tmp) / "xdg-cache")
    env["HOME"] = str(Path(tmp) / "home")
    return env


def fetch_cmd(source, ip=None, frm=None, to=None, out=None, cache=None,
              token_file=None, peer=None, extra=()):
    """flowfetch's command line: SOURCE (a URL, nfdump:DIR, ...), the
    query (--ip, --peer, --from, --to), --token-file, --cache (each left
    out when None), the extra arguments, and -o OUT last (left out when
    None): fetch_cmd(None, extra=["--help"]) is flowfetch --help."""
    cmd = [str(require_flowfetch())]
    if source is not None:
        cmd.append(str(source))
    for flag, v in (("--ip", ip), ("--peer", peer), ("--from", frm),
                    ("--to", to), ("--token-file", token_file),
                    ("--cache", cache)):
        if v is not None:
            cmd += [flag, str(v)]
    cmd += [str(a) for a in extra]
    if out is not None:
        cmd += ["-o", str(out)]
    return cmd


def output_of(cmd):
    """The output file of a fetch_cmd command line (its last -o FILE), or
    None (-o -, or no -o)."""
    if len(cmd) < 2 or str(cmd[-2]) != "-o" or str(cmd[-1]) == "-":
        return None
    return Path(cmd[-1])


def run_fetch(cmd, tmp, token=None, timeout=RUN_TIMEOUT_S, umask=None):
    """Run flowfetch's command line cmd to the end, in fetch_env(tmp,
    token), with umask 'umask' if given: a Fetch.  A run that outlives
    'timeout' seconds, or a sanitizer's report on its stderr, fails the
    test."""
    t0 = time.monotonic()
    pre = (lambda: os.umask(umask)) if umask is not None else None
    try:
        p = subprocess.run([str(a) for a in cmd], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=fetch_env(tmp, token), timeout=timeout,
                           preexec_fn=pre)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"flowfetch did not finish within {timeout} s\n"
                    f"command: {' '.join(map(str, cmd))}\n"
                    f"stderr:\n{(e.stderr or b'').decode(errors='replace')[-3000:]}")
    err = p.stderr.decode("utf-8", errors="replace")
    fail_on_sanitizer("flowfetch", err)
    return Fetch(cmd, p.returncode, p.stdout, err, output_of(cmd),
                 time.monotonic() - t0)


def start_fetch(cmd, tmp, token=None, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE):
    """Start flowfetch's command line cmd in fetch_env(tmp, token), stdin
    from /dev/null: its Popen (bytes).  The caller waits for it, or kills
    it by its pid, in a finally."""
    return subprocess.Popen([str(a) for a in cmd], stdin=subprocess.DEVNULL,
                            stdout=stdout, stderr=stderr,
                            env=fetch_env(tmp, token))


def flowfetch(source, ip=None, frm=None, to=None, out=None, *, tmp=None,
              cache=None, token_file=None, peer=None, extra=(), token=None,
              timeout=RUN_TIMEOUT_S, umask=None):
    """flowfetch SOURCE with a query and extra arguments, run to the end
    (fetch_cmd, then run_fetch): a Fetch.  Its HOME and XDG_CACHE_HOME are
    under 'tmp', by default the output's directory."""
    if tmp is None:
        if out is None or str(out) == "-":
            raise ValueError("flowfetch: tmp= is needed without -o FILE")
        tmp = Path(out).parent
    return run_fetch(fetch_cmd(source, ip, frm, to, out, cache, token_file,
                               peer, extra), tmp, token, timeout, umask)


def parse_csv_bytes(data):
    """(header, rows as dicts); RFC 4180 via the csv module."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        pytest.fail(f"CSV output is not UTF-8: {e}")
    rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    assert rows, "CSV output is empty: no header row"
    header = rows[0]
    assert header == COLUMNS, \
        f"CSV header:\n  {header}\nwant (docs/design.md order):\n  {COLUMNS}"
    out = []
    for n, r in enumerate(rows[1:], 2):
        assert len(r) == len(COLUMNS), \
            f"CSV record {n} has {len(r)} fields, want {len(COLUMNS)}: {r}"
        out.append(dict(zip(COLUMNS, r)))
    return out


def ndjson_rows(path):
    """Rows of a .ndjson file as dicts of strings ('' for null), like CSV;
    JSON types are checked on the way."""
    data = Path(path).read_bytes()
    assert data == b"" or data.endswith(b"\n"), \
        "NDJSON output does not end with a newline"
    out = []
    for n, line in enumerate(data.decode("utf-8").split("\n")[:-1], 1):
        assert line.strip(), f"NDJSON line {n} is empty"
        try:
            obj = json.loads(line, parse_float=Decimal)
        except ValueError as e:
            pytest.fail(f"NDJSON line {n} is not JSON ({e}): {line[:300]}")
        assert isinstance(obj, dict), f"NDJSON line {n} is no object"
        assert sorted(obj) == sorted(COLUMNS), \
            (f"NDJSON line {n} keys differ from the CSV header: "
             f"extra {sorted(set(obj) - set(COLUMNS))}, "
             f"missing {sorted(set(COLUMNS) - set(obj))}")
        row = {}
        for k in COLUMNS:
            v = obj[k]
            if v is None:
                row[k] = ""
            elif k in INT_COLUMNS:
                assert isinstance(v, int) and not isinstance(v, bool), \
                    f"NDJSON line {n}: {k} is not an integer: {v!r}"
                row[k] = str(v)
            elif k in DECIMAL_COLUMNS:
                assert isinstance(v, (int, Decimal)) \
                    and not isinstance(v, bool), \
                    f"NDJSON line {n}: {k} is not a number: {v!r}"
                row[k] = Decimal(v)
            elif k in ("inIf", "outIf", "exporter", "app"):
                # a name, or the number where no name exists
                assert isinstance(v, (str, int)) and not isinstance(v, bool),\
                    f"NDJSON line {n}: {k} = {v!r}"
                row[k] = str(v)
            else:
                assert isinstance(v, str), \
                    f"NDJSON line {n}: {k} is not a string: {v!r}"
                row[k] = v
        out.append(row)
    return out


def sqlite_open(path):
    # docs/design.md: readable in place with immutable=1
    return sqlite3.connect(f"file:{path}?immutable=1", uri=True)


def sqlite_rows(path):
    con = sqlite_open(path)
    try:
        cols = [r[1] for r in con.execute("pragma table_info(flows)")]
        assert cols[:len(COLUMNS)] == COLUMNS, \
            f"flows table columns:\n  {cols}\nwant first:\n  {COLUMNS}"
        n = con.execute("select count(*) from flows").fetchone()[0]
        sel = ", ".join(f'"{c}"' for c in COLUMNS)
        out = []
        for r in con.execute(f"select {sel} from flows"):
            row = {}
            for k, v in zip(COLUMNS, r):
                if v is None:
                    row[k] = ""
                elif k in DECIMAL_COLUMNS:
                    row[k] = Decimal(repr(v)) if isinstance(v, float) \
                        else Decimal(v)
                else:
                    row[k] = str(v)
            out.append(row)
        assert n == len(out)
        return out
    finally:
        con.close()


def output_rows(f):
    """The rows of a run's output, whatever its format."""
    if f.out is None:
        return parse_csv_bytes(f.stdout)
    assert f.out.exists(), f"no output file {f.out}\n{f.describe()}"
    name = f.out.name
    if name.endswith(".csv"):
        return parse_csv_bytes(f.out.read_bytes())
    if name.endswith(".ndjson"):
        return ndjson_rows(f.out)
    if name.endswith(".sqlite"):
        return sqlite_rows(f.out)
    raise AssertionError(f"unknown output {f.out}")


def assert_ids_equal(got_ids, truth, what=""):
    """got_ids: the flowId column; truth: a /_sim/truth answer with ids."""
    dups = [i for i, n in Counter(got_ids).items() if n > 1]
    want = set(truth["ids"])
    got = set(got_ids)
    missing, extra = want - got, got - want
    assert not dups and not missing and not extra, \
        (f"{what}output != truth: {len(got_ids)} rows, truth {truth['count']};"
         f" {len(dups)} duplicated (e.g. {dups[:3]}), {len(missing)} missing "
         f"(e.g. {sorted(missing)[:3]}), {len(extra)} extra "
         f"(e.g. {sorted(extra)[:3]})")
    assert len(got_ids) == truth["count"]
    assert digest_of(got_ids) == truth["digest"], "digest differs from truth"


def truth_of(sim, ip, S, E, peer=None, records=False):
    t = sim.truth(ip, S, E, peer, list="records" if records else "ids")
    if records:
        t["ids"] = [r["id"] for r in t["records"]]
    assert len(t["ids"]) == t["count"]
    return t


class Lookups:
    """The collector's lookup tables, for resolving ids to names."""

    def __init__(self, sim, token):
        g = sim.get_json("/api/v1/hostgroups", token=token)["hostgroups"]
        a = sim.get_json("/api/v1/applications", token=token)["applications"]
        x = sim.get_json("/api/v1/exporters", token=token)["exporters"]
        self.groups = {h["id"]: h["name"] for h in g}
        self.apps = {h["id"]: h["name"] for h in a}
        self.exporters = {h["id"]: h["name"] for h in x}
        self.ifaces = {(h["id"], i["ifindex"]): i["name"]
                       for h in x for i in h.get("interfaces", [])}
