"""The team's shared cache through the fronts (issue 17): flowfs -o
cache_url= and flowfetch --cache-url on one throwaway PostgreSQL
(tests/pg/cluster.py: initdb into a temporary directory, a Unix socket
only, stopped in a finally), against flowsim's truth and its request
counters.

- two mounts with their own local caches (two machines) read the same
  folders at once: flowsim is asked as many /flows requests as one mount
  alone asks (each window once), and both are exact;
- kill -9 of the mount that holds the claim, mid-download: the other ends
  the query once the dead session expired, exact, no row twice;
- kill -9 right after the mount says a folder is ready: a second machine
  reads it from the team's store alone, exact (nothing marked done before
  its flows were committed);
- PostgreSQL restarted mid-query: the read ends exact (the engine retries
  with a new session) and complete only when exact; a read after it is
  exact;
- a mount stopped (SIGSTOP) past its session's expiry while another
  finishes the folder, then resumed: it writes nothing over the finished
  spans (the shared store holds each flow once) and ends exact;
- flowfetch and flowfs on one PostgreSQL: what one fetched, the other
  reads without asking flowsim;
- a cache_url that is unreadable, unreachable or holds a password is
  refused at the start, on one line, the password never shown.

Sessions are short here (pg_heartbeat=1, pg_expiry=3) so that an expiry
takes seconds; flowsim answers every /flows request after 300 ms (--slow
1) so that a query is long enough to be interrupted.  Nothing is asserted
on timings.  Skipped only when PostgreSQL is not installed.
"""

import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import NOW_ISO, flowfetch, url_of
from mount import require_flowfs, run, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pg"))

import cluster  # noqa: E402
from test_pg import finish  # noqa: E402

CAP = 1000                      # --max-records: a host-day is dozens of windows
IPS = ["10.0.1.11", "10.0.1.10"]
DAY = "2026-11-27"
DAY0 = 1795737600000            # 2026-11-27T00:00:00Z
DAY_MS = 86400 * 1000
FAST = ["pg_heartbeat=1", "pg_expiry=3"]
READ_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def pg():
    if cluster.find_bindir() is None:
        pytest.skip(cluster.MISSING)
    with cluster.Cluster() as c:
        yield c


@pytest.fixture
def db(pg, request):
    """A database of its own for the test, owned by the cluster's role."""
    name = "t_" + request.node.name.lower().replace("[", "_").replace("]", "")[:40]
    pg.psql(f"CREATE DATABASE {name} OWNER {cluster.ROLE}", db="postgres")
    return name


def sim_of(make_sim, token_file, slow=False):
    args = ["--now", NOW_ISO, "--token-file", str(token_file), "--max-records", str(CAP)]
    if slow:
        args += ["--slow", "1", "--slow-ms", "300"]
    return make_sim(*args)


def flows_requests(sim):
    c = sim.counters()
    return sum(c.get("endpoints", {}).get("/api/v1/flows", {}).values())


def truth_ids(sim, ip):
    t = sim.truth(ip, DAY0, DAY0 + DAY_MS, list="ids")
    assert len(t["ids"]) == t["count"]
    return sorted(t["ids"])


def csv_ids(data):
    rows = csv.reader(io.StringIO(data.decode("utf-8"), newline=""))
    header = next(rows)
    i = header.index("flowId")
    return [r[i] for r in rows]


def read_folder(m, ip):
    """flows.csv of a day through the mount (cat, bounded): its ids sorted,
    checked against query.json, which must say complete."""
    d = m.path(ip, DAY)
    r = run(["cat", str(d / "flows.csv")], timeout=READ_TIMEOUT_S)
    assert r.returncode == 0, f"reading {d}/flows.csv: {r.stderr}\n{m.stderr_text()[-3000:]}"
    ids = csv_ids(r.stdout if isinstance(r.stdout, bytes) else r.stdout.encode())
    q = json.loads((d / "query.json").read_text())
    assert q["complete"] is True and not q["gaps"], q
    assert q["flows"] == len(ids), (q["flows"], len(ids))
    return sorted(ids)


