"""Issue 12, items 5 and 6: what flowfetch and flowfs bound, end to end.

- Tokens of real identity providers (1 to 4 KiB, and up to 16 KiB) work
  whole against flowsim; a longer one is refused with a message that says
  so, before any request, and is never cut.
- A collector whose answer holds more records than the cap it asked for is
  answering garbage: retried, then exit 1 naming the cap; an answer larger
  than the cap's records can be is refused (EFBIG) without growing
  flowfetch's memory to its size.
- A cap under 100, from /info or from --max-records, is refused at once.

The hostile collectors are a small http.server in this process, on
127.0.0.1 port 0, stopped in a finally.

Run:  /usr/bin/python3 -m pytest tests/integration/test_limits.py -q
"""

import json
import re
import secrets
import string
import subprocess
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import (NOW_ISO, NOW_MS, RUN_TIMEOUT_S, assert_ids_equal,
                      fetch_cmd, fetch_env, flowfetch, output_rows,
                      parse_csv_bytes, truth_of)
from mount import clean_env, mounted_at, require_flowfs

HOUR = 3600 * 1000
DAY = 24 * HOUR
YDAY0 = NOW_MS - 12 * HOUR - DAY        # 2026-11-28T00:00:00Z
YD = "2026-11-28"
TOKEN_MAX = 16384


def token_of(n):
    """A bearer token of n characters (the alphabet of JWTs)."""
    abc = string.ascii_letters + string.digits + "-_."
    return "".join(secrets.choice(abc) for _ in range(n))


def api_requests(sim):
    """Every request flowsim saw but those to its /_sim test endpoints."""
    return sum(sum(v.values()) for k, v in sim.counters()["endpoints"].items()
               if k != "/_sim")


def write_token(path, tok):
    path.write_text(tok + "\n")
    path.chmod(0o600)
    return path


# ---- tokens ------------------------------------------------------------------------

@pytest.mark.parametrize("size", [4096, TOKEN_MAX])
def test_long_token_works_whole(make_sim, tmp_path, size):
    """flowsim asks for a token of 4 KiB (and of exactly 16 KiB); flowfetch
    sends it whole (from the file, and from FLOWFS_TOKEN): exit 0, the
    flows of the truth.  A token cut anywhere would be refused (401)."""
    tok = token_of(size)
    tf = write_token(tmp_path / "token", tok)
    s = make_sim("--now", NOW_ISO, "--token-file", str(tf))
    url = f"http://127.0.0.1:{s.port}"
    S, E = YDAY0 + 8 * HOUR, YDAY0 + 10 * HOUR
    truth = truth_of(s, "10.0.1.10", S, E)
    from_, to = "2026-11-28T08:00:00Z", "2026-11-28T10:00:00Z"
    f = flowfetch(url, "10.0.1.10", from_, to, tmp_path / "a.csv",
                  cache=tmp_path / "c1", token_file=tf).ok()
    rows = output_rows(f)
    assert_ids_equal([r["flowId"] for r in rows], truth)
    assert tok not in f.stderr

    f = flowfetch(url, "10.0.1.10", from_, to, tmp_path / "b.csv",
                  cache=tmp_path / "c2", token=tok).ok()
    rows = output_rows(f)
    assert_ids_equal([r["flowId"] for r in rows], truth)


@pytest.mark.parametrize("where", ["file", "environment"])
def test_token_over_16k_refused(make_sim, tmp_path, where):
    """A 20 KiB token is refused with a message naming the limit, before
    any request; it is never cut and sent (it is not printed either)."""
    tok = token_of(20 * 1024)
    s = make_sim("--now", NOW_ISO, "--token", "x")
    url = f"http://127.0.0.1:{s.port}"
    tf = env_tok = None
    if where == "file":
        tf = write_token(tmp_path / "token", tok)
    else:
        env_tok = tok
    before = api_requests(s)
    f = flowfetch(url, "10.0.1.10", YD, YD, tmp_path / "a.csv",
                  cache=tmp_path / "c", token_file=tf, token=env_tok)
    assert f.rc == 2, f.describe()
    assert re.search(r"longer than 16384 bytes \(16 KiB\)", f.stderr), f.describe()
    assert tok[:64] not in f.stderr
    assert api_requests(s) == before, "a request was sent with the long token"
    assert not (tmp_path / "a.csv").exists()


