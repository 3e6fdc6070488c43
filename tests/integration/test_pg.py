"""The team's shared cache on a real PostgreSQL (cache/pg.c, issue 17).

A throwaway cluster (tests/pg/cluster.py: initdb into a temporary
directory, a Unix socket only, stopped in a finally) serves the module;
tests/pg/pgrun.c runs cache_pg_* calls from the command line, one session
a process, so that two processes are two machines.  What is checked is
what a team would see: disjoint claims that cover the span, a window sent
twice stored once, a holder killed or paused past its session's expiry,
PostgreSQL restarted in the middle, a migration, and no password in any
message.  The waits are bounded (the session's expiry, a few seconds),
never asserted as timings.

Skipped, with the package named, only when PostgreSQL is not installed.
"""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pg"))

import cluster  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
PGRUN = Path(os.environ.get("PGRUN") or REPO / "build/tests/pg/pgrun")
RUN_TIMEOUT_S = 120
# Short sessions, so that an expiry takes seconds: heartbeat 1 s, expiry 3 s.
FAST = ["--heartbeat", "1", "--expiry", "3"]


@pytest.fixture(scope="module")
def pg():
    if cluster.find_bindir() is None:
        pytest.skip(cluster.MISSING)
    if not PGRUN.exists():
        pytest.fail(f"{PGRUN} is missing: build it (ninja -C build)")
    with cluster.Cluster() as c:
        yield c


def extra(tag):
    """The 'extra' pgrun writes for a tag: a backslash, a tab, a newline and
    a carriage return in it, which COPY's text format must escape."""
    return '{"tag":"%s","esc":"\\\\\t\n\r"}' % tag


