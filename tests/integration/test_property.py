"""Property tests of the engine's losslessness from any cache state (issue 10;
meson test 'property').

The property: whatever the cache holds (ranges that start or end exactly at
a flood's millisecond or at the edges of the scan's second, peer queries,
runs killed midway), asking for the whole day gives exactly the collector's
flows: exit 0 and the truth, or exit 3 with gaps that are legitimate (a
millisecond in which at least max_records flows share one peer address: the
scan's second at a small cap), everything outside them the truth.

1. flowfetch: a trial is a fresh cache, 1 to MAX_PRIORS earlier queries drawn
   at random (each judged against the truth too, unless killed), then the
   whole day of every subject they touched (victim-1 on the flood day,
   web-1 on the scan day); addresses are sometimes spelled as /32, outputs
   are CSV, NDJSON or SQLite, --max-inflight 1, 4 or 8.  Cases: --match
   start and overlap, with and without faults (503, reset, cut at a fixed
   fault seed a trial), and the smallest cap flowfs takes (100), where the scan
   can leave real gaps.
2. flowfs: five folders read at once through a mount over a slow collector
   (its cache sometimes seeded first by a flowfetch that ends at the flood's
   millisecond), kill -9 of the daemon at a seeded point, fusermount3 -u,
   a mount on the same cache: every folder is exact (flows.csv, query.json
   complete and no gap, a cp -r that passes sha256sum -c SHA256SUMS).

Only user-visible facts are assumed: the exit statuses, the CSV / NDJSON /
SQLite columns, the gap lines flowfetch writes ("gap: A to B, peer P: ..."),
query.json's complete, gaps and flows, SHA256SUMS.  Request counts are never
asserted (the collector's random subsets make them vary).

Randomness: everything comes from random.Random("SEED:case:trial"), SEED
the run's seed (conftest); it is printed in the assertion messages, in the
report of a failed test and in the JUnit report.  FLOWFS_SEED=N replays a
run: the same queries, kill points and fault seeds (the collector's random
subsets, and which request meets a fault when several are in flight, still
vary).  PROPERTY_TRIALS=N and PROPERTY_MOUNT_TRIALS=N change the number of
trials a flowfetch case and of flowfs kill points (the main cost: see "What
drives the run time").

Run:  /usr/bin/python3 -m pytest tests/integration/test_property.py -q
"""

import csv
import io
import json
import os
import random
import re
import secrets
import shutil
import signal
import subprocess
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from conftest import (COLUMNS, NOW_ISO, SEED, Fetch, digest_of, fetch_cmd,
                      flowfetch, run_fetch, sqlite_open, start_fetch)
from mount import mounted_at, require_flowfs, require_fuse, run

# ---- What drives the run time ------------------------------------------------------
# part 1: TRIALS x len(CASES) trials, each up to MAX_PRIORS earlier queries
# and one or two whole days (0.3 s for the flood day at cap 10,000, 1 s for
# the scan day; about 2 s each at cap 100; backoffs add about 1 s a query
# under faults, and now and then 10 to 30 s when one window meets six or
# seven faults in a row: sleeping, not CPU).  part 2: MOUNT_TRIALS kill -9
# trials of 5 to 9 s (flowfs renders some 115,000 flows into the files).
TRIALS = int(os.environ.get("PROPERTY_TRIALS") or 3)   # trials a flowfetch case
MAX_PRIORS = 4          # earlier queries a trial: 1 .. MAX_PRIORS
KILL_P = 0.3            # the chance an earlier query is killed midway
MOUNT_TRIALS = int(os.environ.get("PROPERTY_MOUNT_TRIALS") or 3)
                        # kill -9 points of flowfs, one trial (and cache) each

SEC = 1000
MIN = 60 * SEC
HOUR = 60 * MIN
DAY = 24 * HOUR
RUN_TIMEOUT_S = 180

SLOW_MS = 25            # an answer's delay while a query to be killed runs
FAULTS = {"503": 0.2, "reset": 0.1, "cut": 0.1}
FAULT_RETRIES = 12      # a window is lost after 13 faults: p = 0.4^13 = 7e-6