def test_flowfs_long_token(make_sim, mounts, tmp_path):
    """flowfs with a 4 KiB token file: a day folder reads exactly the
    truth.  With a 20 KiB one it refuses to mount, saying why."""
    tok = token_of(4096)
    tf = write_token(tmp_path / "token", tok)
    s = make_sim("--now", NOW_ISO, "--token-file", str(tf))
    url = f"http://127.0.0.1:{s.port}"
    m = mounts(url=url, token_file=tf)
    data = m.path("10.0.1.10", YD, "flows.csv").read_bytes()
    rows = parse_csv_bytes(data)
    assert_ids_equal([r["flowId"] for r in rows],
                     truth_of(s, "10.0.1.10", YDAY0, YDAY0 + DAY))
    m.stop()                    # its problems fail the test at teardown

    long_tf = write_token(tmp_path / "long", token_of(20 * 1024))
    before = api_requests(s)
    rc, err = flowfs_refuses(url, tmp_path / "mnt-long",
                             f"token_file={long_tf},cache={tmp_path / 'c-long'}")
    assert rc != 0, err
    assert re.search(r"longer than 16384 bytes \(16 KiB\)", err), err
    assert api_requests(s) == before


def flowfs_refuses(url, mnt, opts):
    """Run flowfs -f on mnt, which it must refuse to mount: (exit status,
    stderr).  Should it mount (or hang) it is unmounted and stopped, by its
    own pid, and the test fails."""
    mnt.mkdir()
    errp = mnt.parent / (mnt.name + ".stderr")
    with open(errp, "wb") as errf:
        p = subprocess.Popen([str(require_flowfs()), "-f", "-o", opts, url,
                              str(mnt)], stdin=subprocess.DEVNULL,
                             stdout=errf, stderr=errf, env=clean_env())
    mounted = False
    try:
        p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass
    finally:
        mounted = bool(mounted_at(mnt))
        if mounted:
            subprocess.run(["fusermount3", "-u", "-z", str(mnt)],
                           capture_output=True, timeout=10)
        if p.poll() is None:
            p.kill()
        p.wait()
    err = errp.read_text(errors="replace")
    assert not mounted, f"flowfs mounted {mnt}:\n{err}"
    return p.returncode, err


# ---- a hostile collector ---------------------------------------------------------------

class Hostile:
    """A flowapi/1 collector in this process: /info says max_records
    'cap' (or nothing, cap None); every /flows answer holds 'answer' records
    that all start at the window's start, with one peer, well formed."""

    def __init__(self, cap, answer=0):
        self.cap, self.answer = cap, answer
        self.flows_requests = 0
        self.lock = threading.Lock()
        hostile = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def send(self, status, body):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                u = urllib.parse.urlsplit(self.path)
                q = dict(urllib.parse.parse_qsl(u.query))
                if u.path == "/api/v1/info":
                    info = {"product": "hostile", "version": "1",
                            "dialect": "flowapi/1", "retention_days": 30,
                            "now": NOW_MS, "export_delay_s": 60}
                    if hostile.cap is not None:
                        info["max_records"] = hostile.cap
                    return self.send(200, json.dumps(info).encode())
                if u.path == "/api/v1/flows":
                    with hostile.lock:
                        hostile.flows_requests += 1
                    return self.send(200, hostile.body(q))
                return self.send(404, b'{"error":"no such endpoint"}')

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass        # flowfetch hangs up on an answer it refuses

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)

    def body(self, q):
        start, ip = int(q["start"]), q["ip"]
        recs = ",".join(
            f'{{"id":"r{i}","start":{start},"end":{start},"src":"{ip}",'
            f'"dst":"192.0.2.9","proto":6,"sport":{1024 + i % 60000},'
            f'"dport":443}}' for i in range(self.answer))
        return f'{{"flows":[{recs}]}}'.encode()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def fetch_hostile(h, tmp_path, *extra):
    """flowfetch against h for an hour: (exit status, stderr)."""
    f = flowfetch(h.url, "10.0.1.10", "2026-11-28T10:00:00Z",
                  "2026-11-28T11:00:00Z", tmp_path / "out.csv",
                  cache=tmp_path / "cache", extra=extra)
    return f.rc, f.stderr


