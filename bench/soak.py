#!/usr/bin/python3
"""soak.py - a bounded soak of flowfs against a faulty flowsim.

Usage: /usr/bin/python3 bench/soak.py BUILD_DIR [SECONDS]   (bench/run soak)
The duration is SECONDS, else $SOAK_SECONDS, else 600; $SOAK_SEED seeds
the readers (default 1); $SOAK_SAMPLES=FILE appends every sample to FILE as
a JSON line.

Starts its own flowsim (bench/simctl.py: 127.0.0.1 port 0, --truth, clock
frozen at 2026-11-29T12:00:00Z, the default scenario) with faults on at
modest rates and a small --max-records, mounts flowfs (bench/fs.py's Mount:
-f, a fresh cache, a short live_ttl), and for the duration runs READERS
threads that loop over many query folders (every host of the scenario but
heavy-1 x the 7 days of data, today's live folders among them; heavy-1 in
10-minute ranges; prefix, pair and range folders) doing random operations:
whole reads of every file, `ls`, `cp -r` + `sha256sum -c`, reads of 64 KiB
then close, and `cat` processes killed mid-read.

Every completed flows.csv of a folder that is not live is checked against
/_sim/truth (rows, and the SHA-256 of the sorted ids): every such folder at
least once (a last pass reads the ones the readers missed).  flows.ndjson's
lines and query.json's "flows" are checked too.  Errors (EIO, ETIMEDOUT...
under faults) are counted, not fatal; a file served complete that differs
from the truth is a failure, listed in the section.

Every SAMPLE_S seconds: flowfs's VmRSS, VmHWM, open descriptors, threads,
the unlinked snapshot files it holds, and flowsim's request counters.  The
readers pause once after the warm-up (a quiet point) and stop at the end (a
second quiet point), so that descriptors are compared without readers'
handles in them.

Every mount is unmounted in `finally`; flowfs, flowsim and the reader
processes are ended by their own pids.  Progress goes to stderr; only the
Markdown section goes to stdout.
"""
import calendar
import errno
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse

from fs import Mount, check_csv, cpu_s, fmt_int, fuse_ready, proc_status
from simctl import NOW_ISO, Sim, report_end

NOW_MS = 1795953600000
DAY = 86400000
TODAY = NOW_MS // DAY * DAY
DAYS = [TODAY - k * DAY for k in range(6, -1, -1)]     # the 7 days of data, today last
HOSTS = ["10.0.1.10", "10.0.1.11", "10.0.1.30", "10.0.1.40", "2001:db8:10::5", "203.0.113.66"]
HEAVY = "10.0.1.20"
HEAVY_HOURS = [14, 20, 2, 17, 5, 11, 8]                 # one 10-minute range a day
FAULTS = {"--fail-500": 0.05, "--fail-503": 0.03, "--fail-429": 0.03, "--slow": 0.05,
          "--reset": 0.02, "--cut": 0.02, "--malformed": 0.02}
MAX_RECORDS = 2000
SIM_ARGS = ["--max-records", str(MAX_RECORDS), "--retry-after", "1", "--fault-seed", "5",
            *[x for k, v in FAULTS.items() for x in (k, str(v))]]
LIVE_TTL = 10
READERS = 6
SAMPLE_S = 5.0
WARMUP_S = 60.0
SLOPED = ("rss", "hwm", "anon", "file", "fds", "other_fds")
OP_HANG_S = 180.0           # an operation running longer than this is reported as a hang
FINAL_PASS_S = 300.0
SMALL = ["summary.txt", "SHA256SUMS", ".progress", "query.json", "timeline.svg"]
BIG = ["flows.csv", "flows.ndjson", "flows.sqlite"]
OPS = [("csv", 22), ("ndjson", 6), ("sqlite", 3), ("small", 20), ("collector", 4), ("ls", 12),
       ("cp", 5), ("partial", 14), ("kill", 8), ("progress", 6)]
STRERROR = {os.strerror(e): errno.errorcode[e] for e in errno.errorcode}


def log(msg):
    print(f"soak: {msg}", file=sys.stderr, flush=True)