# case -> (match, max_records, faults, kill points: 200-answers in [1, n])
CASES = {
    "start": ("start", 10000, False, 4),
    "overlap": ("overlap", 10000, False, 4),
    "start-faults": ("start", 10000, True, 4),
    "overlap-faults": ("overlap", 10000, True, 4),
    "start-cap100": ("start", 100, False, 100),
}

GAP_LINE = re.compile(r"gap: (\S+) to (\S+), peer (\S+?):")


# ---- small helpers ------------------------------------------------------------

def iso(ms):
    return (datetime.fromtimestamp(ms // 1000, timezone.utc)
            .strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z")


def ms_of(text):
    return int(datetime.fromisoformat(text.replace("Z", "+00:00"))
               .timestamp() * 1000 + 0.5)


def day_text(ms):
    return datetime.fromtimestamp(ms // 1000, timezone.utc).strftime(
        "%Y-%m-%d")


def flows_200(sim):
    return sim.counters().get("endpoints", {}).get("/api/v1/flows", {}).get(
        "200", 0)


def flows_requests(sim):
    return sum(sim.counters().get("endpoints", {}).get("/api/v1/flows", {})
               .values())


def csv_ids(data):
    """flows.csv bytes -> the flowId column, in file order (the header is
    the documented one, every record has its fields)."""
    rows = csv.reader(io.StringIO(data.decode("utf-8"), newline=""),
                      strict=True)
    header = next(rows)
    assert header == COLUMNS, f"CSV header {header}"
    i = header.index("flowId")
    out = []
    for r in rows:
        assert len(r) == len(COLUMNS), f"a CSV record of {len(r)} fields: {r}"
        out.append(r[i])
    return out


def output_ids(path):
    """The flowId of every flow of a flowfetch output, in file order (a
    lighter reader than conftest.output_rows: whole days are judged)."""
    path = Path(path)
    if path.suffix == ".csv":
        return csv_ids(path.read_bytes())
    if path.suffix == ".ndjson":
        out = []
        for line in path.read_bytes().decode("utf-8").splitlines():
            obj = json.loads(line)
            assert sorted(obj) == sorted(COLUMNS), sorted(obj)
            out.append(obj["flowId"])
        return out
    con = sqlite_open(path)
    try:
        return [r[0] for r in con.execute('select "flowId" from flows')]
    finally:
        con.close()


class Events:
    """The scenario's flood and scan, from /_sim/scenario."""

    def __init__(self, sim):
        sc = {s["name"]: s for s in sim.scenario()["streams"]}
        fl, sn = sc["flood-1"], sc["scan-1"]
        assert fl["end"] - fl["start"] == 1 and sn["end"] - sn["start"] == SEC
        self.victim, self.flood = fl["addr"], fl["start"]
        self.flood_day = self.flood - self.flood % DAY
        self.web, self.scan = sn["addr"], sn["start"]
        self.scanner = sn["attacker"]
        self.scan_day = self.scan - self.scan % DAY


class Truth:
    """Ids of the flows that start in [S, E), from a sim in start mode (the
    dataset does not depend on --match or --max-records), asked once."""

    def __init__(self, sim):
        self.sim = sim
        self.memo = {}

    def __call__(self, ip, S, E, peer=None):
        key = (ip, S, E, peer)
        if key not in self.memo:
            t = self.sim.truth(ip, S, E, peer, list="ids")
            assert len(t["ids"]) == t["count"]
            self.memo[key] = (set(t["ids"]), t["digest"])
        return self.memo[key]


# ---- fixtures -----------------------------------------------------------------

@pytest.fixture(scope="module")
def token():
    return "prop-" + secrets.token_hex(16)


def args_of(token_file, *extra):
    return ["--now", NOW_ISO, "--seed", "1", "--token-file", str(token_file),
            *extra]


@pytest.fixture(scope="module")
def truth_sim(make_module_sim, token_file):
    return make_module_sim(*args_of(token_file))


@pytest.fixture(scope="module")
def truth(truth_sim):
    return Truth(truth_sim)


@pytest.fixture(scope="module")
def events(truth_sim):
    return Events(truth_sim)


@pytest.fixture(scope="module")
def flood_sources(truth_sim, events):
    """The flood's source addresses (sorted), for peer queries."""
    t = truth_sim.truth(events.victim, events.flood, events.flood + 1,
                        list="records")
    return sorted({r["src"] for r in t["records"]})


@pytest.fixture(scope="module")
def case_sims(make_module_sim, token_file):
    """case -> its collector, started on first use, kept for the module."""
    sims = {}

    def get(case):
        if case not in sims:
            match, cap, faults, _ = CASES[case]
            extra = ["--match", match, "--max-records", str(cap),
                     "--slow", "0", "--slow-ms", str(SLOW_MS)]
            if faults:
                extra += ["--fault-seed", "1"]
                for k, v in FAULTS.items():
                    extra += [f"--fail-{k}" if k.isdigit() else f"--{k}",
                              str(v)]
            sims[case] = make_module_sim(*args_of(token_file, *extra))
        return sims[case]
    return get


# ---- 1. flowfetch from random cache states --------------------------------------

class Trial:
    """One trial: its rng, its cache, its collector, the log of its queries
    (shown with any failure, with the seed that replays it)."""

    def __init__(self, case, n, sim, truth, events, flood_sources, token_file,
                 tmp):
        self.case, self.n = case, n
        self.match, self.cap, self.faults, self.kill_max = CASES[case]
        self.rng = random.Random(f"{SEED}:{case}:{n}")
        self.sim, self.truth, self.ev = sim, truth, events
        self.flood_sources = flood_sources
        self.token_file, self.tmp = token_file, tmp
        self.cache = tmp / "cache"
        self.log = []
        self.inflight = self.rng.choice([4, 4, 1, 8])
        self.k = 0

    def ctx(self):
        return (f"[FLOWFS_SEED={SEED} case={self.case} trial={self.n} "
                f"cap={self.cap} match={self.match} faults={self.faults} "
                f"--max-inflight {self.inflight}]\nqueries on this cache:\n  "
                + "\n  ".join(self.log))

    # ---- drawing queries ----

    def near(self, t, lo, hi):
        """A time near t (or anywhere) in [lo, hi]."""
        r = self.rng
        if r.random() < 0.25:
            return r.randint(lo, hi)
        scale = r.choice([1, 3, SEC, MIN, HOUR])
        return min(hi, max(lo, t + r.randint(-scale, scale)))

    def edge(self, subject):
        ev, r = self.ev, self.rng
        if subject == ev.victim:
            f = ev.flood
            return r.choices([f, f + 1, f - 1, f + r.randint(-5, 5)],
                             [5, 2, 2, 1])[0]
        s = ev.scan
        return r.choices([s, s + SEC, s + r.randint(1, SEC - 1), s - 1,
                          s + SEC + 1], [3, 3, 2, 1, 1])[0]

    def peer(self, subject):
        ev, r = self.ev, self.rng
        if subject == ev.victim:
            a = r.choice(self.flood_sources)
            bits = r.choice([32, 24, 16, 8, 4])
            if r.random() < 0.2:
                return "198.18.0.0/15"
        else:
            a = ev.scanner
            bits = r.choice([32, 32, 24, 16])
            if r.random() < 0.2:
                return "198.18.0.0/15"
        if bits == 32:
            return a
        n = int.from_bytes(bytes(int(x) for x in a.split(".")), "big")
        n &= (0xffffffff << (32 - bits)) & 0xffffffff
        return ".".join(str(b) for b in n.to_bytes(4, "big")) + f"/{bits}"

    def draw(self):
        """(subject, from_ms, to_ms, peer) of an earlier query."""
        ev, r = self.ev, self.rng
        subject = ev.victim if r.random() < 0.65 else ev.web
        d0 = ev.flood_day if subject == ev.victim else ev.scan_day
        d1 = d0 + DAY
        kind = r.choices(["to-edge", "from-edge", "between", "random",
                          "day"], [3, 3, 1.5, 1, 1])[0]
        e = self.edge(subject)
        if kind == "to-edge":
            a = d0 if r.random() < 0.4 else self.near(e, d0, e - 1)
            S, E = a, e
        elif kind == "from-edge":
            b = d1 if r.random() < 0.4 else self.near(e, e + 1, d1)
            S, E = e, b
        elif kind == "between":
            e2 = self.edge(subject)
            if e2 == e:
                e2 = e + r.choice([-1, 1]) * r.choice([1, 2, SEC])
            S, E = min(e, e2), max(e, e2)
        elif kind == "random":
            a, b = self.near(e, d0, d1), self.near(e, d0, d1)
            S, E = min(a, b), max(a, b)
        else:
            S, E = d0, d1
        S, E = max(d0, S), min(d1, E)
        if S >= E:
            S = E - 1
        peer = self.peer(subject) if kind == "day" or r.random() < 0.25 \
            else None
        return subject, S, E, peer

    # ---- running ----

    def cmd(self, subject, frm, to, out, peer=None):
        extra = ["--max-inflight", str(self.inflight)]
        if self.faults:
            extra += ["--retries", str(FAULT_RETRIES)]
        return fetch_cmd(f"http://127.0.0.1:{self.sim.port}", subject, frm,
                         to, out, cache=self.cache,
                         token_file=self.token_file, peer=peer, extra=extra)

    def out(self):
        self.k += 1
        ext = self.rng.choice(["csv", "csv", "ndjson", "sqlite"])
        return self.tmp / f"q{self.k}.{ext}"

    def slow(self, on):
        rate = 1.0 - (sum(FAULTS.values()) if self.faults else 0.0)
        self.sim.set_faults(slow=round(rate, 3) if on else 0)

    def killed_run(self, cmd, k):
        """Run cmd; kill -9 it after k more /flows 200s.  True when killed,
        else (it ended first) the Fetch of its run."""
        self.slow(True)
        base = flows_200(self.sim)
        errp = cmd[-1] + ".stderr"
        t0 = time.monotonic()
        with open(errp, "wb") as errf:
            p = start_fetch(cmd, self.tmp, stdout=subprocess.PIPE,
                            stderr=errf)
        try:
            deadline = time.monotonic() + 60
            while flows_200(self.sim) - base < k and p.poll() is None:
                assert time.monotonic() < deadline, \
                    f"no {k} /flows answers in 60 s\n{self.ctx()}"
                time.sleep(0.002)
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
            out, _ = p.communicate(timeout=RUN_TIMEOUT_S)
        finally:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
            self.slow(False)
        if p.returncode == -signal.SIGKILL:
            return True
        return Fetch(cmd, p.returncode, out,
                     Path(errp).read_text(errors="replace"), Path(cmd[-1]),
                     time.monotonic() - t0)

    def spell(self, addr):
        """An address as given, or sometimes as its /32 prefix: the same
        subject or peer."""
        if addr and "/" not in addr and self.rng.random() < 0.15:
            return addr + "/32"
        return addr

    def query(self, subject, S, E, peer=None, dates=False, final=False):
        frm, to = (day_text(S), day_text(S)) if dates else (iso(S), iso(E))
        out = self.out()
        ip_arg, peer_arg = self.spell(subject), self.spell(peer)
        cmd = self.cmd(ip_arg, frm, to, out, peer_arg)
        what = (f"{'final ' if final else ''}--ip {ip_arg}"
                f"{' --peer ' + peer_arg if peer else ''} --from {frm} "
                f"--to {to} -o {out.name}")
        kill = not final and self.rng.random() < KILL_P
        if kill:
            k = self.rng.randint(1, self.kill_max)
            f = self.killed_run(cmd, k)
            if f is True:
                self.log.append(f"{what}: kill -9 after {k} /flows 200s")
                if out.exists():
                    # killed on its way out, its file written and renamed:
                    # a file that exists is whole
                    self.log[-1] += " (its output was already written)"
                    self.judge_killed(out, subject, S, E, peer)
                return
            what += f" (to be killed after {k} /flows 200s, ended first)"
        else:
            f = run_fetch(cmd, self.tmp, timeout=RUN_TIMEOUT_S)
        t0 = time.monotonic()
        self.log.append(f"{what}: exit {f.rc} ({f.seconds:.2f} s)")
        self.judge(f, subject, S, E, peer)
        self.log[-1] += f" judged in {time.monotonic() - t0:.2f} s"

    # ---- judging ----

    def judge_killed(self, out, subject, S, E, peer):
        """The output of a run killed after it was written (its exit status
        and gap lines unknown): the truth, but for flows of the scan's
        second with the scanner at a cap where those can be gaps."""
        ids = output_ids(out)
        want, _ = self.truth(subject, S, E, peer)
        missing, extra = want - set(ids), set(ids) - want
        if subject == self.ev.web and self.cap < 1000:
            missing -= self.truth(subject, self.ev.scan, self.ev.scan + SEC,
                                  self.ev.scanner)[0]
        assert len(ids) == len(set(ids)) and not missing and not extra, \
            (f"the output of a killed run: {len(ids)} flows, truth "
             f"{len(want)}: {len(missing)} missing, {len(extra)} extra, "
             f"{len(ids) - len(set(ids))} twice\n{self.ctx()}")

    def judge(self, f, subject, S, E, peer):
        ctx = self.ctx
        assert f.rc in (0, 3), \
            f"flowfetch exited {f.rc}\n{f.describe()}\n{ctx()}"
        assert f.out.exists(), f"exit {f.rc} but no output\n{ctx()}"
        ids = output_ids(f.out)
        want, digest = self.truth(subject, S, E, peer)
        got = set(ids)
        assert len(got) == len(ids), \
            f"{len(ids) - len(got)} flows written twice\n{ctx()}"
        extra = got - want
        assert not extra, (f"{len(extra)} flows that are not in the range "
                           f"(e.g. {sorted(extra)[:3]})\n{ctx()}")
        gaps = [(ms_of(a), ms_of(b), p) for a, b, p in
                GAP_LINE.findall(f.stderr)]
        missing = want - got
        if f.rc == 0:
            assert not gaps, f"exit 0 with gap lines\n{f.describe()}\n{ctx()}"
            assert not missing, \
                (f"exit 0 but {len(missing)} of {len(want)} flows missing "
                 f"(e.g. {sorted(missing)[:3]})\n{f.describe()}\n{ctx()}")
            assert digest_of(ids) == digest, f"digest differs\n{ctx()}"
            return
        assert gaps, f"exit 3 names no gap\n{f.describe()}\n{ctx()}"
        inside = set()
        for gs, ge, gp in gaps:
            # legitimate: inside the scan's second, and at least max_records
            # flows with that one peer in it (the collector's own matching)
            assert self.ev.scan <= gs < ge <= self.ev.scan + SEC, \
                (f"gap {iso(gs)} to {iso(ge)} peer {gp} is not in the scan's "
                 f"second\n{f.describe()}\n{ctx()}")
            n = self.sim.truth(subject, gs, ge, gp)["count"]
            assert n >= self.cap, \
                (f"gap {iso(gs)} to {iso(ge)} peer {gp}: only {n} flows there "
                 f"for max_records {self.cap}: not a real gap\n"
                 f"{f.describe()}\n{ctx()}")
            inside |= self.truth(subject, gs, ge, gp)[0]
        outside = missing - inside
        assert not outside, \
            (f"{len(outside)} flows missing outside the gaps "
             f"(e.g. {sorted(outside)[:3]})\n{f.describe()}\n{ctx()}")


@pytest.mark.parametrize("trial", range(TRIALS))
@pytest.mark.parametrize("case", list(CASES))
def test_whole_day_exact_after_random_queries(case, trial, case_sims, truth,
                                              events, flood_sources,
                                              token_file, tmp_path, seed):
    """Earlier queries (flood and scan edges, peers, kill -9) fill the
    cache; the whole day of each subject they touched is then exact."""
    sim = case_sims(case)
    t = Trial(case, trial, sim, truth, events, flood_sources, token_file,
              tmp_path)
    if t.faults:
        sim.set_faults(seed=t.rng.randrange(1, 1 << 30))
    subjects = []
    for _ in range(t.rng.randint(1, MAX_PRIORS)):
        subject, S, E, peer = t.draw()
        if subject not in subjects:
            subjects.append(subject)
        t.query(subject, S, E, peer)
    for subject in subjects:
        d0 = events.flood_day if subject == events.victim else \
            events.scan_day
        t.query(subject, d0, d0 + DAY, dates=True, final=True)
    print(t.ctx())


# ---- 2. flowfs: kill -9 while folders are read, mount again -----------------------

MOUNT_CAP = 2000        # --max-records of the mount's collector: the five
                        # folders take some 150 to 180 /flows answers cold
MOUNT_SLOW_MS = 20      # every answer waits: a kill lands where counted
MOUNT_KILL_MAX = 150    # kill points: /flows answers in [1, MOUNT_KILL_MAX]
                        # (past the end: killed once the reads are over)


@pytest.fixture(scope="module")
def mount_sim(make_module_sim, token_file):
    """Slow (every answer MOUNT_SLOW_MS late) while the killed mount reads,
    at full speed afterwards (set_faults)."""
    return make_module_sim(*args_of(token_file, "--max-records",
                                    str(MOUNT_CAP), "--slow", "0",
                                    "--slow-ms", str(MOUNT_SLOW_MS)))


def folders_of(ev):
    """(folder under the mount, subject, start, end, peer): the flood day,
    two other days, a range over the scan, a range over the flood."""
    D, S = day_text(ev.flood_day), day_text(ev.scan_day)
    d0, s0 = ev.flood_day, ev.scan_day
    return [
        (f"{ev.victim}/{D}", ev.victim, d0, d0 + DAY, None),
        (f"10.0.1.11/{D}", "10.0.1.11", d0, d0 + DAY, None),
        (f"10.0.1.30/{D}", "10.0.1.30", d0, d0 + DAY, None),
        (f"{ev.web}/{S}T13:00--{S}T13:10", ev.web, s0 + 13 * HOUR,
         s0 + 13 * HOUR + 10 * MIN, None),
        (f"{ev.victim}/{D}T03:17--{D}T03:18:30", ev.victim,
         d0 + 3 * HOUR + 17 * MIN, d0 + 3 * HOUR + 18 * MIN + 30 * SEC, None),
    ]


def reader(m, rel, how, dest):
    """A process reading a folder: cat of flows.csv, or cp -r of all."""
    d = m.path(rel)
    cmd = ["cat", str(d / "flows.csv")] if how == "cat" else \
        ["cp", "-r", str(d), str(dest)]
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def check_folder(m, rel, ip, S, E, peer, truth, dest, ctx):
    """cp -r of the folder passes sha256sum -c; its flows.csv is the truth;
    query.json says complete, no gap, the flows and the bounds."""
    dest.mkdir(parents=True)
    r = run(["cp", "-r", str(m.path(rel)), str(dest)], timeout=RUN_TIMEOUT_S)
    assert r.returncode == 0, f"cp -r {rel}: {r.stderr!r}\n{ctx}"
    copy = dest / Path(rel).name
    r = run(["sha256sum", "-c", "SHA256SUMS"], cwd=copy, timeout=60)
    assert r.returncode == 0, \
        f"{rel}: sha256sum -c SHA256SUMS: {r.stdout!r} {r.stderr!r}\n{ctx}"
    assert b"flows.csv: OK" in r.stdout, r.stdout
    q = json.loads((copy / "query.json").read_text())
    assert q["complete"] is True and q["gaps"] == [], \
        f"{rel}: query.json complete {q['complete']}, gaps {q['gaps']}\n{ctx}"
    assert (q["start_ms"], q["end_ms"]) == (S, E), \
        f"{rel}: query.json bounds {q['start_ms']} {q['end_ms']}\n{ctx}"
    ids = csv_ids((copy / "flows.csv").read_bytes())
    want, digest = truth(ip, S, E, peer)
    got = set(ids)
    missing, extra = want - got, got - want
    assert len(got) == len(ids) and not missing and not extra, \
        (f"{rel}: {len(ids)} rows, truth {len(want)}: "
         f"{len(ids) - len(got)} twice, {len(missing)} missing (e.g. "
         f"{sorted(missing)[:3]}), {len(extra)} extra (e.g. "
         f"{sorted(extra)[:3]})\n{ctx}")
    assert digest_of(ids) == digest
    assert q["flows"] == len(ids), f"{rel}: query.json flows {q['flows']}"


@pytest.mark.parametrize("trial", range(MOUNT_TRIALS))
def test_mount_killed_during_reads_then_exact(trial, mount_sim, truth, events,
                                              token_file, mounts, tmp_path,
                                              seed):
    """Five folders read at once; kill -9 of flowfs after a seeded number of
    /flows answers; fusermount3 -u; a mount on the same cache: every folder
    exact.  The cache is sometimes seeded first by a flowfetch of the flood
    day's morning up to an edge of the flood's millisecond."""
    require_fuse()
    require_flowfs()
    missing = [t for t in ("fusermount3", "sha256sum", "cp", "cat")
               if not shutil.which(t)]
    if missing:
        pytest.skip(f"missing tools: {missing}")
    sim, ev = mount_sim, events
    url = f"http://127.0.0.1:{sim.port}"
    rng = random.Random(f"{SEED}:mount:{trial}")
    cache = tmp_path / "cache"
    log = []

    def ctx():
        return (f"[FLOWFS_SEED={SEED} mount trial={trial}]\n  "
                + "\n  ".join(log))

    if rng.random() < 0.7:
        e = rng.choices([ev.flood, ev.flood + 1, ev.flood - 1], [3, 1, 1])[0]
        a = ev.flood_day if rng.random() < 0.6 else \
            e - rng.choice([1, SEC, MIN, HOUR])
        out = tmp_path / "seed.csv"
        f = flowfetch(url, ev.victim, iso(a), iso(e), out, cache=cache,
                      token_file=token_file)
        log.append(f"flowfetch --ip {ev.victim} --from {iso(a)} --to {iso(e)}"
                   f" on the cache first: exit {f.rc}")
        assert f.rc == 0, f"{f.describe()}\n{ctx()}"
        want, _ = truth(ev.victim, a, e)
        assert sorted(output_ids(out)) == sorted(want), ctx()

    T0 = time.monotonic()
    folders = folders_of(ev)
    m = mounts(url=url, cache=cache, name="mnt")
    k = rng.randint(1, MOUNT_KILL_MAX)
    hows = [rng.choice(["cat", "cp"]) for _ in folders]
    sim.set_faults(slow=1)
    base = flows_requests(sim)
    procs = [reader(m, rel, how, tmp_path / f"early{i}")
             for i, ((rel, *_), how) in enumerate(zip(folders, hows))]
    try:
        deadline = time.monotonic() + 120
        while flows_requests(sim) - base < k and \
                any(p.poll() is None for p in procs):
            assert time.monotonic() < deadline, \
                f"no {k} /flows answers in 120 s\n{ctx()}"
            time.sleep(0.002)
        seen = flows_requests(sim) - base
        m.want_status = -signal.SIGKILL
        os.kill(m.proc.pid, signal.SIGKILL)
        m.proc.wait(timeout=10)
        for p in procs:
            p.wait(timeout=30)
    finally:
        sim.set_faults(slow=0)
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    log.append(f"readers {list(zip([f[0] for f in folders], hows))}; kill -9 "
               f"of flowfs after {seen} /flows answers (point {k}); readers "
               f"exited {[p.returncode for p in procs]}")
    r = run(["fusermount3", "-u", str(m.mnt)], timeout=10)
    assert r.returncode == 0, \
        f"fusermount3 -u of the dead mount: {r.stderr!r}\n{ctx()}"
    assert not mounted_at(m.mnt)
    m.stop()

    log.append(f"killed at {time.monotonic() - T0:.2f} s")
    m2 = mounts(url=url, cache=cache, name="mnt")
    errors = [None] * len(folders)

    def check(i, rel, ip, S, E, peer):
        try:
            check_folder(m2, rel, ip, S, E, peer, truth,
                         tmp_path / f"copy{i}", ctx())
        except BaseException as x:          # reported below
            errors[i] = x
        log.append(f"{rel} checked at {time.monotonic() - T0:.2f} s")

    threads = [threading.Thread(target=check, args=(i, *f))
               for i, f in enumerate(folders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(RUN_TIMEOUT_S)
    assert not any(t.is_alive() for t in threads), \
        f"a folder was not read within {RUN_TIMEOUT_S} s\n{ctx()}"
    for x in errors:
        if x is not None:
            raise x
    log.append(f"after the remount: /flows answers "
               f"{flows_requests(sim) - base - seen}")
    print(ctx())
