"""The benchmarks' own flowsim: started on 127.0.0.1:0 with a private token,
asked through its /_sim endpoints, stopped by its pid; and the closing lines
of a report section.  Shared by bench/engine.py, bench/fs.py, bench/soak.py
and bench/sna.py.

The reference dialect by default; Sim(..., dialect="sna") serves the SNA
dialect instead (docs/flowsim.md), with a private password, and its
token_file then holds the "user:password" a client of the SNA driver
reads; dialect="flowmon" serves the Flowmon dialect, its token_file
holding the "user:password" both flowsim and the driver read;
driver_url is the URL to give flowfetch or flowfs either way."""
import http.client
import json
import os
import secrets
import signal
import subprocess
import time
import traceback
import urllib.parse

NOW_ISO = "2026-11-29T12:00:00Z"


class Sim:
    """Our own flowsim: started on 127.0.0.1:0, stopped by its pid."""

    def __init__(self, binary, tmp, dialect="flowapi", args=()):
        """dialect: "flowapi" (the reference), "sna" or "flowmon"; args: more flowsim
        options (--max-records, --sna-query-ms, ...).  tmp holds this sim's
        files: one directory a sim."""
        self.tmp = tmp
        self.dialect = dialect
        self.token = secrets.token_hex(16)
        self.token_file = os.path.join(tmp, "token")
        port_file = os.path.join(tmp, "port")
        cmd = [binary, "--listen", "127.0.0.1:0", "--port-file", port_file,
               "--truth", "--now", NOW_ISO]
        if dialect == "sna":
            self.user = "bench"
            self.password_file = os.path.join(tmp, "password")
            self._private(self.password_file, self.token)
            self._private(self.token_file, f"{self.user}:{self.token}")
            cmd += ["--dialect", "sna", "--sna-user", self.user,
                    "--sna-password-file", self.password_file]
        elif dialect == "flowmon":
            self.user = "bench"
            self._private(self.token_file, f"{self.user}:{self.token}")
            cmd += ["--dialect", "flowmon", "--token-file", self.token_file]
        else:
            self._private(self.token_file, self.token)
            cmd += ["--token-file", self.token_file]
        self.log = open(os.path.join(tmp, "flowsim.log"), "w")
        self.proc = subprocess.Popen(cmd + list(args), stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log)
        self.port = 0
        for _ in range(200):
            if self.proc.poll() is not None:
                raise RuntimeError(f"flowsim exited with status {self.proc.returncode}")
            try:
                with open(port_file) as f:
                    self.port = int(f.read().strip() or 0)
            except (OSError, ValueError):
                pass
            if self.port:
                break
            time.sleep(0.05)
        if not self.port:
            self.stop()
            raise RuntimeError("flowsim did not start")
        self.url = f"http://127.0.0.1:{self.port}"
        self.driver_url = {"sna": "sna+", "flowmon": "flowmon+"}.get(dialect, "") + self.url
        self.conn = None

    @staticmethod
    def _private(path, text):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text + "\n")

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()

    def request(self, method, path, auth=False):
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            try:
                headers = {"Authorization": f"Bearer {self.token}"} if auth else {}
                self.conn.request(method, path, headers=headers)
                r = self.conn.getresponse()
                body = r.read()
                if r.status != 200:
                    raise RuntimeError(f"{method} {path.split('?')[0]}: HTTP {r.status}")
                return json.loads(body)
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise

    def flows_requests(self):
        """Requests /api/v1/flows has seen, whatever their status."""
        c = self.counters()
        return sum(c["endpoints"].get("/api/v1/flows", {}).values())

    def counters(self):
        return self.request("GET", "/_sim/counters")

    def truth(self, ip, start, end, key=None, peer=None):
        """(count, digest); key="sna" for the SNA driver's ids."""
        t = self.request("GET", f"/_sim/truth?{self._truth_query(ip, start, end, key, peer)}")
        return t["count"], t["digest"]

    def truth_ids(self, ip, start, end, key=None, peer=None):
        q = self._truth_query(ip, start, end, key, peer) + "&list=ids"
        return self.request("GET", f"/_sim/truth?{q}")["ids"]

    @staticmethod
    def _truth_query(ip, start, end, key, peer):
        params = {"ip": ip, "start": start, "end": end}
        if key:
            params["key"] = key
        if peer:
            params["peer"] = peer
        return urllib.parse.urlencode(params)

    def flows_url(self, ip, start, end):
        q = urllib.parse.urlencode({"ip": ip, "start": start, "end": end})
        return f"{self.url}/api/v1/flows?{q}"


def measure_guarded(b, measure, R):
    """measure(b, R), then b.close() whatever happens; an exception is
    printed and becomes one of b.problems, so that the report still shows
    what was measured."""
    try:
        measure(b, R)
    except Exception as e:
        traceback.print_exc()
        b.problems.append(f"the benchmark stopped early: {type(e).__name__}: {e}")
    finally:
        b.close()


def load_note(P, R, more=""):
    """Append the load average at the start and the end of a run (R's load0
    and load1, else now), and a warning when it passed the cores."""
    now = os.getloadavg()[0]
    P[-1] += (f" Load average (1 min) {R.get('load0', 0):.2f} at the start, "
              f"{R.get('load1', now):.2f} at the end.")
    load = max(R.get("load0", 0), R.get("load1", now))
    if load > os.cpu_count():
        P.append("")
        P.append(f"**The machine was loaded by other work** (load average up to {load:.1f} on "
                 f"{os.cpu_count()} cores): every time here, the baselines' too, is longer than "
                 f"on an idle machine{more}.")
    P.append("")


def bench_main(prog, ready, Bench, measure, report):
    """A benchmark's main: BUILD_DIR as the only argument, ready() says
    whether what it needs is there (else why, on stderr), then measure and
    print the section; problems are in the section, so the status is 0."""
    import sys
    if len(sys.argv) != 2:
        print(f"usage: {prog} BUILD_DIR", file=sys.stderr)
        return 2
    if not ready():
        return 1
    t_start = time.monotonic()
    b = Bench(sys.argv[1])
    R = {}
    measure_guarded(b, measure, R)
    print(report(b, R, t_start))
    return 0


def report_end(P, problems, t_start):
    """Append the run time and the problems seen to a section's lines P."""
    P.append(f"Benchmark run time: {time.monotonic() - t_start:.0f} s.")
    if problems:
        P.append("")
        P.append("Problems seen in this run:")
        P.append("")
        for p in problems:
            P.append(f"- {p}")