def day_name(ms):
    return time.strftime("%Y-%m-%d", time.gmtime(ms // 1000))


def utc_ms(text):
    """ms of 'yyyy-mm-ddThh:mm' (UTC)."""
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M")) * 1000


class Folder:
    """A query folder of the mount and the query /_sim/truth answers for it."""

    def __init__(self, path, ip, start, end, peer=None):
        self.path, self.ip, self.peer, self.start, self.end = path, ip, peer, start, end
        self.live = end > NOW_MS - 300 * 1000
        self.truth = None       # (count, digest), asked once: the clock is frozen
        self.checks = 0         # flows.csv reads compared with the truth


def folders():
    out = []
    for ip in HOSTS:
        for d in DAYS:
            out.append(Folder(f"{ip}/{day_name(d)}", ip, d, d + DAY))
    for d, h in zip(DAYS, HEAVY_HOURS):
        s = d + h * 3600000
        name = f"{day_name(d)}T{h:02d}:00--{day_name(d)}T{h:02d}:10"
        out.append(Folder(f"{HEAVY}/{name}", HEAVY, s, s + 600000))
    d = {k: day_name(DAYS[k]) for k in range(7)}
    out += [
        Folder(f"10.0.1.10_31/{d[4]}", "10.0.1.10/31", DAYS[4], DAYS[4] + DAY),
        Folder(f"10.0.1.10_31/{d[5]}", "10.0.1.10/31", DAYS[5], DAYS[5] + DAY),
        Folder(f"10.0.1.40_30/{d[5]}", "10.0.1.40/30", DAYS[5], DAYS[5] + DAY),
        Folder(f"2001:db8:10::_120/{d[3]}", "2001:db8:10::/120", DAYS[3], DAYS[3] + DAY),
        Folder(f"10.0.1.10+203.0.113.66/{d[4]}", "10.0.1.10", DAYS[4], DAYS[4] + DAY,
               peer="203.0.113.66"),
        Folder(f"10.0.1.11+198.18.0.0_16/{d[2]}", "10.0.1.11", DAYS[2], DAYS[2] + DAY,
               peer="198.18.0.0/16"),
        Folder(f"10.0.1.40+198.18.0.0_15/{d[5]}", "10.0.1.40", DAYS[5], DAYS[5] + DAY,
               peer="198.18.0.0/15"),
        Folder(f"10.0.1.30/{d[3]}T06:00--{d[3]}T18:30", "10.0.1.30",
               utc_ms(f"{d[3]}T06:00"), utc_ms(f"{d[3]}T18:30")),
        Folder(f"10.0.1.11/{d[1]}T00:00--{d[3]}T00:00", "10.0.1.11", DAYS[1], DAYS[3]),
        Folder(f"10.0.1.40/{d[5]}T03:17--{d[5]}T03:18", "10.0.1.40",
               utc_ms(f"{d[5]}T03:17"), utc_ms(f"{d[5]}T03:18")),
    ]
    return out


def errno_name(e):
    return errno.errorcode.get(e.errno, f"errno {e.errno}") if e.errno else type(e).__name__


def errno_of_text(text):
    """The errno named by a tool's message (cat, cp, ls), or 'other'."""
    for msg, name in STRERROR.items():
        if msg in text:
            return name
    return "other"


def snapshot_fds(pid, snap_prefix):
    """[(folder inode, generation, size)] of the unlinked snapshot files pid holds."""
    out = []
    d = f"/proc/{pid}/fd"
    for fd in os.listdir(d):
        try:
            target = os.readlink(f"{d}/{fd}")
            if target.startswith(snap_prefix) and target.endswith(" (deleted)"):
                ino, gen = os.path.basename(target).split("-")[:2]
                out.append((ino, gen, os.stat(f"{d}/{fd}").st_size))
        except (OSError, ValueError):
            pass
    return out


def rss_split(pid):
    """RssAnon and RssFile of a process, in KiB."""
    out = {"anon": 0, "file": 0}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("RssAnon", "RssFile"):
                out[k[3:].lower()] = int(v.split()[0])
    return out


def dir_bytes(path):
    """Disk used by the files under path (allocated blocks)."""
    n = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                n += os.lstat(os.path.join(root, f)).st_blocks * 512
            except OSError:
                pass
    return n


def snapshots_max(repo):
    """SNAPSHOTS_MAX from fs/folder.c, or None."""
    try:
        with open(os.path.join(repo, "fs", "folder.c")) as f:
            m = re.search(r"#define SNAPSHOTS_MAX (\d+)", f.read())
        return int(m.group(1)) if m else None
    except OSError:
        return None


class Stats:
    """What the readers did, under one lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.done = {}          # op -> completed
        self.failed = {}        # op -> failed
        self.errors = {}        # errno name -> count
        self.bytes = 0
        self.killed = self.kill_late = 0
        self.checks = self.live_checks = self.ndjson_checks = self.qjson_checks = 0
        self.sums_ok = 0
        self.sums_failed = []   # failures: a copy whose files disagree with its SHA256SUMS
        self.mismatches = []    # failures: served complete, differs from the truth
        self.declared = []      # differs, but query.json declares gaps (not a failure)
        self.live_diff = []     # live folders that differ from the truth (informational)
        self.progress_max = 0.0
        self.hangs = []
        self.error_where = {}   # errno name -> a few (op, folder) pairs

    def ok(self, op, nbytes=0):
        with self.lock:
            self.done[op] = self.done.get(op, 0) + 1
            self.bytes += nbytes

    def error(self, op, name, folder):
        with self.lock:
            self.failed[op] = self.failed.get(op, 0) + 1
            self.errors[name] = self.errors.get(name, 0) + 1
            w = self.error_where.setdefault(name, [])
            if len(w) < 3:
                w.append(f"{op} {folder}")

    def reads(self):
        with self.lock:
            return sum(self.done.values()), self.bytes


class Soak:
    def __init__(self, build, seconds, seed):
        self.build = os.path.abspath(build)
        self.repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        self.seconds, self.seed = seconds, seed
        self.warmup = min(WARMUP_S, seconds / 2)
        self.tmp = tempfile.mkdtemp(prefix="bench_soak.")
        self.mnt = os.path.join(self.tmp, "mnt")
        self.cache = os.path.join(self.tmp, "cache")
        self.problems = []
        self.stats = Stats()
        self.folders = folders()
        self.samples = []
        self.quiet = {}         # "start" / "end" -> sample taken with no reader active
        self.stop_ev = threading.Event()
        self.pause_ev = threading.Event()
        self.current = [None] * READERS     # (op, folder, t0) of each reader
        self.sim_lock = threading.Lock()
        self.mount = None
        self.sim = Sim(os.path.join(self.build, "sim", "flowsim"), self.tmp, args=SIM_ARGS)

    def close(self):
        try:
            if self.mount:
                self.problems.extend(self.mount.stop())
                with open(self.mount.logpath, errors="replace") as fh:
                    bad = [ln for ln in fh if re.search(r"Sanitizer|runtime error:", ln)]
                if bad:
                    self.problems.append(f"sanitizer reports in flowfs's log: "
                                         f"{' / '.join(x.strip() for x in bad[:5])}")
        finally:
            self.sim.stop()
            shutil.rmtree(self.tmp, ignore_errors=True)

    # ---- flowsim ---------------------------------------------------------

    def sim_get(self, path):
        with self.sim_lock:
            return self.sim.request("GET", path)

    def truth(self, f):
        if f.truth is None:
            q = {"ip": f.ip, "start": f.start, "end": f.end}
            if f.peer:
                q["peer"] = f.peer
            t = self.sim_get("/_sim/truth?" + urllib.parse.urlencode(q))
            f.truth = (t["count"], t["digest"])
        return f.truth

    def counters(self):
        c = self.sim_get("/_sim/counters")
        return c["endpoints"].get("/api/v1/flows", {}), c["faults"]

    # ---- checks ----------------------------------------------------------

    def compare(self, f, rows, distinct, digest, what):
        """Record one comparison of a served file with the truth."""
        count, want = self.truth(f)
        same = rows == count and distinct == count and digest == want
        st = self.stats
        with st.lock:
            if f.live:
                st.live_checks += 1
            else:
                st.checks += 1
                f.checks += 1
        if same:
            return
        text = f"{what} of {f.path}: {rows} rows, {distinct} distinct ids, digest " \
               f"{'=' if digest == want else '!='} truth (truth: {count} flows)"
        if f.live:
            with st.lock:
                st.live_diff.append(text)
            return
        try:
            with open(os.path.join(self.mnt, f.path, "query.json")) as fh:
                q = json.load(fh)
            declared = not q.get("complete", True) and (q.get("gaps") or q["fetch"].get("rejected"))
        except (OSError, ValueError, KeyError):
            declared = False
        with st.lock:
            (st.declared if declared else st.mismatches).append(text)
        log(("declared incomplete: " if declared else "MISMATCH: ") + text)

    def check_csv_path(self, f, path, what):
        rows, distinct, digest = check_csv(path)
        self.compare(f, rows, distinct, digest, what)

    # ---- the readers' operations -----------------------------------------

    def read_all(self, path):
        n = 0
        with open(path, "rb", buffering=0) as fh:
            while True:
                b = fh.read(1 << 20)
                if not b:
                    return n
                n += len(b)

    def op_csv(self, rnd, f):
        path = os.path.join(self.mnt, f.path, "flows.csv")
        size = os.stat(path).st_size
        self.check_csv_path(f, path, "flows.csv")
        return size

    def op_ndjson(self, rnd, f):
        n = lines = 0
        with open(os.path.join(self.mnt, f.path, "flows.ndjson"), "rb") as fh:
            for line in fh:
                n += len(line)
                lines += 1
        if not f.live:
            count, _ = self.truth(f)
            with self.stats.lock:
                self.stats.ndjson_checks += 1
            if lines != count:
                with self.stats.lock:
                    self.stats.mismatches.append(f"flows.ndjson of {f.path}: {lines} lines "
                                                 f"(truth: {count} flows)")
        return n

    def op_sqlite(self, rnd, f):
        return self.read_all(os.path.join(self.mnt, f.path, "flows.sqlite"))

    def op_small(self, rnd, f):
        name = rnd.choice(SMALL)
        path = os.path.join(self.mnt, f.path, name)
        if name != "query.json":
            return self.read_all(path)
        with open(path, "rb") as fh:
            data = fh.read()
        q = json.loads(data)
        if not f.live and q.get("complete"):
            count, _ = self.truth(f)
            with self.stats.lock:
                self.stats.qjson_checks += 1
                if q.get("flows") != count:
                    self.stats.mismatches.append(f"query.json of {f.path}: flows {q.get('flows')} "
                                                 f"(truth: {count})")
        return len(data)

    def op_progress(self, rnd, f):
        t0 = time.monotonic()
        n = self.read_all(os.path.join(self.mnt, f.path, ".progress"))
        dt = time.monotonic() - t0
        with self.stats.lock:
            self.stats.progress_max = max(self.stats.progress_max, dt)
        return n

    def op_collector(self, rnd, f):
        d = os.path.join(self.mnt, "collector")
        return self.read_all(os.path.join(d, rnd.choice(os.listdir(d))))

    def op_ls(self, rnd, f):
        k = rnd.randrange(3)
        if k == 0:
            os.listdir(self.mnt)
            return 0
        if k == 1:
            os.listdir(os.path.join(self.mnt, f.path.split("/")[0]))
            return 0
        d = os.path.join(self.mnt, f.path)          # ls -l: stating a file runs the query
        for e in os.listdir(d):
            os.stat(os.path.join(d, e))
        return 0

    def op_partial(self, rnd, f):
        fd = os.open(os.path.join(self.mnt, f.path, rnd.choice(BIG + SMALL)), os.O_RDONLY)
        try:
            return len(os.read(fd, 65536))
        finally:
            os.close(fd)

    def op_kill(self, rnd, f):
        """`cat` of a big file, SIGKILLed by its pid after 0 to 1.5 s."""
        p = subprocess.Popen(["cat", os.path.join(self.mnt, f.path, rnd.choice(BIG))],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        time.sleep(rnd.uniform(0.0, 1.5))
        killed = p.poll() is None
        if killed:
            os.kill(p.pid, signal.SIGKILL)
        err = p.communicate()[1].decode(errors="replace")
        with self.stats.lock:
            if killed:
                self.stats.killed += 1
            else:
                self.stats.kill_late += 1
        if not killed and p.returncode != 0:
            raise OSError(0, err.strip()) from None
        return 0

    def op_cp(self, rnd, f, dest):
        """cp -r of the folder, sha256sum -c in the copy, its flows.csv against the truth."""
        shutil.rmtree(dest, ignore_errors=True)
        try:
            p = subprocess.run(["cp", "-r", os.path.join(self.mnt, f.path), dest],
                               capture_output=True, text=True, timeout=OP_HANG_S)
            if p.returncode != 0:
                raise OSError(0, p.stderr.strip())
            s = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=dest, capture_output=True,
                               text=True, timeout=OP_HANG_S)
            if s.returncode != 0:
                bad = [ln.split(":")[0] for ln in s.stdout.splitlines() if ln.endswith("FAILED")]
                with self.stats.lock:
                    self.stats.sums_failed.append(f"{f.path}: {', '.join(bad) or s.stderr.strip()}")
                log(f"SHA256SUMS FAILED in a copy of {f.path}: {bad}")
            else:
                with self.stats.lock:
                    self.stats.sums_ok += 1
            self.check_csv_path(f, os.path.join(dest, "flows.csv"), "flows.csv (copy)")
            return dir_bytes(dest)
        finally:
            shutil.rmtree(dest, ignore_errors=True)

    def reader(self, idx):
        rnd = random.Random(self.seed * 1000 + idx)
        names = [o for o, _ in OPS]
        weights = [w for _, w in OPS]
        dest = os.path.join(self.tmp, f"copy{idx}")
        while not self.stop_ev.is_set():
            self.current[idx] = ("starting", "", time.monotonic())    # before the pause check
            if self.pause_ev.is_set():
                self.current[idx] = None
                time.sleep(0.1)
                continue
            op = rnd.choices(names, weights)[0]
            pool = self.folders
            if op == "cp":
                pool = [f for f in self.folders if not f.live]
            elif op == "csv" and rnd.random() < 0.5:
                pool = [f for f in self.folders if not f.live and not f.checks] or pool
            f = rnd.choice(pool)
            self.current[idx] = (op, f.path, time.monotonic())
            try:
                if op == "cp":
                    n = self.op_cp(rnd, f, dest)
                else:
                    n = getattr(self, "op_" + op)(rnd, f)
                self.stats.ok(op, n)
            except OSError as e:
                name = errno_name(e) if e.errno else errno_of_text(str(e))
                self.stats.error(op, name, f.path)
            except Exception as e:      # a bug of the soak, or garbage served: counted, shown
                self.stats.error(op, type(e).__name__, f.path)
                with self.stats.lock:
                    if len(self.problems) < 20:
                        self.problems.append(f"{op} of {f.path}: {type(e).__name__}: {e}")
            finally:
                self.current[idx] = None
            time.sleep(rnd.uniform(0.0, 0.05))

    # ---- sampling ----------------------------------------------------------

    def sample(self, t0, label=None):
        pid = self.mount.pid
        st = proc_status(pid)
        snaps = snapshot_fds(pid, os.path.join(self.cache, "snap-"))
        flows, faults = self.counters()
        reads, nbytes = self.stats.reads()
        s = {"t": time.monotonic() - t0, "rss": st["VmRSS"], "hwm": st["VmHWM"], "fds": st["fds"],
             "other_fds": st["fds"] - len(snaps), **rss_split(pid),
             "threads": st["Threads"], "snap_files": len(snaps),
             "snap_folders": len({x[0] for x in snaps}), "snap_bytes": sum(x[2] for x in snaps),
             "requests": sum(flows.values()), "flows": flows, "faults": faults,
             "fs_cpu": cpu_s(pid), "sim_cpu": cpu_s(self.sim.proc.pid), "reads": reads,
             "bytes": nbytes, "load": os.getloadavg()[0]}
        if label:
            self.quiet[label] = s
        else:
            self.samples.append(s)
        if os.environ.get("SOAK_SAMPLES"):
            with open(os.environ["SOAK_SAMPLES"], "a") as fh:
                fh.write(json.dumps(dict(s, label=label)) + "\n")
        return s

    def watch(self, t0):
        """Hangs: an operation that has run longer than OP_HANG_S."""
        seen = {h[:2] for h in self.stats.hangs}
        for cur in list(self.current):
            if cur and time.monotonic() - cur[2] > OP_HANG_S and cur[:2] not in seen:
                try:
                    with open(os.path.join(self.mnt, cur[1], ".progress")) as fh:
                        prog = " / ".join(fh.read().strip().splitlines())
                except OSError as e:
                    prog = str(e)
                self.stats.hangs.append((cur[0], cur[1], time.monotonic() - cur[2], prog))
                log(f"HANG: {cur[0]} of {cur[1]} for {time.monotonic() - cur[2]:.0f} s: {prog}")

    def quiet_point(self, t0, label):
        """Pause the readers, wait until none is inside an operation, sample."""
        self.pause_ev.set()
        deadline = time.monotonic() + OP_HANG_S
        while any(self.current) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)
        s = self.sample(t0, label)
        self.pause_ev.clear()
        return s

    # ---- the run -----------------------------------------------------------

    def run(self, R):
        R["load0"] = os.getloadavg()[0]
        log(f"flowsim on {self.sim.url}; asking the truth of {len(self.folders)} folders")
        for f in self.folders:
            self.truth(f)
        R["truth_flows"] = sum(f.truth[0] for f in self.folders)
        log("mounting flowfs")
        self.mount = Mount(os.path.join(self.build, "fs", "flowfs"), self.sim.url, self.mnt,
                           self.cache, self.sim.token_file, os.path.join(self.tmp, "flowfs.log"),
                           opts=[f"live_ttl={LIVE_TTL}"])
        R["mount_s"] = self.mount.mount_s
        t0 = time.monotonic()
        self.sample(t0)
        threads = [threading.Thread(target=self.reader, args=(i,), daemon=True)
                   for i in range(READERS)]
        for th in threads:
            th.start()
        quiet_done = False
        next_log = 0.0
        while True:
            t = time.monotonic() - t0
            if t >= self.seconds:
                break
            time.sleep(min(SAMPLE_S - t % SAMPLE_S, self.seconds - t))
            t = time.monotonic() - t0
            if not quiet_done and t >= self.warmup:
                s = self.quiet_point(t0, "start")
                quiet_done = True
                log(f"quiet point after the warm-up at {s['t']:.0f} s: RSS {s['rss'] // 1024} MiB, "
                    f"{s['fds']} fds, {s['threads']} threads")
            s = self.sample(t0)
            self.watch(t0)
            if t >= next_log:
                next_log = t + 30
                log(f"{s['t']:4.0f} s: RSS {s['rss'] // 1024} MiB (HWM {s['hwm'] // 1024}), "
                    f"{s['fds']} fds, {s['threads']} threads, {s['snap_folders']} snapshots, "
                    f"{s['requests']} requests, {s['reads']} ops, {s['bytes'] / 1e6:.0f} MB, "
                    f"errors {dict(self.stats.errors)}")
        self.stop_ev.set()
        log("stopping the readers")
        deadline = time.monotonic() + OP_HANG_S
        for th in threads:
            th.join(max(0.1, deadline - time.monotonic()))
        stuck = [self.current[i] for i, th in enumerate(threads) if th.is_alive()]
        for cur in stuck:
            self.problems.append(f"a reader did not finish within {OP_HANG_S:.0f} s of the end: "
                                 f"{cur}")
        R["run_s"] = time.monotonic() - t0
        # the last pass: every folder not yet compared with the truth
        missed = [f for f in self.folders if not f.live and not f.checks]
        R["final_pass"] = len(missed)
        log(f"last pass: {len(missed)} folders not yet checked")
        end = time.monotonic() + FINAL_PASS_S
        for f in missed:
            if time.monotonic() > end:
                break
            try:
                self.check_csv_path(f, os.path.join(self.mnt, f.path, "flows.csv"),
                                    "flows.csv (last pass)")
                self.stats.ok("csv (last pass)")
            except OSError as e:
                self.stats.error("csv (last pass)", errno_name(e), f.path)
        time.sleep(1.0)
        self.sample(t0, "end")
        R["cache_bytes"] = dir_bytes(self.cache)
        R["db_files"] = sorted((n, os.path.getsize(os.path.join(self.cache, n)))
                               for n in os.listdir(self.cache)
                               if os.path.isfile(os.path.join(self.cache, n)))
        R["snap_max"] = snapshots_max(self.repo)
        R["load1"] = os.getloadavg()[0]
        with open(self.mount.logpath, errors="replace") as fh:
            R["log"] = fh.read()


def slope_per_hour(samples, key):
    """Least-squares slope of key over time, per hour."""
    if len(samples) < 3:
        return None
    ts = [s["t"] for s in samples]
    vs = [s[key] for s in samples]
    mt, mv = sum(ts) / len(ts), sum(vs) / len(vs)
    den = sum((t - mt) ** 2 for t in ts)
    return sum((t - mt) * (v - mv) for t, v in zip(ts, vs)) / den * 3600 if den else None


def report(b, R, t_start):
    P = []
    st = b.stats
    q0, q1 = b.quiet.get("start"), b.quiet.get("end")
    samples = b.samples
    after = [s for s in samples if s["t"] >= b.warmup]
    second = [s for s in samples if s["t"] >= b.seconds / 2]
    past = [f for f in b.folders if not f.live]
    fault_text = ", ".join(f"{k[2:]} {v:g}" for k, v in FAULTS.items())
    P.append(f"flowsim: 127.0.0.1 port 0, `--truth`, clock frozen at {NOW_ISO}, the default "
             f"scenario, `--max-records {MAX_RECORDS}`, faults on every `/flows` request: "
             f"{fault_text} (`--retry-after 1`, slow answers after 2 s, `--fault-seed 5`). flowfs: "
             f"`-f`, a fresh cache, `-o live_ttl={LIVE_TTL}`, other options at their defaults "
             f"(tz UTC, 4 requests in flight per folder, 6 retries). {READERS} reader threads "
             f"(seed {b.seed}) for **{b.seconds:.0f} s** over {len(b.folders)} query folders "
             f"({fmt_int(R.get('truth_flows', 0))} flows in all): the {len(HOSTS)} hosts of the "
             f"scenario other than heavy-1 (the scan's attacker counted) x the 7 days of data "
             f"(today's folders live), heavy-1 ({HEAVY}, about 2,000,000 flows a day, too heavy "
             f"for seconds-long folders at this cap) in one 10-minute range a day, prefix "
             f"(`10.0.1.10_31`, `10.0.1.40_30`, `2001:db8:10::_120`), pair (the scan, two peer "
             f"prefixes) and range folders. Operations, by weight: "
             f"{', '.join(f'{o} {w}' for o, w in OPS)} (csv: read and compare with the truth; "
             f"small: one of {', '.join(SMALL)}; ls: the root, an address folder, or a query "
             f"folder with a `stat` of each file; cp: `cp -r` of a folder that is not live, "
             f"`sha256sum -c` in the copy, its flows.csv against the truth; partial: open, read "
             f"64 KiB, close; kill: `cat` of a big file SIGKILLed after 0 to 1.5 s). Samples "
             f"every {SAMPLE_S:g} s. The machine was shared with other work (load average "
             f"{R.get('load0', 0):.1f} at the start, {R.get('load1', 0):.1f} at the end) and the "
             f"soak ran under `nice -n 10`; mounting took {R.get('mount_s', 0):.2f} s.")
    P.append("")

    P.append("### Memory, descriptors, threads")
    P.append("")
    if q0 and q1 and samples:
        P.append(f"Quiet points: the readers paused after the {b.warmup:.0f} s warm-up (start), "
                 f"and stopped at the end, each time no operation in flight (so descriptors "
                 f"count no reader's open file). Peak: the largest of the samples. Slope: "
                 f"least squares over the {len(after)} samples after the warm-up, and over the "
                 f"{len(second)} of the second half of the run, per hour.")
        P.append("")
        P.append("| figure | start (quiet, t = {:.0f} s) | end (quiet, t = {:.0f} s) | peak "
                 "| end / start | slope after the warm-up |".format(q0["t"], q1["t"]))
        P.append("| --- | ---: | ---: | ---: | ---: | ---: |")
        for key, label, unit, scale in (("rss", "VmRSS", "MiB", 1024), ("hwm", "VmHWM", "MiB", 1024),
                                        ("anon", "of VmRSS: anonymous (RssAnon)", "MiB", 1024),
                                        ("file", "of VmRSS: file pages (RssFile)", "MiB", 1024),
                                        ("fds", "open descriptors", "", 1),
                                        ("other_fds", "of them not snapshot files (the daemon's "
                                         "own: FUSE, log, SQLite, sockets)", "", 1),
                                        ("threads", "threads", "", 1),
                                        ("snap_files", "unlinked snapshot files held", "", 1),
                                        ("snap_folders", "folders whose snapshot is held", "", 1),
                                        ("snap_bytes", "disk held by those files", "MB", 1e6)):
            a, z = q0[key] / scale, q1[key] / scale
            peak = max(s[key] for s in samples + [q0, q1]) / scale
            sl = slope_per_hour(after, key) if key in SLOPED else None
            late = slope_per_hour(second, key) if key in SLOPED else None
            u = f" {unit}" if unit else ""
            rel = f" ({sl / scale / a:+.0%} of start)" if sl is not None and a else ""
            slt = f"{sl / scale:+.1f}{u}/h{rel}" if sl is not None else ""
            if late is not None:
                slt += f"; second half {late / scale:+.1f}{u}/h"
            ratio = f"**{z / a:.2f}**" if a else "n/a"
            P.append(f"| {label} | {a:.1f}{u} | {z:.1f}{u} | {peak:.1f}{u} | {ratio} | {slt} |"
                     if scale != 1 else f"| {label} | {a:.0f} | {z:.0f} | {peak:.0f} | {ratio} "
                     f"| {slt} |")
        P.append("")
        P.append("Once a minute (the samples):")
        P.append("")
        P.append("| t | VmRSS (anon, file) | VmHWM | fds (not snapshots) | threads "
                 "| snapshots held (folders, files) | requests so far | operations so far "
                 "| MB read so far | load |")
        P.append("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        shown = -60.0
        for s in samples:
            if s["t"] - shown >= 60 - SAMPLE_S / 2 or s is samples[-1]:
                shown = s["t"]
                P.append(f"| {s['t']:.0f} s | {s['rss'] / 1024:.0f} MiB ({s['anon'] / 1024:.0f}, "
                         f"{s['file'] / 1024:.0f}) | {s['hwm'] / 1024:.0f} MiB "
                         f"| {s['fds']} ({s['other_fds']}) | {s['threads']} "
                         f"| {s['snap_folders']}, {s['snap_files']} "
                         f"| {fmt_int(s['requests'])} | {fmt_int(s['reads'])} "
                         f"| {s['bytes'] / 1e6:,.0f} | {s['load']:.1f} |")
        P.append("")
        rss_sl = slope_per_hour(after, "rss")
        if rss_sl is not None:
            late = slope_per_hour(second, "rss")
            P.append(f"Memory: VmRSS end / start {q1['rss'] / q0['rss']:.2f}; the slope after the "
                     f"warm-up implies {rss_sl / 1024:+.1f} MiB an hour ({rss_sl / q0['rss']:+.0%} "
                     f"of the start), the second half of the run "
                     f"{late / 1024:+.1f} MiB an hour ({late / q0['rss']:+.0%}). "
                     f"Descriptors: end / start {q1['fds'] / q0['fds']:.2f} in all (the snapshot "
                     f"files held vary with the folders held), {q1['other_fds'] / q0['other_fds']:.2f} "
                     f"for the daemon's own ({q0['other_fds']} and {q1['other_fds']}). Snapshots "
                     f"held at the end: {q1['snap_folders']} folders ({q1['snap_files']} unlinked "
                     f"files, {q1['snap_bytes'] / 1e6:.0f} MB); the bound SNAPSHOTS_MAX = "
                     f"{R.get('snap_max')} (fs/folder.c) counts folders in the ready state; the "
                     f"samples, taken while readers run, also count the snapshots that readers' "
                     f"open handles keep and those of live folders being refreshed: at most "
                     f"{max(s['snap_folders'] for s in samples)} folders, "
                     f"{max(s['snap_files'] for s in samples)} files.")
            P.append("")
        if R.get("snap_max") is not None and q1["snap_folders"] > R["snap_max"]:
            b.problems.append(f"{q1['snap_folders']} folders hold a snapshot at the end, over "
                              f"SNAPSHOTS_MAX ({R['snap_max']})")
        cpu_fs = q1["fs_cpu"] - samples[0]["fs_cpu"]
        cpu_sim = q1["sim_cpu"] - samples[0]["sim_cpu"]
        P.append(f"CPU over the run: flowfs {cpu_fs:.0f} s, flowsim {cpu_sim:.0f} s "
                 f"({cpu_fs / q1['t']:.2f} and {cpu_sim / q1['t']:.2f} cores). Cache directory at "
                 f"the end: {R.get('cache_bytes', 0) / 1e6:.0f} MB on disk ("
                 + ", ".join(f"{n} {sz / 1e6:.1f} MB" for n, sz in R.get("db_files", []))
                 + "; snapshots are unlinked, counted above).")
        P.append("")

    P.append("### Requests and faults")
    P.append("")
    if q1 and samples:
        flows, faults = q1["flows"], q1["faults"]
        total = sum(flows.values())
        injected = sum(faults.values())
        warm = q0["requests"] if q0 else 0
        P.append("From flowsim's `/_sim/counters` (requests to `/api/v1/flows`). A request that "
                 "met a fault (an error status, a reset, a cut or malformed body; a slow answer "
                 "is still a good one) has to be sent again: those are the retries.")
        P.append("")
        P.append("| figure | value |")
        P.append("| --- | ---: |")
        P.append(f"| requests sent, whole run | {fmt_int(total)} |")
        P.append(f"| of them after the warm-up (live refreshes, re-queries of failed folders) "
                 f"| {fmt_int(total - warm)} |")
        P.append(f"| answers by status | "
                 + ", ".join(f"{k}: {fmt_int(v)}" for k, v in sorted(flows.items()) if v) + " |")
        P.append(f"| faults injected | "
                 + ", ".join(f"{k}: {fmt_int(v)}" for k, v in sorted(faults.items()) if v) + " |")
        retries = injected - faults.get("slow", 0)
        P.append(f"| retries needed (faults other than slow) | {fmt_int(retries)} "
                 f"({retries / total:.1%} of the requests) |" if total else "| retries | 0 |")
        P.append("")

    P.append("### Reads and errors")
    P.append("")
    with st.lock:
        ops = sorted(set(st.done) | set(st.failed))
        P.append(f"{fmt_int(sum(st.done.values()))} operations completed, "
                 f"{fmt_int(sum(st.failed.values()))} failed, {st.bytes / 1e9:.2f} GB read "
                 f"through the mount (`cp` counts the copy's size). `cat` processes killed "
                 f"mid-read: {st.killed} (and {st.kill_late} ended before their kill). "
                 f"`.progress` read in at most {st.progress_max * 1e3:.0f} ms.")
        P.append("")
        P.append("| operation | completed | failed |")
        P.append("| --- | ---: | ---: |")
        for o in ops:
            P.append(f"| {o} | {fmt_int(st.done.get(o, 0))} | {fmt_int(st.failed.get(o, 0))} |")
        P.append("")
        if st.errors:
            P.append("Errors by errno (the reader's, or the message of `cat`/`cp`), with examples:")
            P.append("")
            P.append("| errno | count | e.g. |")
            P.append("| --- | ---: | --- |")
            for name, n in sorted(st.errors.items(), key=lambda x: -x[1]):
                P.append(f"| {name} | {n} | {'; '.join(st.error_where.get(name, []))} |")
            P.append("")
        else:
            P.append("No operation failed.")
            P.append("")
        causes = {}
        for line in R.get("log", "").splitlines():
            # "/10.0.1.5/2026-12-05: failed after 2.1 s, ...: CAUSE (readers get E)"
            m = re.search(r"flowfs\[\d+\]: (/\S+): failed after [^:]*: (.*)", line)
            if m:
                cause = re.sub(r"\d+", "N", m.group(2))[:120]
                causes[cause] = causes.get(cause, 0) + 1
        if causes:
            P.append("Failed queries in flowfs's log, by cause (numbers as N):")
            P.append("")
            for cause, n in sorted(causes.items(), key=lambda x: -x[1]):
                P.append(f"- {n} x {cause}")
            P.append("")

        P.append("### Completeness")
        P.append("")
        checked = sum(1 for f in past if f.checks)
        P.append("| check | value |")
        P.append("| --- | ---: |")
        P.append(f"| folders that are not live, flows.csv compared with `/_sim/truth` (rows, "
                 f"distinct ids, SHA-256 of the sorted ids) at least once | {checked} of "
                 f"{len(past)} ({R.get('final_pass', 0)} of them in the last pass) |")
        P.append(f"| comparisons of flows.csv (reads and copies) | {fmt_int(st.checks)} |")
        P.append(f"| flows.ndjson line counts, query.json `flows` counts compared "
                 f"| {fmt_int(st.ndjson_checks)}, {fmt_int(st.qjson_checks)} |")
        P.append(f"| `sha256sum -c` in a copy of a folder that is not live: passed, **failed** "
                 f"| {fmt_int(st.sums_ok)}, **{len(st.sums_failed)}** |")
        P.append(f"| **files served complete that differ from the truth** "
                 f"| **{len(st.mismatches)}** {'(must be 0)' if st.mismatches else ''} |")
        P.append(f"| differ, but query.json declares the gaps | {len(st.declared)} |")
        P.append(f"| live folders compared with the truth at the frozen clock (informational) "
                 f"| {st.live_checks}, {len(st.live_diff)} differed |")
        P.append(f"| operations that ran over {OP_HANG_S:.0f} s (hangs) | {len(st.hangs)} |")
        P.append("")
        for label, lst in (("Mismatches", st.mismatches),
                           ("Copies that failed `sha256sum -c` (the files that failed)",
                            st.sums_failed), ("Declared incomplete", st.declared),
                           ("Live folders that differed", st.live_diff)):
            if lst:
                P.append(f"{label} (first 10):")
                P.append("")
                P.extend(f"- {x}" for x in lst[:10])
                P.append("")
        for h in st.hangs:
            b.problems.append(f"hang: {h[0]} of {h[1]} ran {h[2]:.0f} s; .progress: {h[3]}")
        if st.mismatches:
            b.problems.append(f"{len(st.mismatches)} files served complete differ from the truth")
        if st.sums_failed:
            b.problems.append(f"{len(st.sums_failed)} copies of folders that are not live failed "
                              f"`sha256sum -c`")
    if R.get("exit_s") is not None:
        P.append(f"flowfs exited {R['exit_s']:.1f} s after `fusermount3 -u`.")
    report_end(P, b.problems, t_start)
    return "\n".join(P)


def main():
    if len(sys.argv) not in (2, 3):
        print("usage: soak.py BUILD_DIR [SECONDS]", file=sys.stderr)
        return 2
    if not fuse_ready("soak.py", ("fusermount3", "cat", "cp", "sha256sum")):
        return 1
    seconds = float(sys.argv[2] if len(sys.argv) == 3 else os.environ.get("SOAK_SECONDS", 600))
    t_start = time.monotonic()
    b = Soak(sys.argv[1], seconds, int(os.environ.get("SOAK_SEED", 1)))
    R = {}
    try:
        b.run(R)
    except Exception as e:      # the report still shows what was measured
        traceback.print_exc()
        b.problems.append(f"the soak stopped early: {type(e).__name__}: {e}")
    finally:
        b.stop_ev.set()
        b.close()
    if b.mount:
        R["exit_s"] = getattr(b.mount, "exit_s", None)
    print(report(b, R, t_start))
    return 0    # problems are in the section, so that the report shows them


if __name__ == "__main__":
    sys.exit(main())
