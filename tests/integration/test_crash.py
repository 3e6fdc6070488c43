"""Crash and restart, a full disk, and two mounts on one cache (issue 5,
items 2 to 4; meson test 'crash' of the suite 'faults').

- kill -9 of flowfs (the daemon, mounted with -f) and of flowfetch at seeded
  random points of a query of some forty /flows requests (--max-records
  1000, one host-day of about 21,000 flows), each point a number of /flows
  answers counted by /_sim/counters (a point past the end of the fetch
  kills while the files or the output are written); then what README.md
  says to do (fusermount3 -u of the dead mount and mount again, or run
  flowfetch again): the result equals the truth (ids, count, digest),
  nothing twice, the cache passes PRAGMA integrity_check right after the
  crash and after the rerun, and the reruns send fewer /flows requests than
  a cold run, on average.
- The cache on a small tmpfs that fills mid-query: flowfetch exits 1 naming
  the full disk, flowfs answers ENOSPC; the cache stays consistent; after
  the tmpfs grows (mount -o remount,size=) the same query ends with exactly
  the truth, asking only for what was not stored.  A disk that fills after
  the query, while a file is rendered: ENOSPC, and the next read once the
  disk has room renders it again (the error is not kept).
- Two flowfs mounts and a flowfetch on one cache directory, reading the
  same and different folders at once: each gets exactly the truth, the cache
  stays consistent, and what one fetched the others do not ask for again.

The kill points come from random.Random(SEED), the run's seed (conftest):
it is in every assertion message about a crash, in the report of a failed
test and in the JUnit report; FLOWFS_SEED=N replays a run.

Needs root (tmpfs), /dev/fuse, fusermount3 and sqlite3; else skipped.
Run:  /usr/bin/python3 -m pytest tests/integration/test_crash.py -q
"""

import csv
import errno
import hashlib
import io
import json
import os
import random
import secrets
import select
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import (NOW_ISO, SEED, fetch_cmd, flowfetch, require_flowfetch,
                      start_fetch, url_of)
from mount import mounted_at, require_flowfs, require_fuse, run

CAP = 1000                      # --max-records: dozens of requests a day
IP = "10.0.1.11"                # db-1: about 21,000 flows a day
DAY = "2026-11-27"
DAY_MS = 86400 * 1000
DAY0 = 1795737600000            # 2026-11-27T00:00:00Z
SLOW_MS = 20                    # every /flows answer waits: kill points land

FETCH_POINTS = 12               # kill -9 points of flowfetch
FLOWFS_POINTS = 10              # kill -9 points of flowfs
COLD_RUNS = 6                   # cold runs averaged for the comparison
RUN_TIMEOUT_S = 120


# ---- helpers ------------------------------------------------------------------

def day_ms(day):
    """'2026-11-25' -> (start, end) in ms, a UTC day."""
    d = int(day[-2:]) - 27
    return DAY0 + d * DAY_MS, DAY0 + (d + 1) * DAY_MS


def flows_requests(sim):
    c = sim.counters()
    return sum(c.get("endpoints", {}).get("/api/v1/flows", {}).values())


def digest_of(ids):
    return hashlib.sha256("".join(i + "\n" for i in sorted(ids))
                          .encode()).hexdigest()


class Truth:
    """/_sim/truth of a day, asked once."""

    def __init__(self, sim):
        self.sim = sim
        self.memo = {}

    def __call__(self, ip, day):
        if (ip, day) not in self.memo:
            s, e = day_ms(day)
            t = self.sim.truth(ip, s, e, list="ids")
            assert len(t["ids"]) == t["count"]
            self.memo[ip, day] = t
        return self.memo[ip, day]


def check_ids(ids, truth, what):
    """ids (a list, in file order) are exactly the truth: count, digest,
    the set, nothing twice."""
    got = set(ids)
    dups = len(ids) - len(got)
    want = set(truth["ids"])
    missing, extra = want - got, got - want
    assert not dups and not missing and not extra, (
        f"{what}: {len(ids)} flows, truth {truth['count']}: {dups} "
        f"duplicated, {len(missing)} missing (e.g. {sorted(missing)[:3]}), "
        f"{len(extra)} extra (e.g. {sorted(extra)[:3]}) [seed {SEED}]")
    assert len(ids) == truth["count"]
    assert digest_of(ids) == truth["digest"], f"{what}: digest [seed {SEED}]"