# Runs argv[2:], killing it after argv[1] seconds, and prints its exit status
# and its peak RSS (KiB): rusage of a child of this small process, since a
# child of the test's own process counts the test's RSS too (Linux keeps
# the high-water mark of the memory a child had before exec).
RSS_HELPER = """
import os, subprocess, sys, threading
p = subprocess.Popen(sys.argv[2:], stdin=subprocess.DEVNULL,
                     stdout=subprocess.DEVNULL)
t = threading.Timer(float(sys.argv[1]), p.kill)
t.start()
_, status, ru = os.wait4(p.pid, 0)
t.cancel()
print(os.waitstatus_to_exitcode(status), ru.ru_maxrss)
"""


def peak_rss_kib(cmd, env):
    """Run cmd to the end (killed after RUN_TIMEOUT_S): (exit status,
    stderr, its peak RSS in KiB)."""
    p = subprocess.run([sys.executable, "-c", RSS_HELPER, str(RUN_TIMEOUT_S),
                        *map(str, cmd)], stdin=subprocess.DEVNULL,
                       capture_output=True, env=env,
                       timeout=RUN_TIMEOUT_S + 30)
    rc, rss = (int(x) for x in p.stdout.split())
    return rc, p.stderr.decode(errors="replace"), rss


def test_answer_over_cap_is_retried_then_fails(tmp_path):
    """/info says 100; every answer holds 150 records.  That is not what a
    collector may send: each is refused like garbage and the window asked
    again, within --retries; then exit 1, the cause naming the cap."""
    with Hostile(cap=100, answer=150) as h:
        rc, err = fetch_hostile(h, tmp_path, "--retries", "2")
        assert rc == 1, err
        assert "an answer of 150 records, more than the 100 asked for" in err, err
        assert "max_records" in err and "failed 3 times" in err, err
        assert h.flows_requests == 3, h.flows_requests
    assert not (tmp_path / "out.csv").exists()


def test_answer_larger_than_the_cap_allows(tmp_path):
    """/info says 100; the answer holds 200,000 records (15 MB).  It is
    refused once it passes the bound of 100 records (100 x 4 KiB + 1 MiB),
    before it is read whole: exit 1 naming the bound, and flowfetch's
    memory stays far under what decoding it would take (about 250 MB)."""
    with Hostile(cap=100, answer=200000) as h:
        cmd = fetch_cmd(h.url, "10.0.1.10", "2026-11-28T10:00:00Z",
                        "2026-11-28T11:00:00Z", tmp_path / "out.csv",
                        cache=tmp_path / "cache", extra=["--retries", "1"])
        rc, err, rss = peak_rss_kib(cmd, fetch_env(tmp_path))
        assert rc == 1, err
        bound = 100 * 4096 + (1 << 20)
        assert f"an answer of more than {bound} bytes" in err, err
        assert h.flows_requests == 1, h.flows_requests     # EFBIG is fatal
        assert rss < 120 * 1024, f"peak RSS {rss} KiB"


@pytest.mark.parametrize("cap", [1, 50, 99])
def test_info_cap_under_100_refused(tmp_path, cap):
    """/info says max_records 1 (a day would be millions of windows), 50 or
    99: refused at open with a clear error, no window asked."""
    with Hostile(cap=cap) as h:
        rc, err = fetch_hostile(h, tmp_path)
        assert rc == 1, err
        assert f"says max_records {cap}: under 100" in err, err
        assert h.flows_requests == 0


@pytest.mark.parametrize("cap", [1, 50])
def test_option_cap_under_100_refused(tmp_path, cap):
    """--max-records under 100 (for a collector that does not say its
    cap) is refused the same way."""
    with Hostile(cap=None) as h:
        rc, err = fetch_hostile(h, tmp_path, "--max-records", str(cap))
        assert rc == 2, err     # a usage error: refused before the collector is asked
        assert f"--max-records {cap} is out of range: --max-records takes 100 to" in err, err
        assert h.flows_requests == 0


def test_cap_100_is_taken(tmp_path):
    """100 itself is a cap flowfs works with (an empty hour: exit 0)."""
    with Hostile(cap=100, answer=0) as h:
        rc, err = fetch_hostile(h, tmp_path)
        assert rc == 0, err
        assert h.flows_requests == 1


def test_flowfs_refuses_info_cap_1(tmp_path):
    """flowfs probes the collector in the foreground: a cap of 1 ends the
    mount command with the cause."""
    with Hostile(cap=1) as h:
        rc, err = flowfs_refuses(h.url, tmp_path / "mnt",
                                 f"cache={tmp_path / 'cache'}")
        assert rc != 0, err
        assert "says max_records 1: under 100" in err, err
        assert h.flows_requests == 0
