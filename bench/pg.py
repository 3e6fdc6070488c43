#!/usr/bin/python3
"""pg.py - benchmarks of the team's shared cache on PostgreSQL (issue 17).

Usage: /usr/bin/python3 bench/pg.py BUILD_DIR   (bench/run pg)

Starts a throwaway PostgreSQL cluster (tests/pg/cluster.py: initdb into a
temporary directory, a Unix socket only, stopped in a finally) and its own
flowsims on 127.0.0.1 port 0 (bench/simctl.py), mounts flowfs in the
foreground with bench/fs.py's Mount (always unmounted in a finally), each
mount with its own fresh local cache directory (one machine each).  Every
figure is a ratio against a baseline measured in the same run:

  1. five mounts on one database read the same ten folders at once (five
     hosts' last two days; flowsim --max-records 1000, so that a folder is
     many windows), each mount `cat`ting every folder's flows.csv in turn,
     each starting at another folder: /flows requests in all (flowsim's
     counters), against one mount alone with plain SQLite reading the same
     ten folders (target 1.0x); one mount alone on a fresh database is a
     second baseline.  Every read is checked against /_sim/truth's ids;
  2. cold: the first read of heavy-1's day's flows.csv (about 2M flows)
     through a mount with cache_url, against a mount without (plain SQLite)
     on the same day, each with a fresh local cache (and a fresh database):
     flows/s (target >= 0.8x); flowfs, PostgreSQL and flowsim CPU seconds
     over each read say where the time goes;
  2b. the same cold reads with the server on a core of its own, as a
     team's is on its own machine: flowfs, flowsim and the reader pinned
     to core 0 in both runs, PostgreSQL to core 1 (target >= 0.8x);
  3. warm: the second read of flows.csv and of flows.sqlite in the same
     mount, with and without cache_url, median of WARM_RUNS (target 1.0x);
  4. rendering both ways: the same folder's flows read from PostgreSQL
     directly (psql, COPY (SELECT ... ORDER BY start) TO STDOUT (FORMAT
     csv)), against a first read of flows.csv rendered from the local
     SQLite copy (a mount restarted over the same local cache and the same
     database: no request, no pull), and against a second machine's first
     read (a fresh local cache on the same database: pulled, then rendered).

Progress goes to stderr; only the Markdown section goes to stdout.
"""
import csv
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from fs import Mount, cold_cat, cpu_s, fmt_int, fuse_ready, timed_cat, verdict
from simctl import Sim, bench_main, load_note, report_end

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "pg"))
import cluster  # noqa: E402

NOW_ISO = "2026-11-29T12:00:00Z"
NOW_MS = 1795953600000
DAY = 86400000
TODAY = NOW_MS // DAY * DAY
YESTERDAY = TODAY - DAY
HEAVY = "10.0.1.20"
HOSTS = ["10.0.1.10", "10.0.1.11", "10.0.1.30", "10.0.1.40", "2001:db8:10::5"]
DAYS = [YESTERDAY - DAY, YESTERDAY]
MOUNTS = 5
CAP = 1000                  # --max-records of figure 1's flowsim
TARGET_REQ = 1.0
TARGET_COLD = 0.8
TARGET_WARM = 1.0
WARM_RUNS = 5
PSQL_RUNS = 3
COLD_DEADLINE = 300.0
READ_TIMEOUT = 300
# flows' columns after (collector, subject), as cache/pg.c's PG_FLOW_COLS
PG_FLOW_COLS = ('start,id,"end",src,dst,sport,dport,proto,tcp_flags,icmp_type,icmp_code,pkts,'
                'bytes,in_if,out_if,exporter,app,src_as,dst_as,sampling,src_groups,dst_groups,'
                'community_id,extra')


def log(msg):
    print(f"pg: {msg}", file=sys.stderr, flush=True)