def csv_ids(data):
    """flows.csv bytes -> the flowId column, in file order."""
    rows = csv.reader(io.StringIO(data.decode("utf-8"), newline=""))
    header = next(rows)
    i = header.index("flowId")
    return [r[i] for r in rows]


def cache_db(cache):
    dbs = sorted(Path(cache).glob("*.db"))
    assert len(dbs) == 1, f"want one cache database in {cache}: {dbs}"
    return dbs[0]


def check_cache(cache, what):
    """sqlite3 CACHE.db 'PRAGMA integrity_check' says ok, and no flow is
    stored twice for its subject."""
    db = cache_db(cache)
    r = run(["sqlite3", str(db), "PRAGMA integrity_check;",
             "SELECT count(*) - count(DISTINCT subject || ' ' || id)"
             " FROM flows;"], timeout=60)
    out = r.stdout.decode().split()
    assert r.returncode == 0 and out[:1] == ["ok"], \
        f"{what}: integrity_check: {r.stdout!r} {r.stderr!r} [seed {SEED}]"
    assert out[1:] == ["0"], \
        f"{what}: flows stored twice in the cache: {out[1:]} [seed {SEED}]"


def start(cmd, errpath):
    """Start flowfetch with its output (-o -) into a pipe that nobody
    drains: once the fetch is over, it blocks there, writing."""
    errf = open(errpath, "wb")
    p = start_fetch(cmd, Path(errpath).parent, stdout=subprocess.PIPE,
                    stderr=errf)
    errf.close()
    return p


def wait_answers(sim, base, k, proc, timeout=60):
    """Poll /_sim/counters until k /flows answers more than base were
    sent, or proc's output pipe (if any) holds bytes: the fetch is over and
    the output is being written.  False when proc ended first."""
    deadline = time.monotonic() + timeout
    while flows_requests(sim) - base < k:
        if proc.poll() is not None:
            return False
        if proc.stdout and select.select([proc.stdout], [], [], 0)[0]:
            return True
        assert time.monotonic() < deadline, \
            f"no {k} /flows answers in {timeout} s [seed {SEED}]"
        time.sleep(0.002)
    return True


def kill9(pid, proc):
    os.kill(pid, signal.SIGKILL)
    proc.wait(timeout=10)


def fetch(sim, token_file, cache, out, ip=IP, day=DAY):
    """flowfetch to the end: (exit status, stderr text, /flows requests)."""
    base = flows_requests(sim)
    f = flowfetch(url_of(sim), ip, day, day, out, cache=cache,
                  token_file=token_file, timeout=RUN_TIMEOUT_S)
    return f.rc, f.stderr, flows_requests(sim) - base


def read_folder(m, ip=IP, day=DAY):
    """flows.csv of a folder through the mount, checked against the
    folder's own SHA256SUMS and query.json."""
    d = m.path(ip, day)
    data = (d / "flows.csv").read_bytes()
    sums = (d / "SHA256SUMS").read_text()
    line = [ln for ln in sums.splitlines() if ln.endswith(" flows.csv")]
    assert line and line[0].split()[0] == hashlib.sha256(data).hexdigest(), \
        f"SHA256SUMS does not match the flows.csv served: {sums!r}"
    q = json.loads((d / "query.json").read_text())
    assert q["complete"] is True and not q["gaps"], q
    ids = csv_ids(data)
    assert q["flows"] == len(ids), (q["flows"], len(ids))
    return ids