def start_read(m, ip):
    """cat of a day's flows.csv in the background: its Popen."""
    return subprocess.Popen(["cat", str(m.path(ip, DAY, "flows.csv"))],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish_read(p, m):
    """The ids of a background read, which must succeed."""
    rc, out, err = finish(p)
    assert rc == 0, f"cat: {err!r}\n{m.stderr_text()[-3000:]}"
    return sorted(csv_ids(out))


def shared_rows(pg, db, ip):
    """(rows, distinct (start, id)) of ip's flows in the shared store."""
    out = pg.psql(f"SELECT count(*), count(DISTINCT (start, id)) FROM flows"
                  f" WHERE subject LIKE '{ip}%'", db=db)
    n, distinct = out.split("|")
    return int(n), int(distinct)


def pg_mount(mounts, sim, pg, db, name, extra=()):
    return mounts(url=url_of(sim), name=name,
                  opts=[f"cache_url={pg.url(db=db)}", *FAST, *extra])


def wait_requests(sim, base, k, what):
    assert wait_for(lambda: flows_requests(sim) - base >= k, 60), f"no {what} in 60 s"


def requests_of(m, ip):
    """The /flows requests each query of ip's day made, from the mount's
    log ("ready: N flows, R requests, ..."), in order."""
    pat = re.compile(r"/%s/%s: ready: \d+ flows, (\d+) requests" % (re.escape(ip), DAY))
    return [int(x) for x in pat.findall(m.stderr_text())]


def kill9_when(m, reader, until):
    """kill -9 the mount m once until() returns (False fails the test),
    its background reader ended either way."""
    try:
        assert until() is not False, m.stderr_text()[-3000:]
        m.want_status = -signal.SIGKILL
        os.kill(m.proc.pid, signal.SIGKILL)
        m.proc.wait(timeout=10)
    finally:
        reader.kill()
        reader.wait()


def test_two_mounts_ask_each_window_once(make_sim, token_file, mounts, pg, db):
    sim = sim_of(make_sim, token_file)
    a = pg_mount(mounts, sim, pg, db, "a")
    b = pg_mount(mounts, sim, pg, db, "b")
    base = flows_requests(sim)
    readers = [(m, ip, start_read(m, ip)) for ip in IPS for m in (a, b)]
    for m, ip, p in readers:
        assert finish_read(p, m) == truth_ids(sim, ip), f"{m.mnt} {ip}"
    asked = flows_requests(sim) - base
    # each folder was fetched by one machine (its windows each asked once,
    # as by one machine alone); the other asked nothing and read the team's
    total = 0
    for ip in IPS:
        per = [requests_of(m, ip) for m in (a, b)]
        assert sorted(len(x) for x in per) == [1, 1], per
        fetched = sorted(x[0] for x in per)
        assert fetched[0] == 0 and fetched[1] > 10, (ip, per)
        total += fetched[1]
        n, distinct = shared_rows(pg, db, ip)
        assert n == distinct == len(truth_ids(sim, ip))
        for m in (a, b):
            assert read_folder(m, ip) == truth_ids(sim, ip)
    assert asked == total, (asked, total)
    assert flows_requests(sim) - base == asked


def test_holder_killed_the_other_finishes(make_sim, token_file, mounts, pg, db):
    sim = sim_of(make_sim, token_file, slow=True)
    ip = IPS[0]
    a = pg_mount(mounts, sim, pg, db, "a")
    base = flows_requests(sim)
    kill9_when(a, start_read(a, ip),
               lambda: wait_requests(sim, base, 4, "the holder's first answers"))
    b = pg_mount(mounts, sim, pg, db, "b")
    assert read_folder(b, ip) == truth_ids(sim, ip)
    n, distinct = shared_rows(pg, db, ip)
    assert n == distinct == len(truth_ids(sim, ip))


def test_killed_right_after_ready_the_team_holds_it(make_sim, token_file, mounts, pg,
                                                   db):
    """kill -9 as soon as the mount's log says a folder is ready: what it
    called ready is in PostgreSQL already (each window committed there
    before its claim was marked done), so a second machine reads the folder
    exact from the team's store without asking flowsim, each flow once."""
    sim = sim_of(make_sim, token_file)
    ip = IPS[0]
    a = pg_mount(mounts, sim, pg, db, "a")
    kill9_when(a, start_read(a, ip), lambda: bool(wait_for(lambda: requests_of(a, ip),
                                                          READ_TIMEOUT_S, step=0.01)))
    assert requests_of(a, ip)[0] > 10
    b = pg_mount(mounts, sim, pg, db, "b")
    base = flows_requests(sim)
    assert read_folder(b, ip) == truth_ids(sim, ip)
    assert flows_requests(sim) == base, "the second machine asked flowsim for a ready folder"
    assert requests_of(b, ip) == [0]
    n, distinct = shared_rows(pg, db, ip)
    assert n == distinct == len(truth_ids(sim, ip))


def test_postgres_restarted_mid_query(make_sim, token_file, mounts, pg, db):
    sim = sim_of(make_sim, token_file, slow=True)
    ip = IPS[0]
    a = pg_mount(mounts, sim, pg, db, "a")
    mounts.allow(r"shared cache")
    base = flows_requests(sim)
    p = start_read(a, ip)
    try:
        wait_requests(sim, base, 4, "answers before the restart")
        pg.restart()
    finally:
        rc, out, _ = finish(p)
    q = json.loads((a.path(ip, DAY) / "query.json").read_text())
    if rc == 0:       # retried with a new session: exact and complete
        assert sorted(csv_ids(out)) == truth_ids(sim, ip)
        assert q["complete"] is True
    else:                       # a clear error, and not called complete
        assert q["complete"] is not True, q
    # nothing lost: the folder read again is exact, and so is the shared store
    assert read_folder(a, ip) == truth_ids(sim, ip)
    n, distinct = shared_rows(pg, db, ip)
    assert n == distinct == len(truth_ids(sim, ip))
    assert "new session" in a.stderr_text() or rc != 0, a.stderr_text()[-3000:]


def test_paused_past_expiry_writes_nothing_over(make_sim, token_file, mounts, pg, db):
    sim = sim_of(make_sim, token_file, slow=True)
    ip = IPS[0]
    a = pg_mount(mounts, sim, pg, db, "a")
    mounts.allow(r"shared cache", r"no longer claimed", r"expired")
    base = flows_requests(sim)
    p = start_read(a, ip)
    stopped = False
    try:
        wait_requests(sim, base, 4, "the holder's first answers")
        os.kill(a.proc.pid, signal.SIGSTOP)
        stopped = True
        b = pg_mount(mounts, sim, pg, db, "b")
        assert read_folder(b, ip) == truth_ids(sim, ip)   # after a's expiry
        n_b = shared_rows(pg, db, ip)
        os.kill(a.proc.pid, signal.SIGCONT)
        stopped = False
        assert finish_read(p, a) == truth_ids(sim, ip)
    finally:
        if stopped:
            os.kill(a.proc.pid, signal.SIGCONT)
        if p.poll() is None:
            p.kill()
            p.wait()
    assert n_b[0] == n_b[1] == len(truth_ids(sim, ip))
    assert shared_rows(pg, db, ip) == n_b
    # its claim was gone ("no longer claimed", "expired"), or, when the stop
    # fell inside one of its transactions, the server ended that transaction
    # after the session's expiry (idle_in_transaction_session_timeout) and
    # its connection "was lost"
    log = a.stderr_text()
    assert any(w in log for w in ("no longer claimed", "expired", "was lost")), log[-3000:]


def test_flowfetch_and_flowfs_share(make_sim, token_file, mounts, pg, db, tmp_path):
    sim = sim_of(make_sim, token_file)
    url = pg.url(db=db)
    # flowfetch fetches IPS[0]; the mount reads it without asking flowsim
    out = tmp_path / "f0.csv"
    flowfetch(url_of(sim), IPS[0], DAY, DAY, out, cache=tmp_path / "ff-cache",
              token_file=token_file, extra=["--cache-url", url, "--quiet"]).ok()
    assert sorted(csv_ids(out.read_bytes())) == truth_ids(sim, IPS[0])
    m = pg_mount(mounts, sim, pg, db, "m")
    base = flows_requests(sim)
    assert read_folder(m, IPS[0]) == truth_ids(sim, IPS[0])
    assert flows_requests(sim) == base, "the mount asked flowsim for what flowfetch had"
    # the mount reads IPS[1]; flowfetch, on a cache of its own, asks nothing
    assert read_folder(m, IPS[1]) == truth_ids(sim, IPS[1])
    base = flows_requests(sim)
    out = tmp_path / "f1.csv"
    flowfetch(url_of(sim), IPS[1], DAY, DAY, out, cache=tmp_path / "ff-cache2",
              token_file=token_file, extra=["--cache-url", url, "--quiet"]).ok()
    assert sorted(csv_ids(out.read_bytes())) == truth_ids(sim, IPS[1])
    assert flows_requests(sim) == base, "flowfetch asked flowsim for what the mount had"


@pytest.mark.parametrize("how", ["unreadable", "unreachable", "password"])
def test_bad_cache_url_refused_at_start(make_sim, token_file, tmp_path, pg, how):
    sim = sim_of(make_sim, token_file)
    bad = {
        "unreadable": "postgresql://[broken",
        "unreachable": f"postgresql://analyst@{str(tmp_path).replace('/', '%2F')}:1/flows",
        "password": "postgresql://analyst:s3cretpw@localhost/flows",
    }[how]
    f = flowfetch(url_of(sim), IPS[0], DAY, DAY, tmp_path / "x.csv",
                  cache=tmp_path / "c", token_file=token_file, extra=["--cache-url", bad])
    assert f.rc in (1, 2), f.describe()
    lines = [ln for ln in f.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("flowfetch: ") and "cache" in lines[0], \
        f.describe()
    assert "s3cretpw" not in f.stderr
    assert not (tmp_path / "x.csv").exists()
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    try:
        r = run([str(require_flowfs()), "-o",
                 f"token_file={token_file},cache={tmp_path / 'mc'},cache_url={bad}",
                 url_of(sim), str(mnt)], timeout=60)
    finally:
        if os.path.ismount(mnt):
            run(["fusermount3", "-u", "-z", str(mnt)])
            pytest.fail("flowfs mounted with a bad cache_url")
    err = r.stderr if isinstance(r.stderr, str) else r.stderr.decode()
    assert r.returncode != 0 and not os.path.ismount(mnt), err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("flowfs: ") and "cache" in lines[0], err
    assert "s3cretpw" not in err