def pgrun(pg, subject, *steps, opts=(), conninfo=None, check=True):
    r = subprocess.run([str(PGRUN), *opts, conninfo or pg.conninfo(), subject, *steps],
                       capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def spawn(pg, subject, *steps, opts=()):
    """A pgrun that stops at its 'sync' step; returns once it said ready."""
    p = subprocess.Popen([str(PGRUN), *opts, pg.conninfo(), subject, *steps],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    return p


def wait_ready(p):
    lines = []
    while True:
        line = p.stdout.readline()
        assert line, f"pgrun ended before 'ready': {lines} {p.stderr.read()}"
        if line.strip() == "ready":
            return lines
        lines.append(line.strip())


def go(p):
    """Let a pgrun waiting at 'sync' go on."""
    p.stdin.write("\n")
    p.stdin.flush()


def finish(p):
    try:
        out, errs = p.communicate(timeout=RUN_TIMEOUT_S)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return p.returncode, out, errs


def parse_claim(line):
    """'claim mine=0:5,7:9 others= done=' -> {'mine': [(0,5),(7,9)], ...}"""
    assert line.startswith("claim "), line
    out = {}
    for part in line.split()[1:]:
        k, _, v = part.partition("=")
        out[k] = [tuple(int(x) for x in s.split(":")) for s in v.split(",") if s]
    return out


def union(ivals):
    res = []
    for s, e in sorted(ivals):
        if res and s <= res[-1][1]:
            res[-1] = (res[-1][0], max(res[-1][1], e))
        else:
            res.append((s, e))
    return res


def count(pg, sql):
    return int(pg.psql(sql))


def test_simultaneous_claims_are_disjoint_and_cover_the_span(pg):
    """Two sessions claim at the same moment (each connected, then both
    released at once), many rounds, with equal and overlapping spans: the
    claims they get never overlap and together cover both spans; nothing
    is waited for, nothing refused."""
    subject = "10.0.1.1"
    for r in range(30):
        base = r * 10000
        spans = [(base, base + 1000),
                 (base, base + 1000) if r % 2 else (base + 400, base + 1600)]
        procs = [spawn(pg, subject, "sync", "claim", str(s), str(e), "sync")
                 for s, e in spans]
        try:
            for p in procs:
                wait_ready(p)
            for p in procs:          # both go at once
                go(p)
            claims = [parse_claim(wait_ready(p)[-1]) for p in procs]
            for p in procs:
                go(p)
        finally:
            results = [finish(p) for p in procs]
        for rc, _, errs in results:
            assert rc == 0, errs
        mine = [iv for c in claims for iv in c["mine"]]
        assert union(mine) == union(spans), (spans, claims)
        assert sum(e - s for s, e in mine) == sum(e - s for s, e in union(spans)), \
            f"claims overlap: {claims}"
        for c in claims:
            assert c["done"] == []


def put_twice(pg, subject, first, second):
    """One session claims [0, 1000) of subject, puts the window with
    'first' made-up records, then again with 'second', and marks it done:
    the SQL condition that selects the subject's rows."""
    pgrun(pg, subject, "claim", "0", "1000", "put", "0", "1000", str(first), "A",
          "put", "0", "1000", str(second), "A", "done", "0", "1000")
    return f"subject='{subject}'"


def test_window_sent_twice_adds_nothing_twice(pg, tmp_path):
    """A window put twice (a retry after a lost answer) holds each record
    once, one coverage row; a second session sees the span done; pulled
    twice into a local SQLite cache, it is there once, values intact
    (COPY's escapes round trip)."""
    subject = "10.0.2.1"
    where = put_twice(pg, subject, 50, 50)
    assert count(pg, f"SELECT count(*) FROM flows WHERE {where}") == 50
    assert count(pg, f"SELECT count(*) FROM coverage WHERE {where}") == 1
    r = pgrun(pg, subject, "claim", "0", "1000")
    assert parse_claim(r.stdout.strip()) == {"mine": [], "others": [], "done": [(0, 1000)]}
    local = tmp_path / "local"
    for _ in range(2):
        r = pgrun(pg, subject, "pull", str(local), "0", "1000")
    assert r.stdout.strip() == "pulled 0"   # the second pull had nothing to add
    db = next(local.glob("*.db"))
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT count(*), count(DISTINCT extra), min(extra),"
                           " min(src_groups) FROM flows").fetchone()
        covers = con.execute("SELECT start, \"end\", records FROM coverage").fetchall()
    assert rows == (50, 1, extra("A"), "3;12")
    assert covers == [(0, 1000, 50)]


def test_resent_window_with_more_records_adds_only_the_new(pg):
    """A window sent again with more records (a window whose answer grew, a
    resend after a reconnect): the first COPY straight into flows meets a
    key there already (SQLSTATE 23505), rolls back and the window goes the
    ON CONFLICT way: the records there stay once, the new ones are added."""
    # 50 records at 0, 20, 40, ... then 100 at 0, 10, 20, ...: only (0, r0)
    # is the same record in both
    where = put_twice(pg, "10.0.2.2", 50, 100)
    assert count(pg, f"SELECT count(*) FROM flows WHERE {where}") == 149
    assert count(pg, f"SELECT count(DISTINCT (start, id)) FROM flows WHERE {where}") == 149
    assert count(pg, f"SELECT count(*) FROM coverage WHERE {where} AND records = 100") == 1


def test_killed_holder_expires_and_another_finishes(pg):
    """kill -9 of a session holding a claim, one window written: another
    session waits for it (it is not asked of the collector), claims the
    span once the dead session expired, writes every window and marks it
    done; each record is stored once."""
    subject = "10.0.3.1"
    a = spawn(pg, subject, "claim", "0", "1000", "put", "0", "500", "30", "A", "sync",
              opts=FAST)
    try:
        out = wait_ready(a)
        assert parse_claim(out[0])["mine"] == [(0, 1000)]
        os.kill(a.pid, signal.SIGKILL)
    finally:
        finish(a)
    r = pgrun(pg, subject, "claim", "0", "1000")
    first = parse_claim(r.stdout.strip())
    assert first["mine"] == [] and first["others"] == [(0, 1000)]
    r = pgrun(pg, subject, "claimwait", "0", "1000", "60000",
              "put", "0", "500", "30", "B", "put", "500", "1000", "30", "B",
              "done", "0", "1000", opts=FAST)
    assert parse_claim(r.stdout.splitlines()[0])["mine"] == [(0, 1000)]
    where = f"subject='{subject}'"
    assert count(pg, f"SELECT count(*) FROM flows WHERE {where}") == 60
    assert count(pg, f"SELECT count(DISTINCT (start, id)) FROM flows WHERE {where}") == 60
    assert pg.psql(f"SELECT span, state FROM claims WHERE {where}") == "[0,1000)|done"


def test_paused_past_expiry_cannot_write_over(pg):
    """A session stopped with SIGSTOP past its expiry loses its claim to
    another, which finishes the span; resumed, its write fails with a
    clear error and adds nothing."""
    subject = "10.0.4.1"
    a = spawn(pg, subject, "claim", "0", "1000", "sync", "put", "0", "1000", "45", "A",
              "done", "0", "1000", opts=FAST)
    try:
        wait_ready(a)
        os.kill(a.pid, signal.SIGSTOP)
        r = pgrun(pg, subject, "claimwait", "0", "1000", "60000",
                  "put", "0", "1000", "40", "B", "done", "0", "1000", opts=FAST)
        assert parse_claim(r.stdout.splitlines()[0])["mine"] == [(0, 1000)]
        os.kill(a.pid, signal.SIGCONT)
        go(a)
    finally:
        rc, _, errs = finish(a)    # SIGKILL ends it even when stopped
    assert rc == 2, errs
    assert "ESTALE" in errs and "no longer claimed by this session" in errs, errs
    where = f"subject='{subject}'"
    assert count(pg, f"SELECT count(*) FROM flows WHERE {where}") == 40
    assert count(pg, f"SELECT count(*) FROM flows WHERE {where} AND extra LIKE '%\"A\"%'") == 0
    assert pg.psql(f"SELECT records FROM coverage WHERE {where}") == "40"


def test_restart_mid_operation_is_a_clear_error(pg):
    """PostgreSQL restarted between two windows of a claim: the next write
    fails at once with the connection named as lost (no hang), the span is
    not done, the first window stays whole; the span is claimed again once
    the session expired, and finished."""
    subject = "10.0.5.1"
    a = spawn(pg, subject, "claim", "0", "1000", "put", "0", "500", "20", "A", "sync",
              "put", "500", "1000", "20", "A", "done", "0", "1000", opts=FAST)
    try:
        wait_ready(a)
        pg.restart()
        go(a)
    finally:
        rc, _, errs = finish(a)
    assert rc == 2, errs
    assert "ECONNRESET" in errs and "was lost" in errs, errs
    where = f"subject='{subject}'"
    assert count(pg, f"SELECT count(*) FROM claims WHERE {where} AND state='done'") == 0
    assert count(pg, f"SELECT count(*) FROM flows WHERE {where}") == 20
    r = pgrun(pg, subject, "claimwait", "0", "1000", "60000", "put", "0", "500", "20", "B",
              "put", "500", "1000", "20", "B", "done", "0", "1000", opts=FAST)
    assert parse_claim(r.stdout.splitlines()[0])["mine"] == [(0, 1000)]
    assert count(pg, f"SELECT count(*) FROM flows WHERE {where}") == 40


def test_server_gone_fails_within_the_connect_timeout(pg, tmp_path):
    """No server at the target: the open fails with the cause, promptly."""
    r = pgrun(pg, "10.0.6.1", "claim", "0", "1000",
              conninfo=f"host={tmp_path} port=1 dbname=flows user=analyst", check=False)
    assert r.returncode == 2 and "ECONNREFUSED" in r.stderr, r.stderr
    assert "cannot connect to the shared cache" in r.stderr


def old_database(pg, version, subject, start, flow_id):
    """A database flows_vVERSION made at that schema version, holding pgrun's
    collector and one flow of subject (pkts 7): its conninfo."""
    db = f"flows_v{version}"
    pg.psql(f"CREATE DATABASE {db} OWNER analyst", db="postgres")
    ci = pg.conninfo(db=db)
    pgrun(pg, subject, opts=["--schema-upto", str(version)], conninfo=ci)
    assert pg.psql("SELECT value FROM flowfs_meta", db=db) == str(version)
    pg.psql("INSERT INTO collectors(url,product,driver)"
            " VALUES ('http://collector.test','flowsim','flowapi');"
            "INSERT INTO flows(collector,subject,start,id,\"end\",src,dst,pkts)"
            f" SELECT id,'{subject}',{start},'{flow_id}',{start + 10},"
            " '\\x00000000000000000000ffff0a000701'::bytea,"
            " '\\x00000000000000000000ffffc0a80001'::bytea, 7 FROM collectors", db=db)
    return ci


def test_migration_from_version_1(pg, tmp_path):
    """A database made at schema version 1 (no 'extra' column), with a flow
    in it, is migrated on open: the flow is kept (extra NULL), the version
    is 3, and it reads back into a local cache; a database newer than the
    program is refused and left untouched."""
    ci = old_database(pg, 1, "10.0.7.1", 100, "old")
    pg.psql("INSERT INTO coverage SELECT id,'10.0.7.1','',0,1000,1,false,1 FROM collectors",
            db="flows_v1")
    r = pgrun(pg, "10.0.7.1", "claim", "0", "1000", "pull", str(tmp_path / "l"), "0", "1000",
              conninfo=ci)
    assert r.stdout.splitlines()[-1] == "pulled 1"
    assert pg.psql("SELECT value FROM flowfs_meta", db="flows_v1") == "3"
    assert pg.psql("SELECT id, pkts, extra IS NULL FROM flows", db="flows_v1") == "old|7|t"
    with sqlite3.connect(next((tmp_path / "l").glob("*.db"))) as con:
        assert con.execute("SELECT id, pkts, extra FROM flows").fetchall() == [("old", 7, None)]
    pg.psql("UPDATE flowfs_meta SET value='99'", db="flows_v1")
    r = pgrun(pg, "10.0.7.1", "claim", "0", "1000", conninfo=ci, check=False)
    assert r.returncode == 2 and "EPROTO" in r.stderr, r.stderr
    assert "schema version 99, newer than this program's (3)" in r.stderr
    assert pg.psql("SELECT value FROM flowfs_meta", db="flows_v1") == "99"


def test_migration_from_version_2_keeps_records_keyed(pg):
    """A database at schema version 2 (flows keyed on the subject's and the
    id's text) with a flow in it is migrated to version 3 (their digests):
    the flow is kept, and a window sent again holding that same record
    (same subject, start and id) adds only the others: the key the server
    computed for the old row is the one it computes for the new."""
    # the record pgrun's "put 0 1000 N" makes first: id r0 at 0
    ci = old_database(pg, 2, "10.0.7.2", 0, "r0")
    pgrun(pg, "10.0.7.2", "claim", "0", "1000", "put", "0", "1000", "4", "A", "done", "0",
          "1000", conninfo=ci)
    assert pg.psql("SELECT value FROM flowfs_meta", db="flows_v2") == "3"
    assert pg.psql("SELECT count(*), count(DISTINCT (start, id)), sum(pkts) FROM flows",
                   db="flows_v2") == "4|4|16"


def test_password_never_printed_and_libpq_conventions(pg, tmp_path):
    """A password given in a key=value string or a URL never appears in a
    message (the target is shown without it); a service name from
    PGSERVICEFILE and a postgresql:// URL reach the cluster."""
    for ci in (f"host={tmp_path} port=1 dbname=flows user=analyst password=hunter2",
               f"postgresql://analyst:hunter2@{str(tmp_path).replace('/', '%2F')}:1/flows"):
        r = pgrun(pg, "10.0.8.1", "claim", "0", "10", conninfo=ci, check=False)
        assert r.returncode == 2, r.stderr
        assert f"host={tmp_path} port=1 dbname=flows user=analyst" in r.stderr, r.stderr
        assert "hunter2" not in r.stderr + r.stdout
    svc = tmp_path / "pg_service.conf"
    svc.write_text(f"[team]\nhost={pg.sock}\nport={pg.port}\ndbname=flows\nuser=analyst\n")
    env = dict(os.environ, PGSERVICEFILE=str(svc))
    r = subprocess.run([str(PGRUN), "service=team", "10.0.8.1", "claim", "0", "10", "release",
                        "0", "10"], capture_output=True, text=True, env=env,
                       timeout=RUN_TIMEOUT_S)
    assert r.returncode == 0, r.stderr
    r = pgrun(pg, "10.0.8.1", "claim", "0", "10", "release", "0", "10", conninfo=pg.url())
    assert parse_claim(r.stdout.splitlines()[0])["mine"] == [(0, 10)]


def test_waiter_gets_the_span_done_not_claimed(pg, tmp_path):
    """A session that needs a span another holds waits (it claims nothing
    of it) and ends with the span done once the holder marks it done; the
    holder's gap comes with the pull into the waiter's local cache."""
    subject = "10.0.9.1"
    a = spawn(pg, subject, "claim", "0", "1000", "sync", "put", "0", "600", "10", "A",
              "gap", "600", "1000", "done", "0", "1000")
    b = None
    try:
        wait_ready(a)
        b = subprocess.Popen([str(PGRUN), pg.conninfo(), subject, "claim", "0", "1000",
                              "claimwait", "0", "1000", "60000",
                              "pull", str(tmp_path / "b"), "0", "1000"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = b.stdout.readline().strip()
        go(a)
    finally:
        rc_a, _, errs_a = finish(a)
        rc_b, out_b, errs_b = finish(b) if b else (None, "", "")
    assert rc_a == 0, errs_a
    assert rc_b == 0, errs_b
    assert parse_claim(first) == {"mine": [], "others": [(0, 1000)], "done": []}
    lines = out_b.splitlines()
    assert parse_claim(lines[0]) == {"mine": [], "others": [], "done": [(0, 1000)]}
    assert lines[1] == "pulled 1"
    with sqlite3.connect(next((tmp_path / "b").glob("*.db"))) as con:
        assert con.execute("SELECT count(*) FROM flows").fetchone() == (10,)
        assert con.execute("SELECT start, \"end\", peer, seen, reason FROM gaps").fetchall() \
            == [(600, 1000, "0.0.0.0/0", 5000, "saturated")]


def test_live_holder_keeps_its_claim_past_the_expiry(pg):
    """A session alive and idle longer than its expiry keeps its claim:
    its heartbeat thread beats (every second, expiry 10 s, so that a
    loaded machine does not make it miss), and another session still sees
    the span held; then the holder finishes it."""
    subject = "10.0.10.1"
    a = spawn(pg, subject, "claim", "0", "1000", "sync", "put", "0", "1000", "5", "A",
              "done", "0", "1000", opts=["--heartbeat", "1", "--expiry", "10"])
    try:
        wait_ready(a)
        time.sleep(13)
        r = pgrun(pg, subject, "claim", "0", "1000")
        go(a)
    finally:
        rc, _, errs = finish(a)
    assert parse_claim(r.stdout.strip()) == {"mine": [], "others": [(0, 1000)], "done": []}
    assert rc == 0, errs