def tmpfs(path, size):
    """Mount a tmpfs of that size at path (skip when that is not possible)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs as the cache's disk")
    path.mkdir()
    r = run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700",
             "tmpfs", str(path)])
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {r.stderr.decode()}")


def kill_plan(rng, npoints, top):
    """Trials of one or two kill -9 points (a crash, or a crash while
    resuming from one), npoints in all: [(k, kills)], k the first point of
    the trial as a count of /flows answers in [1, top].  The first points
    are stratified: [1, top] is cut into one stratum a trial and a point
    drawn at random in each, in a random order, so that the mean over the
    trials does not hang on where a few independent draws happened to
    fall."""
    sizes = []
    while sum(sizes) < npoints:
        sizes.append(min(rng.choice((1, 2)), npoints - sum(sizes)))
    firsts = [min(top, 1 + int((i + rng.random()) * top / len(sizes)))
              for i in range(len(sizes))]
    rng.shuffle(firsts)
    return list(zip(firsts, sizes))


def fewer_than_cold(who, cold, points, reruns, record_property):
    """Record the kill points; the runs after a crash sent fewer /flows
    requests than a cold run, on average (what was fetched is kept)."""
    cold_n, colds = cold
    mean = sum(reruns) / len(reruns)
    record_property(f"{who}_points", json.dumps(points))
    print(f"{who}: cold runs {colds} requests; kill points (trial, kill, k, "
          f"answers seen) {points}; runs after them {reruns}, mean "
          f"{mean:.1f}")
    assert mean < cold_n, \
        (f"{who}: the runs after a crash sent {mean:.1f} /flows requests "
         f"on average, a cold run {cold_n:.1f}: what was fetched is not "
         f"kept [seed {SEED}]")


# ---- fixtures -----------------------------------------------------------------

@pytest.fixture(scope="module", autouse=True)
def _prerequisites():
    require_fuse()
    require_flowfs()
    require_flowfetch()
    missing = [t for t in ("sqlite3", "fusermount3", "sha256sum")
               if not shutil.which(t)]
    if missing:
        pytest.skip(f"missing tools: {missing}")


@pytest.fixture(scope="module")
def token_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("token") / "token"
    p.write_text("crash-" + secrets.token_hex(16) + "\n")
    p.chmod(0o600)
    return p


def sim_args(token_file, *extra):
    return ["--now", NOW_ISO, "--seed", "1", "--max-records", str(CAP),
            "--token-file", str(token_file), *extra]


@pytest.fixture(scope="module")
def slow_sim(make_module_sim, token_file):
    """Every /flows answer SLOW_MS late, so that a kill lands where the
    counters say, not several answers later."""
    return make_module_sim(*sim_args(token_file, "--slow", "1",
                                     "--slow-ms", str(SLOW_MS)))


@pytest.fixture(scope="module")
def slow_cold(slow_sim, token_file, tmp_path_factory):
    """/flows requests of a cold run of IP on DAY on the slow sim: the mean
    of COLD_RUNS flowfetch runs (the collector's random samples make the
    planner's count vary by a few requests from run to run)."""
    truth = Truth(slow_sim)(IP, DAY)
    counts = []
    for i in range(COLD_RUNS):
        tmp = tmp_path_factory.mktemp(f"slow-cold{i}")
        rc, err, n = fetch(slow_sim, token_file, tmp / "cache", tmp / "o.csv")
        assert rc == 0, err
        check_ids(csv_ids((tmp / "o.csv").read_bytes()), truth, "cold run")
        counts.append(n)
    assert min(counts) >= 20, f"cold runs sent only {counts} requests"
    return sum(counts) / len(counts), counts


@pytest.fixture(scope="module")
def sim(make_module_sim, token_file):
    return make_module_sim(*sim_args(token_file))


@pytest.fixture
def kill_rng(seed):
    """The kill points' generator, from the run's seed."""
    print(f"kill points from random.Random({seed}) "
          f"(FLOWFS_SEED={seed} replays them)")
    return random.Random(seed)


# ---- 1. kill -9 and restart ------------------------------------------------------

def test_kill_9_flowfetch_at_random_points(slow_sim, slow_cold, token_file,
                                           tmp_path, kill_rng, record_property):
    """FETCH_POINTS kill -9 of flowfetch, one or two in a row on one cache
    (a crash while resuming from a crash), then a run to the end."""
    sim = slow_sim
    truth = Truth(sim)(IP, DAY)
    top = round(slow_cold[0])       # past a run's end: killed writing
    plan = kill_plan(kill_rng, FETCH_POINTS, top)
    points, reruns = [], []
    for trial, (k, kills) in enumerate(plan, 1):
        tdir = tmp_path / f"t{trial}"
        tdir.mkdir()
        cache, out = tdir / "cache", tdir / "out.csv"
        cmd = fetch_cmd(url_of(sim), IP, DAY, DAY, "-", cache=cache,
                        token_file=token_file)
        left, killed = top, False
        for j in range(kills):
            if j > 0:
                k = kill_rng.randint(1, max(1, left // 2))
            base = flows_requests(sim)
            p = start(cmd, tdir / f"killed{j}.stderr")
            try:
                reached = wait_answers(sim, base, k, p)
                if reached:
                    kill9(p.pid, p)
            finally:
                if p.poll() is None:
                    kill9(p.pid, p)
                p.stdout.close()
            seen = flows_requests(sim) - base
            if not reached:         # it finished first: no crash here
                assert p.returncode == 0
                break
            assert p.returncode == -signal.SIGKILL
            killed = True
            points.append((trial, j, k, seen))
            left = max(1, left - seen)
            check_cache(cache, f"after kill -9 at {seen} answers")
        if not killed:              # another trial in its place
            assert len(plan) < 2 * FETCH_POINTS, \
                f"flowfetch ended before the kill too often: {plan}"
            plan.append((kill_rng.randint(1, top), kills))
            continue
        rc, err, n = fetch(sim, token_file, cache, out)
        assert rc == 0, f"the run after the crash: {err} [seed {SEED}]"
        check_ids(csv_ids(out.read_bytes()), truth,
                  f"trial {trial}, after kill -9 at {points[-1][3]} answers")
        assert not Path(str(out) + ".part").exists()
        check_cache(cache, f"trial {trial}, after the rerun")
        reruns.append(n)

    fewer_than_cold("flowfetch", slow_cold, points, reruns, record_property)


def kill_flowfs_reading(m, sim, k):
    """Start a reader of flows.csv, kill -9 flowfs after k /flows answers
    (or once the read ended), and unmount the dead mount as README.md
    says.  Returns the answers seen."""
    base = flows_requests(sim)
    cat = subprocess.Popen(["cat", str(m.path(IP, DAY, "flows.csv"))],
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        wait_answers(sim, base, k, cat)
        m.want_status = -signal.SIGKILL
        kill9(m.proc.pid, m.proc)
        cat.wait(timeout=10)
    finally:
        if cat.poll() is None:
            cat.kill()
            cat.wait()
    seen = flows_requests(sim) - base
    # the dead daemon's snapshot directory stays behind; a file in it
    # stands for a render that the kill cut short
    snap = m.cache / f"snap-{m.proc.pid}"
    assert snap.is_dir(), sorted(os.listdir(m.cache))
    (snap / "0000000000000abc-1-flows.csv").write_bytes(b"x" * 65536)
    try:
        os.listdir(m.mnt)
        e = 0
    except OSError as x:
        e = x.errno
    assert e == errno.ENOTCONN, \
        f"a killed flowfs leaves a dead mount (ENOTCONN), got {e}"
    r = run(["fusermount3", "-u", str(m.mnt)], timeout=10)
    assert r.returncode == 0, f"fusermount3 -u of the dead mount: {r.stderr!r}"
    assert not mounted_at(m.mnt)
    m.stop()
    return seen


def test_kill_9_flowfs_at_random_points(slow_sim, slow_cold, token_file,
                                        mounts, tmp_path, kill_rng,
                                        record_property):
    """FLOWFS_POINTS kill -9 of the flowfs daemon while a reader waits for
    flows.csv, one or two in a row on one cache; after each, fusermount3 -u
    and a mount on the same mount point and cache: flows.csv is exactly
    the truth."""
    sim = slow_sim
    truth = Truth(sim)(IP, DAY)
    url = url_of(sim)
    cold_n, colds = slow_cold

    points, reruns = [], []
    for trial, (k, kills) in enumerate(
            kill_plan(kill_rng, FLOWFS_POINTS, int(cold_n)), 1):
        cache = tmp_path / f"cache{trial}"
        left = int(cold_n)
        for j in range(kills):
            if j > 0:
                k = kill_rng.randint(1, max(1, left // 2))
            m = mounts(url=url, cache=cache, name="mnt")
            seen = kill_flowfs_reading(m, sim, k)
            points.append((trial, j, k, seen))
            left = max(1, left - seen)
            check_cache(cache, f"after kill -9 at {seen} answers")
        m = mounts(url=url, cache=cache, name="mnt")
        base = flows_requests(sim)
        check_ids(read_folder(m), truth,
                  f"trial {trial}, after kill -9 at {points[-1][3]} answers")
        reruns.append(flows_requests(sim) - base)
        snaps = sorted(p.name for p in cache.glob("snap-*"))
        assert snaps == [f"snap-{m.proc.pid}"], \
            f"snapshot directories of killed mounts left behind: {snaps}"
        m.stop()
        check_cache(cache, f"trial {trial}, after the remount")
        assert not list(cache.glob("snap-*"))

    fewer_than_cold("flowfs", slow_cold, points, reruns, record_property)


# ---- 2. a full disk -----------------------------------------------------------------

def test_full_disk_flowfetch(sim, token_file, tmp_path):
    truth = Truth(sim)(IP, DAY)
    disk = tmp_path / "disk"
    tmpfs(disk, "2m")
    try:
        cache, out = disk / "cache", tmp_path / "out.csv"
        rc, err, n = fetch(sim, token_file, cache, out)
        assert rc == 1, f"flowfetch on a full disk exited {rc}: {err}"
        assert "No space left on device" in err and "disk" in err, err
        assert len(err.strip().splitlines()) == 1, err
        r = run(["sqlite3", str(cache_db(cache)), "SELECT count(*) FROM flows"])
        stored = int(r.stdout.decode().strip() or -1)
        assert n > 0 and 0 < stored < truth["count"], \
            f"the disk did not fill mid-query: {n} answers, {stored} flows"
        assert not out.exists() and not Path(str(out) + ".part").exists()
        check_cache(cache, "on the full disk")

        r = run(["mount", "-o", "remount,size=64m", str(disk)])
        assert r.returncode == 0, r.stderr
        rc, err, n = fetch(sim, token_file, cache, out)
        assert rc == 0, err
        check_ids(csv_ids(out.read_bytes()), truth, "after space was freed")
        check_cache(cache, "after space was freed")
    finally:
        run(["umount", "-l", str(disk)])


def test_full_disk_flowfs(sim, token_file, mounts, tmp_path):
    """README's errno table: ENOSPC when the cache's disk is full; the
    cause in .progress; listings still work; once the disk has room, the
    same folder of the same mount serves exactly the truth."""
    truth = Truth(sim)(IP, DAY)
    disk = tmp_path / "disk"
    tmpfs(disk, "2m")
    try:
        cache = disk / "cache"
        m = mounts(url=url_of(sim), cache=cache, opts=["retries=1"])
        mounts.allow(r"space|full|ENOSPC|disk|write|render")
        d = m.path(IP, DAY)
        r = run(["cat", str(d / "flows.csv")], timeout=RUN_TIMEOUT_S)
        assert r.returncode != 0
        assert os.strerror(errno.ENOSPC).encode() in r.stderr, r.stderr
        try:
            open(d / "flows.csv", "rb").close()
            e = 0
        except OSError as x:
            e = x.errno
        assert e == errno.ENOSPC, errno.errorcode.get(e, e)
        text = (d / ".progress").read_text()
        assert "state: failed" in text, text
        assert any(ln.startswith("error:") and ("space" in ln or "full" in ln)
                   for ln in text.splitlines()), text
        r = run(["ls", str(m.mnt), str(d)])
        assert r.returncode == 0, r.stderr
        check_cache(cache, "on the full disk")

        r = run(["mount", "-o", "remount,size=64m", str(disk)])
        assert r.returncode == 0, r.stderr
        check_ids(read_folder(m), truth, "after space was freed")
        r = run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=d)
        assert r.returncode == 0, r.stdout + r.stderr
        m.stop()
        check_cache(cache, "after space was freed")
    finally:
        run(["umount", "-l", str(disk)])


def fill_disk(path):
    """Write zeros to a new file at path until its disk is full."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    chunk = b"\0" * (1 << 20)
    try:
        while True:
            os.write(fd, chunk)
    except OSError as e:
        assert e.errno == errno.ENOSPC, e
    finally:
        os.close(fd)


def test_full_disk_render_is_tried_again(sim, token_file, mounts, tmp_path):
    """A render that fails for a transient cause is not kept with the
    snapshot (issue 10): the query is cached, then the cache's disk fills,
    and reading flows.csv answers ENOSPC; once the disk has room, the next
    read of the same folder of the same mount renders the file again (no
    request) and serves exactly the truth, SHA256SUMS included."""
    truth = Truth(sim)(IP, DAY)
    disk = tmp_path / "disk"
    tmpfs(disk, "64m")
    m = None
    try:
        cache = disk / "cache"
        m = mounts(url=url_of(sim), cache=cache)
        mounts.allow(r"space|full|ENOSPC|disk|write|render")
        d = m.path(IP, DAY)
        q = json.loads((d / "query.json").read_text())   # the query, cached
        assert q["complete"] is True and q["flows"] == truth["count"], q
        filler = disk / "filler"
        fill_disk(filler)
        for _ in range(2):      # each read on the full disk fails alike
            r = run(["cat", str(d / "flows.csv")], timeout=RUN_TIMEOUT_S)
            assert r.returncode != 0, "flows.csv rendered on a full disk"
            assert os.strerror(errno.ENOSPC).encode() in r.stderr, r.stderr

        filler.unlink()
        base = flows_requests(sim)
        check_ids(read_folder(m), truth, "after space was freed")
        r = run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=d)
        assert r.returncode == 0, r.stdout + r.stderr
        assert flows_requests(sim) == base, \
            "the render after the full disk asked the collector again"
        m.stop()
        check_cache(cache, "after space was freed")
    finally:
        if m:
            m.stop()
        run(["umount", "-l", str(disk)])


# ---- 3. two mounts and a flowfetch on one cache ------------------------------------

def test_two_mounts_and_flowfetch_share_a_cache(sim, token_file, mounts,
                                                tmp_path):
    """Two flowfs on two mount points and a flowfetch, all on one cache
    directory, read the same folder and different folders at once (README:
    "One cache, several programs"): each gets exactly the truth, the cache
    stays consistent, the log holds both mounts' lines whole, and a folder
    one of them fetched costs the others no request."""
    truth = Truth(sim)
    url, cache = url_of(sim), tmp_path / "cache"
    a = mounts(url=url, cache=cache, name="a")
    b = mounts(url=url, cache=cache, name="b")
    jobs = [                    # (who, ip, day)
        (a, IP, DAY), (b, IP, DAY), ("fetch", IP, DAY),
        (a, "10.0.1.10", "2026-11-26"), (b, "10.0.1.30", "2026-11-26"),
        ("fetch", "10.0.1.30", "2026-11-26"), (b, "10.0.1.40", "2026-11-25"),
        ("fetch", "10.0.1.11", "2026-11-25"), (a, "10.0.1.11", "2026-11-25"),
    ]
    results = [None] * len(jobs)

    def work(i, who, ip, day):
        try:
            if who == "fetch":
                out = tmp_path / f"fetch{i}.csv"
                rc, err, _ = fetch(sim, token_file, cache, out, ip, day)
                assert rc == 0, f"flowfetch beside two mounts: {err}"
                results[i] = csv_ids(out.read_bytes())
            else:
                results[i] = read_folder(who, ip, day)
        except BaseException as e:         # reported in the main thread
            results[i] = e

    threads = [threading.Thread(target=work, args=(i, *j))
               for i, j in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(RUN_TIMEOUT_S)
    for (who, ip, day), res in zip(jobs, results):
        what = f"{'flowfetch' if who == 'fetch' else who.mnt.name} {ip} {day}"
        if isinstance(res, BaseException):
            raise AssertionError(f"{what}: {res!r}") from res
        assert res is not None, f"{what}: did not finish"
        check_ids(res, truth(ip, day), what)
    check_cache(cache, "two mounts and a flowfetch at once")
    snaps = sorted(p.name for p in cache.glob("snap-*"))
    assert snaps == sorted(f"snap-{m.proc.pid}" for m in (a, b)), snaps

    # what one fetched, the others read from the cache
    base = flows_requests(sim)
    check_ids(read_folder(a, "10.0.1.10", "2026-11-24"),
              truth("10.0.1.10", "2026-11-24"), "a alone")
    assert flows_requests(sim) > base
    base = flows_requests(sim)
    check_ids(read_folder(b, "10.0.1.10", "2026-11-24"),
              truth("10.0.1.10", "2026-11-24"), "b after a")
    rc, err, n = fetch(sim, token_file, cache, tmp_path / "after.csv",
                       "10.0.1.10", "2026-11-24")
    assert rc == 0, err
    assert flows_requests(sim) == base, \
        "a folder fetched through one mount was asked for again"

    pids = {m.proc.pid for m in (a, b)}
    a.stop()
    b.stop()
    log = (cache / "flowfs.log").read_text()
    for ln in log.splitlines():
        assert " flowfs[" in ln and ln[:4].isdigit(), f"log line: {ln!r}"
    for pid in pids:
        assert f"flowfs[{pid}]: mounted " in log, log[-2000:]
        assert f"flowfs[{pid}]: unmounting" in log, log[-2000:]
    check_cache(cache, "after both mounts ended")
    assert not list(cache.glob("snap-*"))