def day_of(ms):
    return time.strftime("%Y-%m-%d", time.gmtime(ms // 1000))


def csv_ids(path):
    with open(path, newline="") as f:
        r = csv.reader(f)
        col = next(r).index("flowId")
        return sorted(row[col] for row in r)


def pg_cpu(pg):
    """CPU seconds of the cluster: the postmaster, its reaped children and
    its live ones (the backends of the mounts still connected)."""
    try:
        with open(pg.data / "postmaster.pid") as f:
            pm = int(f.readline())
    except (OSError, ValueError):
        return 0.0
    tck = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(d), int(fields[1])
        if pid == pm:
            total += sum(int(x) for x in fields[11:15]) / tck
        elif ppid == pm:
            total += (int(fields[11]) + int(fields[12])) / tck
    return total


class Bench:
    def __init__(self, build):
        self.build = os.path.abspath(build)
        self.flowfs = os.path.join(self.build, "fs", "flowfs")
        self.simbin = os.path.join(self.build, "sim", "flowsim")
        self.tmp = tempfile.mkdtemp(prefix="bench_pg.")
        self.problems = []
        self.mounts = []
        self.sims = []
        self.pg = None
        self.dbs = 0

    def sim(self, args=()):
        d = os.path.join(self.tmp, f"sim{len(self.sims)}")
        os.makedirs(d)
        s = Sim(self.simbin, d, args=args)
        self.sims.append(s)
        return s

    def database(self):
        """A fresh database owned by the cluster's role: its URL."""
        self.dbs += 1
        name = f"bench{self.dbs}"
        self.pg.psql(f"CREATE DATABASE {name} OWNER {cluster.ROLE}", db="postgres")
        return name

    def mount(self, sim, name, db=None, cache=None):
        mnt = os.path.join(self.tmp, "mnt-" + name)
        cache = cache or os.path.join(self.tmp, "cache-" + name)
        opts = [f"cache_url={self.pg.url(db=db)}"] if db else []
        m = Mount(self.flowfs, sim.url, mnt, cache, sim.token_file,
                  os.path.join(self.tmp, f"flowfs-{name}.log"), opts)
        m.cache = cache
        self.mounts.append(m)
        return m

    def unmount(self, m):
        self.problems.extend(m.stop())
        self.mounts.remove(m)

    def close(self):
        try:
            for m in list(self.mounts):
                self.unmount(m)
        finally:
            for s in self.sims:
                s.stop()
            if self.pg:
                self.pg.stop()
            shutil.rmtree(self.tmp, ignore_errors=True)


def mount_requests(m):
    """(requests, queries) from the mount's log's "ready:" lines: the
    /flows requests its queries made themselves."""
    pat = re.compile(r": ready: \d+ flows, (\d+) requests")
    with open(m.logpath, errors="replace") as f:
        found = [int(x) for x in pat.findall(f.read())]
    return sum(found), len(found)


def folders():
    return [(h, d) for d in DAYS for h in HOSTS]


def read_all(m, order, truth, out, problems):
    """cat each folder's flows.csv through m in the given order, checked
    against the truth's ids; out gets the wall time."""
    t0 = time.perf_counter()
    for host, day in order:
        path = os.path.join(m.mnt, host, day_of(day), "flows.csv")
        copy = os.path.join(m.cache + ".csv")
        with open(copy, "wb") as f:
            p = subprocess.run(["cat", path], stdout=f, stderr=subprocess.PIPE,
                               timeout=READ_TIMEOUT)
        if p.returncode != 0:
            problems.append(f"{m.mnt}: cat {host}/{day_of(day)}/flows.csv: status "
                            f"{p.returncode}: {p.stderr.decode(errors='replace').strip()} "
                            f"({m.log_tail()})")
            continue
        if csv_ids(copy) != truth[(host, day)]:
            problems.append(f"{m.mnt}: {host}/{day_of(day)}/flows.csv differs from the truth")
    out.append(time.perf_counter() - t0)


def measure_shared(b, R):
    sim = b.sim(["--max-records", str(CAP)])
    truth = {}
    for host, day in folders():
        truth[(host, day)] = sorted(sim.truth_ids(host, day, day + DAY))
    R["f1_flows"] = sum(len(v) for v in truth.values())
    R["f1_lower"] = sum(-(-len(v) // CAP) for v in truth.values())
    base_order = folders()

    def alone(db, name):
        m = b.mount(sim, name, db=db)
        r0 = sim.flows_requests()
        walls = []
        read_all(m, base_order, truth, walls, b.problems)
        asked = sim.flows_requests() - r0
        b.unmount(m)
        return asked, walls[0]

    log("1: one mount alone, plain SQLite, ten folders")
    R["f1_plain"] = alone(None, "alone-plain")
    log("1: one mount alone on a fresh database")
    R["f1_pg1"] = alone(b.database(), "alone-pg")
    log(f"1: {MOUNTS} mounts on one database, the same ten folders at once")
    db = b.database()
    ms = [b.mount(sim, f"team{i}", db=db) for i in range(MOUNTS)]
    r0 = sim.flows_requests()
    walls = []
    threads = []
    n = len(base_order)
    for i, m in enumerate(ms):
        k = (i * 2) % n
        order = base_order[k:] + base_order[:k]
        if i % 2:
            order.reverse()
        threads.append(threading.Thread(target=read_all,
                                        args=(m, order, truth, walls, b.problems)))
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    R["f1_team"] = (sim.flows_requests() - r0, time.perf_counter() - t0, sorted(walls))
    R["f1_per_mount"] = sorted(mount_requests(m) for m in ms)
    R["f1_rows"] = b.pg.psql("SELECT count(*), count(DISTINCT (subject, start, id)) FROM flows",
                             db=db)
    for m in ms:
        b.unmount(m)


def cold(b, sim, m, folder, count, R, key):
    """Figure 2's cold read through m, then flows.sqlite's first read."""
    csv_path = os.path.join(folder, "flows.csv")
    sq_path = os.path.join(folder, "flows.sqlite")
    load = os.getloadavg()[0]
    r0, f0, s0, p0 = sim.flows_requests(), cpu_s(m.pid), cpu_s(sim.proc.pid), pg_cpu(b.pg)
    first, total, nbytes, rc, err = cold_cat(csv_path, COLD_DEADLINE)
    c = {"first": first, "total": total, "bytes": nbytes, "rc": rc,
         "requests": sim.flows_requests() - r0, "fs_cpu": cpu_s(m.pid) - f0,
         "sim_cpu": cpu_s(sim.proc.pid) - s0, "pg_cpu": pg_cpu(b.pg) - p0, "load": load}
    R[key + "_cold"] = c
    if rc != 0:
        b.problems.append(f"{key}: cold read of flows.csv: status {rc}: {err} ({m.log_tail()})")
        return
    rows = len(csv_ids(csv_path))
    if rows != count:
        b.problems.append(f"{key}: flows.csv has {fmt_int(rows)} rows for {fmt_int(count)} "
                          f"flows in the truth")
    w, rc, err = timed_cat(sq_path, timeout=READ_TIMEOUT)
    R[key + "_sqlite_first"] = w
    if rc != 0:
        b.problems.append(f"{key}: first read of flows.sqlite: status {rc}: {err}")
        return
    R[key + "_sizes"] = (os.path.getsize(csv_path), os.path.getsize(sq_path))
    return True


def warm(b, pairs, R):
    """Figure 3: the second reads of flows.csv and flows.sqlite through each
    (key, mount, folder) of pairs, both mounts up, the reads alternating so
    that both see the same load; medians, and each daemon's CPU."""
    walls = {(k, n): [] for k, _, _ in pairs for n in ("csv", "sqlite")}
    cpu0 = {k: cpu_s(m.pid) for k, m, _ in pairs}
    for _ in range(WARM_RUNS):
        for name, fname in (("csv", "flows.csv"), ("sqlite", "flows.sqlite")):
            for key, m, folder in pairs:
                w, rc, err = timed_cat(os.path.join(folder, fname))
                if rc != 0:
                    b.problems.append(f"{key}: warm read of {fname}: status {rc}: {err}")
                    return
                walls[(key, name)].append(w)
    for key, m, _ in pairs:
        R[key + "_warm"] = {n: statistics.median(walls[(key, n)]) for n in ("csv", "sqlite")}
        R[key + "_warm_range"] = {n: (min(walls[(key, n)]), max(walls[(key, n)]))
                                  for n in ("csv", "sqlite")}
        R[key + "_warm_cpu"] = cpu_s(m.pid) - cpu0[key]


def measure_heavy(b, R):
    sim = b.sim()
    day = day_of(YESTERDAY)
    count, _ = sim.truth(HEAVY, YESTERDAY, TODAY)
    R["count"] = count
    log(f"2, 3: plain SQLite, cold read of {HEAVY}/{day}/flows.csv ({count} flows)")
    mp = b.mount(sim, "heavy-plain")
    ok = cold(b, sim, mp, os.path.join(mp.mnt, HEAVY, day), count, R, "plain")
    log("2, 3: the same with cache_url, a fresh database")
    db = b.database()
    m = b.mount(sim, "heavy-pg", db=db)
    ok = cold(b, sim, m, os.path.join(m.mnt, HEAVY, day), count, R, "pg") and ok
    if ok:
        log("3: warm reads, both mounts up, alternating")
        warm(b, [("plain", mp, os.path.join(mp.mnt, HEAVY, day)),
                 ("pg", m, os.path.join(m.mnt, HEAVY, day))], R)
    cache = m.cache
    b.unmount(mp)
    b.unmount(m)
    if R.get("pg_cold", {}).get("rc") != 0:
        return

    # 4 ---------------------------------------------------------------------
    log("4: the mount again over its local copy: flows.csv rendered from local SQLite")
    snap = os.path.join(b.tmp, "cache-heavy-pg.copy")
    shutil.copytree(cache, snap, symlinks=True)     # for the second local render
    m = b.mount(sim, "heavy-pg-again", db=db, cache=cache)
    r0, f0, p0 = sim.flows_requests(), cpu_s(m.pid), pg_cpu(b.pg)
    first, total, nbytes, rc, err = cold_cat(os.path.join(m.mnt, HEAVY, day, "flows.csv"),
                                             COLD_DEADLINE)
    R["local"] = {"total": total, "rc": rc, "requests": sim.flows_requests() - r0,
                  "fs_cpu": cpu_s(m.pid) - f0, "pg_cpu": pg_cpu(b.pg) - p0, "bytes": nbytes}
    if rc != 0:
        b.problems.append(f"4: read from the local copy: status {rc}: {err} ({m.log_tail()})")
    b.unmount(m)
    log("4: a second machine: a fresh local cache on the same database")
    m = b.mount(sim, "heavy-pg-second", db=db)
    r0, f0, p0 = sim.flows_requests(), cpu_s(m.pid), pg_cpu(b.pg)
    first, total, nbytes, rc, err = cold_cat(os.path.join(m.mnt, HEAVY, day, "flows.csv"),
                                             COLD_DEADLINE)
    R["second"] = {"total": total, "rc": rc, "requests": sim.flows_requests() - r0,
                   "fs_cpu": cpu_s(m.pid) - f0, "pg_cpu": pg_cpu(b.pg) - p0}
    if rc != 0:
        b.problems.append(f"4: a second machine's read: status {rc}: {err} ({m.log_tail()})")
    b.unmount(m)

    log("4: psql COPY of the folder's flows, ORDER BY start")
    subject = b.pg.psql(f"SELECT DISTINCT subject FROM flows WHERE subject LIKE '{HEAVY}%'",
                        db=db).splitlines()
    R["subjects"] = subject
    where = (f"sh = hashtextextended('{subject[0]}', 0) AND subject = '{subject[0]}'"
             f" AND start < {TODAY} AND \"end\" >= {YESTERDAY}"
             if len(subject) == 1 else f"start < {TODAY} AND \"end\" >= {YESTERDAY}")
    R["pg_rows"] = int(b.pg.psql(f"SELECT count(*) FROM flows WHERE {where}", db=db))
    cols = "collector,subject," + PG_FLOW_COLS      # not the key's digests
    sql = f"COPY (SELECT {cols} FROM flows WHERE {where} ORDER BY start) TO STDOUT (FORMAT csv)"
    psql = [os.path.join(b.pg.bindir, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
            "-h", str(b.pg.sock), "-p", str(b.pg.port), "-U", cluster.ROLE, "-d", db,
            "-c", sql]
    walls, cpus = [], []
    out = os.path.join(b.tmp, "copy.csv")
    for _ in range(PSQL_RUNS):
        p0 = pg_cpu(b.pg)
        with open(out, "wb") as f:
            t0 = time.perf_counter()
            p = subprocess.run(psql, stdout=f, stderr=subprocess.PIPE, timeout=READ_TIMEOUT)
            walls.append(time.perf_counter() - t0)
        cpus.append(pg_cpu(b.pg) - p0)
        if p.returncode != 0:
            b.problems.append(f"4: psql COPY: status {p.returncode}: "
                              f"{p.stderr.decode(errors='replace').strip()}")
            return
    R["copy"] = {"wall": statistics.median(walls), "walls": sorted(walls),
                 "pg_cpu": statistics.median(cpus), "bytes": os.path.getsize(out)}
    R["explain"] = b.pg.psql(f"EXPLAIN SELECT {cols} FROM flows WHERE {where} ORDER BY start",
                             db=db).splitlines()[:3]
    profile_store(b, R, db, out)
    shutil.rmtree(snap, ignore_errors=True)


def profile_store(b, R, db, rows_csv):
    """Where the server's time goes when a window is stored: the day's rows
    (COPY's CSV of figure 4) loaded with COPY into a temporary table with no
    index; the same rows, in start order, with COPY into an empty table
    shaped as flows (its primary key), as cache_pg_put_window stores a
    window new to the database; then INSERT ... SELECT ... ON CONFLICT DO
    NOTHING of them into it again (every row a conflict: a resent window's
    fallback): psql's \\timing of each, in one session.  The CSV is text,
    flowfs sends the binary format: the COPYs here parse more."""
    cols = "collector,subject," + PG_FLOW_COLS
    ordered = os.path.join(b.tmp, "copy-ordered.csv")
    script = "\n".join([
        "CREATE TEMP TABLE t_in (LIKE flows); ALTER TABLE t_in DROP COLUMN sh, DROP COLUMN idh;",
        "CREATE TEMP TABLE t_flows (LIKE flows INCLUDING ALL);",
        "\\timing on",
        f"\\copy t_in ({cols}) FROM '{rows_csv}' (FORMAT csv)",
        "\\timing off",
        f"\\copy (SELECT {cols} FROM t_in ORDER BY start) TO '{ordered}' (FORMAT csv)",
        "\\timing on",
        f"\\copy t_flows ({cols}) FROM '{ordered}' (FORMAT csv)",
        f"INSERT INTO t_flows ({cols}) SELECT {cols} FROM t_in ON CONFLICT DO NOTHING;",
    ])
    p = subprocess.run([os.path.join(b.pg.bindir, "psql"), "-X", "-v", "ON_ERROR_STOP=1",
                        "-h", str(b.pg.sock), "-p", str(b.pg.port), "-U", cluster.ROLE,
                        "-d", db], input=script, capture_output=True, text=True,
                       timeout=READ_TIMEOUT)
    times = [float(x) / 1e3 for x in re.findall(r"Time: ([\d.]+) ms", p.stdout)]
    if p.returncode != 0 or len(times) != 3:
        b.problems.append(f"4: the store's profile failed: status {p.returncode}: "
                          f"{p.stderr.strip()[:300]}")
        return
    R["profile"] = times


def pin(pid, cpus):
    """Every thread of process pid and of its descendants onto cpus (what
    they start later inherits it)."""
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                kids.setdefault(int(f.read().rsplit(")", 1)[1].split()[1]), []).append(int(d))
        except (OSError, ValueError, IndexError):
            continue
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                os.sched_setaffinity(int(t), cpus)
        except OSError:
            pass
        todo += kids.get(p, [])


def cold_pinned(b, sim, m, folder, count, R, key):
    """A cold read of flows.csv through m with the mount, flowsim and the
    reader on core 0 (the server, when there is one, is on core 1)."""
    pin(m.pid, {0})
    load = os.getloadavg()[0]
    r0, f0, s0, p0 = sim.flows_requests(), cpu_s(m.pid), cpu_s(sim.proc.pid), pg_cpu(b.pg)
    first, total, nbytes, rc, err = cold_cat(os.path.join(folder, "flows.csv"), COLD_DEADLINE)
    R[key] = {"first": first, "total": total, "rc": rc, "load": load,
              "requests": sim.flows_requests() - r0, "fs_cpu": cpu_s(m.pid) - f0,
              "sim_cpu": cpu_s(sim.proc.pid) - s0, "pg_cpu": pg_cpu(b.pg) - p0}
    if rc != 0:
        b.problems.append(f"{key}: cold read of flows.csv: status {rc}: {err} ({m.log_tail()})")
    elif len(csv_ids(os.path.join(folder, "flows.csv"))) != count:
        b.problems.append(f"{key}: flows.csv is not the truth's {fmt_int(count)} flows")


def measure_own_core(b, R):
    """Figure 2b: (2) again with the server on a core of its own, as a
    team's server is on its own machine: flowfs, flowsim and the reader on
    core 0 in both runs, PostgreSQL on core 1."""
    if (os.cpu_count() or 1) < 2:
        return
    every = set(range(os.cpu_count()))
    sim = b.sim()
    day = day_of(YESTERDAY)
    count = R.get("count") or sim.truth(HEAVY, YESTERDAY, TODAY)[0]
    with open(b.pg.data / "postmaster.pid") as f:
        pm = int(f.readline())
    try:
        os.sched_setaffinity(0, {0})        # the reader (cat) inherits it
        pin(sim.proc.pid, {0})
        log("2b: plain SQLite on core 0")
        mp = b.mount(sim, "own-plain")
        cold_pinned(b, sim, mp, os.path.join(mp.mnt, HEAVY, day), count, R, "own_plain")
        b.unmount(mp)
        log("2b: cache_url on core 0, PostgreSQL on core 1")
        db = b.database()
        pin(pm, {1})
        m = b.mount(sim, "own-pg", db=db)
        cold_pinned(b, sim, m, os.path.join(m.mnt, HEAVY, day), count, R, "own_pg")
        b.unmount(m)
    finally:
        os.sched_setaffinity(0, every)
        pin(pm, every)
        pin(sim.proc.pid, every)


def measure(b, R):
    R["load0"] = os.getloadavg()[0]
    log("starting a throwaway PostgreSQL cluster")
    b.pg = cluster.Cluster()
    b.pg.create()
    R["pg_version"] = b.pg.psql("SHOW server_version", db="postgres")
    measure_shared(b, R)
    measure_heavy(b, R)
    measure_own_core(b, R)
    R["load1"] = os.getloadavg()[0]


def overlap(a, b):
    return a[0] <= b[1] and b[0] <= a[1]


def store_split(R):
    """The sentence of figure 2 that (4)'s profile backs, or ''."""
    pr = R.get("profile")
    if not pr:
        return ""
    key = max(pr[1] - pr[0], 0.0)
    return (f"Measured apart on the same rows ((4)'s profile below), a COPY into a table "
            f"shaped as flows takes {pr[1]:.1f} s, of which the key's upkeep (beyond the "
            f"{pr[0]:.1f} s of a COPY into a table with no index) is {key / pr[1]:.0%}. ")


def report(b, R, t_start):
    P = []
    count = R.get("count", 0)
    P.append(f"flowsim on loopback, clock frozen at {NOW_ISO}, default scenario; PostgreSQL "
             f"{R.get('pg_version', '?')} from Debian, a throwaway cluster on a Unix socket "
             f"(tests/pg/cluster.py; fsync off); flowfs mounted in the foreground, each mount "
             f"with its own fresh local cache directory (one machine each), default pg_heartbeat "
             f"and pg_expiry; {os.cpu_count()} cores shared by flowsim, PostgreSQL, every flowfs "
             f"and the readers.")
    load_note(P, R)

    # 1 -----------------------------------------------------------------------
    P.append("### Five mounts, ten folders (1)")
    P.append("")
    if "f1_team" in R:
        plain, wp = R["f1_plain"]
        pg1, w1 = R["f1_pg1"]
        asked, wall, walls = R["f1_team"]
        P.append(f"Ten folders: {', '.join(HOSTS)} on {day_of(DAYS[0])} and {day_of(DAYS[1])} "
                 f"({fmt_int(R['f1_flows'])} flows in all), flowsim --max-records {CAP}. Each mount "
                 f"`cat`s every folder's flows.csv in turn, each starting at another folder (every "
                 f"other one in reverse), the {MOUNTS} at once; each read checked against "
                 f"`/_sim/truth`'s ids. Requests: `/api/v1/flows` in flowsim's counters.")
        P.append("")
        P.append("| run | /flows requests | ratio to one mount alone (plain SQLite) | wall |")
        P.append("| --- | ---: | ---: | ---: |")
        P.append(f"| one mount alone, plain SQLite (baseline) | {plain} | 1.00 | {wp:.1f} s |")
        P.append(f"| one mount alone on a fresh database | {pg1} | {pg1 / plain:.2f} | {w1:.1f} s |")
        r = asked / plain
        P.append(f"| **{MOUNTS} mounts at once on one database** | {asked} | **{r:.2f}** (target "
                 f"{TARGET_REQ:.1f}: {verdict(r <= TARGET_REQ)}) | {wall:.1f} s (each mount "
                 f"{walls[0]:.1f}-{walls[-1]:.1f} s) |")
        per = R["f1_per_mount"]
        P.append("")
        P.append(f"The requests each of the {MOUNTS} mounts made itself (its log's `ready:` "
                 f"lines, {per[0][1]} queries each): {', '.join(str(x[0]) for x in per)}; "
                 f"{sum(x[0] for x in per)} in all (flowsim counted {asked}). What a mount did not "
                 f"ask itself it waited for (another's claim) and pulled from PostgreSQL.")
        if r < TARGET_REQ:
            P.append(f"Fewer than one mount alone asks (the lower bound, a full answer of "
                     f"{CAP} records each, is {R['f1_lower']} requests for the ten folders): "
                     f"the engine plans a query's windows from what it learns while it fetches "
                     f"(docs/design.md), and in the team's run a mount plans only the intervals "
                     f"the claims leave it, after the others' answers; that this is why is a "
                     f"guess, not verified here. Every read was exact either way.")
        n, distinct = R["f1_rows"].split("|")
        P.append("")
        P.append(f"The shared database then held {fmt_int(int(n))} flows ({fmt_int(int(distinct))} "
                 f"distinct): each flow once. Without the shared cache the {MOUNTS} machines would "
                 f"have asked about {MOUNTS} x {plain} = {MOUNTS * plain} requests.")
        P.append("")
    else:
        P.append("No figure (see problems).")
        P.append("")

    # 2 -----------------------------------------------------------------------
    P.append("### Cold throughput (2)")
    P.append("")
    c0, c1 = R.get("plain_cold"), R.get("pg_cold")
    if c0 and c1 and c0["rc"] == 0 and c1["rc"] == 0:
        ratio = (count / c1["total"]) / (count / c0["total"])
        P.append(f"The first read (`cat` into a pipe) of heavy-1's ({HEAVY}) flows.csv on "
                 f"{day_of(YESTERDAY)}, {fmt_int(count)} flows in `/_sim/truth`, each mount with a "
                 f"fresh local cache, the one with cache_url on a fresh database; default "
                 f"max_records. CPU seconds over the read from /proc (PostgreSQL: the postmaster, "
                 f"its backends and its reaped children).")
        P.append("")
        P.append("| mount | load at the start | first 64 KiB | total | flows/s | ratio | requests "
                 "| flowfs CPU | PostgreSQL CPU | flowsim CPU |")
        P.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for label, c, rt in (("plain SQLite (baseline)", c0, "1.00"),
                             ("cache_url", c1, f"**{ratio:.2f}** (target {TARGET_COLD}: "
                                               f"{verdict(ratio >= TARGET_COLD)})")):
            first = f"{c['first']:.2f} s" if c["first"] is not None else ""
            P.append(f"| {label} | {c['load']:.1f} | {first} | {c['total']:.1f} s | {count / c['total']:,.0f} | {rt} "
                     f"| {c['requests']} | {c['fs_cpu']:.1f} s | {c['pg_cpu']:.1f} s "
                     f"| {c['sim_cpu']:.1f} s |")
        P.append("")
        cpu0 = c0["fs_cpu"] + c0["pg_cpu"] + c0["sim_cpu"]
        cpu1 = c1["fs_cpu"] + c1["pg_cpu"] + c1["sim_cpu"]
        short = (f"The target is missed by {TARGET_COLD - ratio:.2f} "
                 f"({(TARGET_COLD - ratio) / TARGET_COLD:.0%} short of it). "
                 if ratio < TARGET_COLD else "")
        P.append(f"{short}Where the time goes: the CPU the read costs in all (flowfs, PostgreSQL, "
                 f"flowsim) is {cpu1:.1f} s with cache_url against {cpu0:.1f} s without "
                 f"({cpu0 / cpu1:.2f} x), and on {os.cpu_count()} busy cores the wall time follows "
                 f"the CPU: the requests are about the same ({c0['requests']} and "
                 f"{c1['requests']}), so the difference is the shared store. PostgreSQL's {c1['pg_cpu']:.1f} s are the windows' "
                 f"transactions (cache_pg_put_window, on a thread of its own a window ahead of "
                 f"the local store: each window's records sent with COPY in the binary format "
                 f"straight into flows, whose primary key (collector, sh, start, idh) holds "
                 f"64-bit digests of the subject and the id, computed by the server; a window "
                 f"holding a record there already would fall back to a temporary table and "
                 f"INSERT ... ON CONFLICT DO NOTHING, none did here; the claim and the pull are "
                 f"one short transaction each per query, nothing at this size); flowfs's own "
                 f"CPU moved by {c1['fs_cpu'] - c0['fs_cpu']:+.1f} s (formatting the COPY data "
                 f"is small beside decoding and storing the download). {store_split(R)}"
                 f"On a team's machine the server runs elsewhere, on its own cores: then the "
                 f"mount pays its own {c1['fs_cpu']:.1f} s of CPU and waits on the server's "
                 f"commits, and the ratio of flowfs's CPU alone is "
                 f"{c0['fs_cpu'] / c1['fs_cpu']:.2f}.")
        P.append("")
        R["cold_ratio"] = ratio
    else:
        P.append("No figure (see problems).")
        P.append("")

    # 2b ----------------------------------------------------------------------
    c0, c1 = R.get("own_plain"), R.get("own_pg")
    if c0 and c1 and c0["rc"] == 0 and c1["rc"] == 0:
        ratio = c0["total"] / c1["total"]
        P.append("### Cold throughput, the server on a core of its own (2b)")
        P.append("")
        P.append("(2) again, each mount fresh (a fresh local cache, a fresh database), with the "
                 "processes pinned (sched_setaffinity, every thread): flowfs, flowsim and the "
                 "reader on core 0 in both runs, PostgreSQL (the postmaster and every backend) on "
                 "core 1, as a team's server has a machine of its own. Both mounts get the same "
                 "core; what the shared cache adds on the mount's side is what it costs there.")
        P.append("")
        P.append("| mount | load at the start | total | flows/s | ratio | requests | flowfs CPU "
                 "| PostgreSQL CPU | flowsim CPU |")
        P.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for label, c, rt in (("plain SQLite, core 0 (baseline)", c0, "1.00"),
                             ("cache_url, core 0; PostgreSQL, core 1", c1,
                              f"**{ratio:.2f}** (target {TARGET_COLD}: "
                              f"{verdict(ratio >= TARGET_COLD)})")):
            P.append(f"| {label} | {c['load']:.1f} | {c['total']:.1f} s | "
                     f"{count / c['total']:,.0f} | {rt} | {c['requests']} | {c['fs_cpu']:.1f} s "
                     f"| {c['pg_cpu']:.1f} s | {c['sim_cpu']:.1f} s |")
        P.append("")
        R["own_ratio"] = ratio

    # 3 -----------------------------------------------------------------------
    P.append("### Warm reads (3)")
    P.append("")
    w0, w1 = R.get("plain_warm"), R.get("pg_warm")
    if w0 and w1:
        s0, s1 = R["plain_sizes"], R["pg_sizes"]
        P.append(f"In the same mount as (2), after the cold read of flows.csv and a first read of "
                 f"flows.sqlite ({R['plain_sqlite_first']:.1f} s plain, "
                 f"{R['pg_sqlite_first']:.1f} s with cache_url), both mounts up: `cat` to "
                 f"/dev/null, median of {WARM_RUNS}, the four reads alternating so that both "
                 f"mounts see the same load. Ratio: plain time / cache_url time. The daemons' "
                 f"CPU over all the warm reads: {R.get('plain_warm_cpu', 0):.2f} s plain, "
                 f"{R.get('pg_warm_cpu', 0):.2f} s with cache_url (the kernel's page cache "
                 f"answers; the shared cache is not on this path at all).")
        P.append("")
        P.append("Met when the ratio is at least 1.0 or the two ranges (min-max) overlap: "
                 "the same time within the run's spread.")
        P.append("")
        P.append("| file | size | plain SQLite | cache_url | ratio |")
        P.append("| --- | ---: | ---: | ---: | ---: |")
        for name, k, i in (("flows.csv", "csv", 0), ("flows.sqlite", "sqlite", 1)):
            r = w0[k] / w1[k]
            size = f"{s0[i] / 1e6:.0f} MB" + ("" if s0[i] == s1[i] else f" / {s1[i] / 1e6:.0f} MB")
            g0, g1 = R["plain_warm_range"][k], R["pg_warm_range"][k]
            P.append(f"| {name} | {size} | {w0[k] * 1e3:.0f} ms ({g0[0] * 1e3:.0f}-"
                     f"{g0[1] * 1e3:.0f}) | {w1[k] * 1e3:.0f} ms ({g1[0] * 1e3:.0f}-"
                     f"{g1[1] * 1e3:.0f}) | **{r:.2f}** (target {TARGET_WARM:.1f}: "
                     f"{verdict(overlap(g0, g1) or r >= TARGET_WARM)}) |")
        P.append("")
    else:
        P.append("No figure (see problems).")
        P.append("")

    # 4 -----------------------------------------------------------------------
    P.append("### Rendering both ways (4)")
    P.append("")
    lo, cp, se = R.get("local"), R.get("copy"), R.get("second")
    if lo and cp and lo["rc"] == 0:
        P.append(f"The same folder (heavy-1, {day_of(YESTERDAY)}) three ways. Local copy: the "
                 f"cache_url mount of (2) unmounted and mounted again over the same local cache "
                 f"and database, then the first read of flows.csv (rendered from the local SQLite "
                 f"copy). PostgreSQL directly: `psql -c \"COPY (SELECT (every column but the "
                 f"key's digests) FROM flows WHERE sh = ... AND subject = ... AND start < day's end AND end >= day's start ORDER BY start) TO "
                 f"STDOUT (FORMAT csv)\"` into a file, median of {PSQL_RUNS} "
                 f"({fmt_int(R.get('pg_rows', 0))} rows; the raw columns, addresses as bytea hex, "
                 f"no formatting: less work than flows.csv's). Second machine: a fresh local cache "
                 f"on the same database (pulled from PostgreSQL, then rendered).")
        P.append("")
        P.append("| way | wall | ratio (local copy's time / this time) | requests | flowfs CPU "
                 "| PostgreSQL CPU | bytes |")
        P.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        P.append(f"| flows.csv from the local SQLite copy (what flowfs does) | {lo['total']:.1f} s "
                 f"| 1.00 | {lo['requests']} | {lo['fs_cpu']:.1f} s | {lo['pg_cpu']:.1f} s "
                 f"| {lo['bytes'] / 1e6:.0f} MB |")
        r = lo["total"] / cp["wall"]
        R["copy_ratio"] = r
        P.append(f"| PostgreSQL directly, COPY ... ORDER BY start | {cp['wall']:.1f} s "
                 f"({cp['walls'][0]:.1f}-{cp['walls'][-1]:.1f}) | **{r:.2f}** | 0 | | "
                 f"{cp['pg_cpu']:.1f} s | {cp['bytes'] / 1e6:.0f} MB |")
        if se and se["rc"] == 0:
            P.append(f"| a second machine: pull into a fresh local copy, then render | "
                     f"{se['total']:.1f} s | {lo['total'] / se['total']:.2f} | {se['requests']} "
                     f"| {se['fs_cpu']:.1f} s | {se['pg_cpu']:.1f} s | |")
        P.append("")
        if se and se["rc"] == 0:
            P.append(f"The second machine's flowfs spent {se['fs_cpu']:.1f} s of CPU against "
                     f"{lo['fs_cpu']:.1f} s for the render alone: about "
                     f"{se['fs_cpu'] - lo['fs_cpu']:.1f} s to pull the day (cache_pg_pull: one "
                     f"SELECT per coverage window, its rows as text, decoded) and store it in the "
                     f"local SQLite cache (cache_put_window, as a download stores it), while the "
                     f"server spent {se['pg_cpu']:.1f} s sending it.")
            P.append("")
        pr = R.get("profile")
        if pr:
            P.append(f"The server's side of storing the day, measured apart on the same rows "
                     f"(psql's `\\timing`, one session, COPY's text CSV where flowfs sends the "
                     f"binary format): COPY FROM into a temporary table with no index "
                     f"{pr[0]:.1f} s; COPY FROM, the rows in start order, into an empty table "
                     f"shaped as flows (its primary key: a window new to the database) "
                     f"{pr[1]:.1f} s; INSERT ... SELECT ... ON CONFLICT DO NOTHING of the same "
                     f"rows into it again, every row a conflict (a resent window's fallback) "
                     f"{pr[2]:.1f} s.")
            P.append("")
        if R.get("explain"):
            P.append("The query's plan: `" + " / ".join(x.strip() for x in R["explain"]) + "`.")
            P.append("")
    else:
        P.append("No figure (see problems).")
        P.append("")
    report_end(P, b.problems, t_start)
    return "\n".join(P)


def ready():
    if not fuse_ready("pg.py", ("fusermount3", "cat")):
        return False
    if cluster.find_bindir() is None:
        print(f"pg.py: {cluster.MISSING}", file=sys.stderr)
        return False
    return True


def main():
    return bench_main("pg.py", ready, Bench, measure, report)


if __name__ == "__main__":
    sys.exit(main())
