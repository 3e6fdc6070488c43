#!/usr/bin/python3
"""nfdump.py - flowfs and flowfetch on an nfdump archive, against nfdump.

Usage: /usr/bin/python3 bench/nfdump.py BUILD_DIR   (bench/run nfdump)

The archive (issue 14's benchmarks): one UTC day, 2026-11-20, of about
1,200,000 flows, made once by the real nfpcapd (`nfpcapd -r day.pcap -w
DIR -S 1`, TZ=UTC) from a pcap that tests/nfdump/mkpcap.py --day-flows
writes (short TCP, UDP and ICMP exchanges; the heavy host 10.0.1.20 holds
about 400,000 flows, 200 other hosts the rest; every flow has a side in
10.0.0.0/8).  It is kept under $FLOWFS_BENCH_NFDUMP, else BUILD_DIR/
bench-nfdump/, with made.json saying how it was made and how long that
took, and reused by later runs while made.json matches (the pcap is
deleted once the archive is made).  Every figure is a ratio against a
baseline measured in the same run, the archive's files in the page cache
for both sides (every baseline reads it first):

  1. rendering CSV, per flow: `TZ=UTC nfdump -R DIR -o csv -q > /dev/null`
     over the whole archive (flows/s), against flowfs's CSV renderer over
     the same flows from the cache: bench/bench_render (cache_render of
     10.0.0.0/8's day to /dev/null in one process: SQLite's scan, render.c,
     the CSV writer; the cache filled before by flowfetch; 3 rounds of one
     nfdump run and one bench_render run, medians), and flowfetch
     warm on the same query with `-o -` to /dev/null (the whole process:
     start, engine and cache open, coverage check and audit, render).
     Target: >= 2 x nfdump's rate.
  2. cold: the heavy host's day through a mount (flowfs on nfdump:DIR, a
     fresh cache, `cat flows.csv` into a pipe, wall time from the open to
     EOF) against `TZ=UTC nfdump -R DIR 'host 10.0.1.20' -o csv > FILE`
     (wall time), in 3 rounds of one nfdump run and one new mount with a
     fresh cache, medians.  Target: <= 1.5 x nfdump's time.  flowfetch cold on the
     same day for reference, with its stage figures (its "decoding" time
     includes running nfdump: the driver runs it on the decoding threads);
     the CPU of flowfs and of the nfdump processes it ran (its reaped
     children).  What the time is made of: one `nfdump -o json` run of the
     day (the driver's format), flowfetch cold with the capped dialects'
     windows (--max-records 10000, against the driver's 50,000), and, when
     `perf` is installed, a profile
     of flowfetch cold (CPU by thread, the decoding threads' symbols).
  3. warm: the same flows.csv read again through the mount against `cat` of
     a local copy of the same bytes, ratio local time / FUSE time.

Exactness: the rows of every CSV (flowfs, flowfetch) against the number of
records nfdump prints for the same selection; a figure whose counts differ
is marked invalid.  Progress goes to stderr; the Markdown section to stdout.
"""
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "nfdump"))

import mkarchive        # noqa: E402
import mkpcap           # noqa: E402
from fs import (SUMMARY, Mount, cold_cat, cpu_s, fuse_ready, run_timed,  # noqa: E402
                sha256_file, timed_cat)
from simctl import bench_main, report_end  # noqa: E402

# flows the pcap is made for (nfpcapd makes as many records); a smaller
# FLOWFS_BENCH_NFDUMP_FLOWS is for trying the script, not for the report
FLOWS = int(os.environ.get("FLOWFS_BENCH_NFDUMP_FLOWS", "1200000"))
HEAVY_FLOWS = FLOWS // 3
SEED = 1
DAY = mkpcap.BENCH_DAY
HEAVY = mkpcap.BENCH_HEAVY
ALL = "10.0.0.0/8"          # every flow of the archive has a side in it
DAY_MS = int(mkpcap.utc_us(DAY) // 1000)
RUNS = 3                    # timed runs of each baseline and warm figure (median)
WARM_RUNS = 9
TARGET_RENDER = 2.0         # ours flows/s / nfdump's
TARGET_COLD = 1.5           # flowfs time / nfdump's
TARGET_WARM = 0.8           # local time / FUSE time
COLD_DEADLINE = 600.0
SMALL_WINDOWS = 10000       # a second flowfetch cold run with windows this small
MADE = {"flows": FLOWS, "heavy_flows": HEAVY_FLOWS, "seed": SEED, "day": DAY,
        "generator": "mkpcap.py --day-flows", "collector": "nfpcapd -S 1", "version": 1}


def log(msg):
    print(f"nfdump: {msg}", file=sys.stderr, flush=True)


def fmt_int(n):
    return f"{n:,}"


def tool_env():
    return dict(os.environ, TZ="UTC", LC_ALL="C")


def archive(base):
    """The benchmark's archive under BASE, made when missing or made with
    other parameters; returns (directory, made.json's dict, made now)."""
    arch = os.path.join(base, "archive")
    stamp = os.path.join(base, "made.json")
    try:
        with open(stamp) as f:
            made = json.load(f)
        if {k: made.get(k) for k in MADE} == MADE and os.path.isdir(arch):
            return arch, made, False
    except (OSError, ValueError):
        pass
    log(f"making the archive under {base} (once)")
    shutil.rmtree(arch, ignore_errors=True)
    if os.path.exists(stamp):
        os.unlink(stamp)
    pcapdir = os.path.join(base, "pcap")
    t0 = time.monotonic()
    path, packets = mkpcap.build_day(pcapdir, SEED, FLOWS, HEAVY_FLOWS)
    t1 = time.monotonic()
    pcap_bytes = os.path.getsize(path)
    mkarchive.nfpcapd(path, arch, "-S", "1", timeout=COLD_DEADLINE)
    t2 = time.monotonic()
    shutil.rmtree(pcapdir)
    made = dict(MADE, packets=packets, pcap_bytes=pcap_bytes, pcap_s=round(t1 - t0, 1),
                nfpcapd_s=round(t2 - t1, 1), made=time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime()))
    with open(stamp + ".part", "w") as f:
        json.dump(made, f, indent=1, sort_keys=True)
    os.rename(stamp + ".part", stamp)
    return arch, made, True


def archive_files(arch):
    """(number of nfcapd files, their total bytes)."""
    n = size = 0
    for d, _, names in os.walk(arch):
        for name in names:
            if name.startswith("nfcapd."):
                n += 1
                size += os.path.getsize(os.path.join(d, name))
    return n, size


def nfdump_count(arch):
    """The flows of the archive, from `nfdump -I` (its files' statistics)."""
    p = subprocess.run(["nfdump", "-R", arch, "-I"], env=tool_env(), capture_output=True,
                       text=True, timeout=120)
    for line in p.stdout.splitlines():
        if line.startswith("Flows:"):
            return int(line.split()[1])
    raise RuntimeError(f"nfdump -I: no 'Flows:' line: {p.stderr.strip()}")


def timed_child(cmd, stdout):
    """Runs CMD with stdout to the open file STDOUT: (wall s, CPU s of the
    child, exit status, stderr)."""
    with tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=stdout, stderr=err,
                             env=tool_env())
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        err.seek(0)
        return wall, ru.ru_utime + ru.ru_stime, os.waitstatus_to_exitcode(status), err.read()


def csv_records(path):
    """The records of an `nfdump -o csv` file without -q: the lines between
    the header and the 'Summary' line."""
    n = 0
    with open(path, "rb") as f:
        next(f, None)
        for line in f:
            if line.startswith(b"Summary"):
                break
            n += 1
    return n


def lines(path):
    """Newlines in a file (flows.csv: rows + header; nfdump's archive has no
    names, so no field holds a line break)."""
    n = 0
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 22)
            if not b:
                return n
            n += b.count(b"\n")


def cache_identity(cache):
    """(url, product, driver) of the one database in a cache directory."""
    dbs = [n for n in os.listdir(cache) if n.endswith(".db")]
    if len(dbs) != 1:
        raise RuntimeError(f"{cache}: {len(dbs)} databases, want 1")
    con = sqlite3.connect(f"file:{os.path.join(cache, dbs[0])}?mode=ro", uri=True)
    try:
        meta = dict(con.execute("SELECT key, value FROM meta"))
    finally:
        con.close()
    return meta["url"], meta["product"], meta["driver"]


def children_cpu_s(pid):
    """cutime + cstime of a process (its reaped children), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def profile(b, arch):
    """flowfetch cold on the heavy host's day under `perf record` (its
    threads and the nfdump processes it runs): ([(share, thread name)],
    [(share within the decoding threads, library, symbol)]), or None when
    perf cannot record here."""
    data = os.path.join(b.tmp, "perf.data")
    out = os.path.join(b.tmp, "perf.csv")
    p = subprocess.run(["perf", "record", "-q", "-F", "499", "-o", data, "--",
                        *b.flowfetch_cmd(arch, HEAVY, os.path.join(b.tmp, "cache-perf"), out)],
                       capture_output=True, text=True, timeout=COLD_DEADLINE)
    if p.returncode != 0 or not os.path.exists(data):
        b.problems.append(f"perf record failed ({p.returncode}): {p.stderr.strip()[-200:]}")
        return None

    r = subprocess.run(["perf", "report", "-i", data, "--no-children", "--stdio", "-g", "none",
                        "--sort", "comm,dso,symbol"], capture_output=True, text=True, timeout=120)
    # rows like '9.71%  flow-decode  libc.so.6  [.] __vfprintf_internal';
    # split by thread here, since perf report's --comm filter lost symbols
    by_comm, decode = {}, []
    for line in r.stdout.splitlines():
        f = line.split()
        if len(f) < 5 or line.startswith("#") or not f[0].endswith("%"):
            continue
        p = float(f[0][:-1])
        by_comm[f[1]] = by_comm.get(f[1], 0.0) + p
        if f[1] == "flow-decode":
            decode.append((p, f[2], f[4]))
    total = by_comm.get("flow-decode", 0.0) or 1.0
    decode = [(p * 100 / total, dso, sym) for p, dso, sym in decode]
    dsos = {}
    for p, dso, _ in decode:
        dsos[dso] = dsos.get(dso, 0.0) + p
    # perf rounds each row to 0.01%: over hundreds of rows the sum drifts
    # from 100, so the threads' shares are scaled to their sum
    whole = sum(by_comm.values()) or 1.0
    threads = sorted(((p * 100 / whole, c) for c, p in by_comm.items()), reverse=True)
    return threads, decode[:12], sorted(((p, d) for d, p in dsos.items()), reverse=True)


class Bench:
    def __init__(self, build):
        self.build = os.path.abspath(build)
        self.flowfs = os.path.join(self.build, "fs", "flowfs")
        self.flowfetch = os.path.join(self.build, "fetch", "flowfetch")
        self.render = os.path.join(self.build, "bench", "bench_render")
        self.base = os.environ.get("FLOWFS_BENCH_NFDUMP") or os.path.join(self.build,
                                                                           "bench-nfdump")
        self.tmp = tempfile.mkdtemp(prefix="bench_nfdump.")
        self.problems = []
        self.mount = None

    def close(self):
        try:
            if self.mount:
                self.problems.extend(self.mount.stop())
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def flowfetch_cmd(self, arch, ip, cache, out):
        return [self.flowfetch, "nfdump:" + arch, "--ip", ip, "--from", DAY, "--to", DAY,
                "--files-tz", "UTC", "--cache", cache, "-o", out]


def main():
    return bench_main("nfdump.py",
                      lambda: fuse_ready("nfdump.py", ("fusermount3", "cat", "nfdump", "nfpcapd")),
                      Bench, measure, report)


def measure(b, R):
    R["load0"] = os.getloadavg()
    t0 = time.monotonic()
    arch, R["made"], R["made_now"] = archive(b.base)
    R["archive_s"] = time.monotonic() - t0
    R["files"], R["archive_bytes"] = archive_files(arch)
    R["total"] = total = nfdump_count(arch)
    log(f"archive {arch}: {total} flows in {R['files']} files")

    # 1. rendering CSV: nfdump over the whole archive, then the same flows
    # from a cache flowfetch fills
    log("nfdump -o csv over the whole archive")
    whole = os.path.join(b.tmp, "whole.csv")
    with open(whole, "wb") as f:        # untimed: reads the archive into the page cache
        timed_child(["nfdump", "-R", arch, "-o", "csv", "-q"], f)
    R["nfdump_all_rows"] = lines(whole)
    os.unlink(whole)
    log("flowfetch cold over 10.0.0.0/8's day (fills the cache for the renderer)")
    cache_all = os.path.join(b.tmp, "cache-all")
    out = os.path.join(b.tmp, "all.csv")
    rc, wall, rss, err = run_timed(b.flowfetch_cmd(arch, ALL, cache_all, out),
                                   timeout=COLD_DEADLINE)
    R["fill"] = (rc, wall, rss, SUMMARY.search(err))
    if rc != 0:
        raise RuntimeError(f"flowfetch over {ALL}: exit {rc}: {err.strip()[-300:]}")
    R["fill_rows"] = lines(out) - 1
    os.unlink(out)
    ident = cache_identity(cache_all)
    # rounds of nfdump then the renderer, so that a change of the machine's
    # load hits both; bench_render's first round reads the cache file into
    # the page cache and is left out
    runs, rounds = [], []
    for i in range(RUNS):
        log(f"round {i + 1}: nfdump -o csv -q > /dev/null, then bench_render")
        with open(os.devnull, "wb") as null:
            wall, cpu, st, err = timed_child(["nfdump", "-R", arch, "-o", "csv", "-q"], null)
        if st != 0:
            raise RuntimeError(f"nfdump -o csv: exit {st}: {err.strip()}")
        runs.append((wall, cpu))
        p = subprocess.run([b.render, cache_all, *ident, ALL, str(DAY_MS),
                            str(DAY_MS + 86400000), "2"], capture_output=True, text=True,
                           env=tool_env(), timeout=COLD_DEADLINE)
        if p.returncode != 0:
            raise RuntimeError(f"bench_render: exit {p.returncode}: {p.stderr.strip()}")
        first, second = [line.split() for line in p.stdout.split("\n") if line.strip()]
        R["render_first"] = float(first[1])
        rounds.append((float(second[1]), float(second[2]), int(second[0])))
    R["nfdump_all"] = runs
    R["render"] = rounds
    R["render_rows"] = rounds[0][2]
    runs = []
    for _ in range(RUNS):
        with open(os.devnull, "wb") as null:
            wall, cpu, st, err = timed_child(
                b.flowfetch_cmd(arch, ALL, cache_all, "-"), null)
        m = SUMMARY.search(err)
        if st != 0 or not m:
            raise RuntimeError(f"flowfetch warm: exit {st}: {err.strip()[-300:]}")
        runs.append((wall, cpu, int(m.group(1)), int(m.group(2))))
    R["warm_fetch"] = sorted(runs)
    shutil.rmtree(cache_all)

    # 2. cold: the heavy host's day, rounds of nfdump then flowfs on a fresh
    # cache and mount, so that a change of the machine's load hits both
    runs, colds = [], []
    host_csv = os.path.join(b.tmp, "nfdump-host.csv")
    for i in range(RUNS):
        log(f"round {i + 1}: nfdump 'host {HEAVY}' -o csv > FILE, then flowfs cold")
        with open(host_csv, "wb") as f:
            wall, cpu, st, err = timed_child(
                ["nfdump", "-R", arch, f"host {HEAVY}", "-o", "csv"], f)
        if st != 0:
            raise RuntimeError(f"nfdump 'host {HEAVY}': exit {st}: {err.strip()}")
        runs.append((wall, cpu))
        if b.mount:
            b.problems.extend(b.mount.stop())
            b.mount = None
        mnt = os.path.join(b.tmp, f"mnt{i}")
        b.mount = m = Mount(b.flowfs, "nfdump:" + arch, mnt, os.path.join(b.tmp, f"cache-fs{i}"),
                            None, os.path.join(b.tmp, f"flowfs{i}.log"), opts=["files_tz=UTC"])
        folder = os.path.join(mnt, HEAVY, DAY)
        fs_csv = os.path.join(folder, "flows.csv")
        cpu0, kids0 = cpu_s(m.pid), children_cpu_s(m.pid)
        first, total_s, got, status, err = cold_cat(fs_csv, COLD_DEADLINE)
        if status != 0:
            raise RuntimeError(f"cat {fs_csv}: status {status}: {err} ({m.log_tail()})")
        cpu, kids = cpu_s(m.pid) - cpu0, children_cpu_s(m.pid) - kids0
        with open(os.path.join(folder, "query.json")) as f:
            meta = json.load(f)
        colds.append((total_s, first, got, cpu, kids, meta.get("fetch", {}).get("seconds", 0)))
    R["nfdump_host"] = runs
    R["fs_colds"] = colds
    R["nfdump_host_rows"] = csv_records(host_csv)
    R["nfdump_host_bytes"] = os.path.getsize(host_csv)
    os.unlink(host_csv)
    local = os.path.join(b.tmp, "local.csv")
    shutil.copyfile(fs_csv, local)
    R["fs_rows"] = lines(local) - 1
    R["fs_complete"] = meta.get("complete")
    R["fs_fetch"] = meta.get("fetch", {})

    log("flowfetch cold")
    out = os.path.join(b.tmp, "flowfetch-host.csv")
    rc, wall, rss, err = run_timed(
        b.flowfetch_cmd(arch, HEAVY, os.path.join(b.tmp, "cache-ff"), out), timeout=COLD_DEADLINE)
    R["ff_cold"] = (rc, wall, rss, SUMMARY.search(err))
    if rc != 0:
        b.problems.append(f"flowfetch cold: exit {rc}: {err.strip()[-300:]}")
    else:
        R["ff_rows"] = lines(out) - 1
        R["ff_same"] = sha256_file(out) == sha256_file(local)
        os.unlink(out)

    # what the cold read is made of: nfdump's JSON alone, fewer windows, a profile
    log("nfdump -o json (the driver's format), one run over the day")
    runs = []
    with open(os.devnull, "wb") as null:
        for _ in range(RUNS):
            wall, cpu, st, err = timed_child(
                ["nfdump", "-C", "none", "-q", "-o", "json", "-R", arch, f"host {HEAVY}"], null)
            if st != 0:
                raise RuntimeError(f"nfdump -o json: exit {st}: {err.strip()}")
            runs.append((wall, cpu))
    R["nfdump_json"] = sorted(runs)
    log(f"flowfetch cold, --max-records {SMALL_WINDOWS}")
    rc, wall, rss, err = run_timed(
        b.flowfetch_cmd(arch, HEAVY, os.path.join(b.tmp, "cache-big"), out)
        + ["--max-records", str(SMALL_WINDOWS)], timeout=COLD_DEADLINE)
    R["ff_big"] = (rc, wall, rss, SUMMARY.search(err))
    if rc == 0:
        R["ff_big_rows"] = lines(out) - 1
        os.unlink(out)
    if shutil.which("perf"):
        log("flowfetch cold under perf record")
        R["perf"] = profile(b, arch)

    # 3. warm: through the mount against a local copy
    log("warm reads")
    timed_cat(fs_csv)
    timed_cat(local)
    fs_t, loc_t = [], []
    cpu0 = cpu_s(m.pid)
    for _ in range(WARM_RUNS):
        fs_t.append(timed_cat(fs_csv)[0])
        loc_t.append(timed_cat(local)[0])
    R["warm"] = (sorted(fs_t), sorted(loc_t), cpu_s(m.pid) - cpu0)
    R["csv_bytes"] = os.path.getsize(local)
    R["load1"] = os.getloadavg()


def verdict(ok):
    return "met" if ok else "**missed**"


def med(runs, i=None):
    return statistics.median(r if i is None else r[i] for r in runs)


def stages(m):
    """flowfetch's summary line (fs.SUMMARY's match) in words."""
    return (f"{m.group(2)} nfdump runs, {fmt_int(int(m.group(4)))} records read, fetch "
            f"{m.group(5)} s, decoding {m.group(6)} s, storing {m.group(7)} s")


def why_cold(R):
    """The paragraph that says what the cold read's time is made of, from
    this run's figures."""
    nh = med(R["nfdump_host"], 0)
    own, kids = med(R["fs_colds"], 3), med(R["fs_colds"], 4)
    fe = R.get("fs_fetch", {})
    records, rows = int(fe.get("records", 0)), R["fs_rows"]
    share = statistics.median(c[5] / c[0] for c in R["fs_colds"])
    text = (f"What dominates the cold read (this run): flowfs's download is "
            f"{share:.0%} of it. nfdump ran {fe.get('requests')} times "
            f"and printed {fmt_int(records)} records for {fmt_int(rows)} flows "
            f"({records / max(rows, 1):.1f} x: records of a window the planner finds too full "
            f"are read again in its parts), {kids:.1f} s of nfdump's CPU against the baseline's "
            f"{med(R['nfdump_host'], 1):.1f} s; flowfs's own CPU was {own:.1f} s. ")
    if R.get("nfdump_json"):
        text += (f"nfdump itself is not the bound: one run of the whole day in the driver's "
                 f"format takes {med(R['nfdump_json'], 0):.2f} s. ")
    if R.get("perf"):
        threads = dict((c, p) for p, c in R["perf"][0])
        text += (f"In the profile, decoding nfdump's JSON (the `flow-decode` threads, which "
                 f"decode it while nfdump writes it) takes "
                 f"{threads.get('flow-decode', 0):.0f}% of the CPU samples, nfdump "
                 f"{threads.get('nfdump', 0):.0f}%, storing {threads.get('flow-store', 0):.0f}% "
                 f"and the main thread (planning, the audit, the render) "
                 f"{threads.get('flowfetch', 0):.0f}%. Per record, fetch/nfdump.c reads a line a "
                 f"field, writes the id's text and `extra`, hashes the id (SHA-256) and the "
                 f"Community ID (SHA-1), and sorts the window's ids by their first 64 bits; "
                 f"the symbols above say which of these weigh most. ")
    rc, wall, _, _ = R.get("ff_big", (None, 0, 0, None))
    if rc == 0:
        text += (f"With the capped dialects' windows (--max-records {SMALL_WINDOWS}) flowfetch's "
                 f"cold run takes {wall:.2f} s ({wall / nh:.2f} x nfdump). ")
    return text


def report(b, R, t_start):
    P = []
    made = R.get("made", {})
    load0, load1 = R.get("load0"), R.get("load1")
    loads = ""
    if load0 and load1:
        loads = (f" Load average (1, 5, 15 min) {load0[0]:.2f}, {load0[1]:.2f}, {load0[2]:.2f} "
                 f"at the start, {load1[0]:.2f}, {load1[1]:.2f}, {load1[2]:.2f} at the end.")
    if made:
        how = ("made in this run" if R.get("made_now")
               else f"made on {made.get('made')} by an earlier run, reused")
        P.append(
            f"The archive: one UTC day ({DAY}) written by the real nfpcapd 1.7.1 "
            f"(`TZ=UTC nfpcapd -r day.pcap -w DIR -S 1`, no compression) from a pcap of "
            f"{fmt_int(made.get('packets', 0))} packets ({made.get('pcap_bytes', 0) / 1e6:.0f} MB) "
            f"that `tests/nfdump/mkpcap.py --day-flows {FLOWS} --heavy-flows {HEAVY_FLOWS}` writes: "
            f"short TCP (3 packets each way), UDP and ICMP exchanges at random times, the heavy "
            f"host {HEAVY} in about a third of them, 200 other hosts in 10.0.2.0/24 the rest, "
            f"peers in 198.18.0.0/15. **{fmt_int(R.get('total', 0))} flows** in "
            f"{fmt_int(R.get('files', 0))} files ({R.get('archive_bytes', 0) / 1e6:.0f} MB), "
            f"{how}; making it took {made.get('pcap_s', 0):.0f} s for the pcap (Python) and "
            f"{made.get('nfpcapd_s', 0):.0f} s for nfpcapd. It is kept in "
            f"`$FLOWFS_BENCH_NFDUMP` or `build/bench-nfdump/`. Every nfdump and flowfs "
            f"figure below is with the archive's files in the page cache (each baseline reads "
            f"them first); nfdump runs with `TZ=UTC`, flowfs and flowfetch with `files_tz=UTC` "
            f"and their defaults (tz UTC, max_records 50,000 a window, 4 windows in flight)."
            f"{loads}")
        P.append("")

    if "render" in R:
        total = R["total"]
        nf = med(R["nfdump_all"], 0)
        nf_rate = total / nf
        rnd = med(R["render"], 0)
        rnd_rate = R["render_rows"] / rnd
        per_round = [(R["render_rows"] / r[0]) / (total / n[0])
                     for r, n in zip(R["render"], R["nfdump_all"])]
        cpu_ratio = (R["render_rows"] / med(R["render"], 1)) / (total / med(R["nfdump_all"], 1))
        wf = med(R["warm_fetch"], 0)
        wf_rows = R["warm_fetch"][0][2]
        wf_rate = wf_rows / wf
        ok_rows = R["render_rows"] == total == R["nfdump_all_rows"] == R["fill_rows"] == wf_rows
        inval = "" if ok_rows else " (**invalid: the counts differ**)"
        P.append("### Rendering CSV (1)")
        P.append("")
        P.append(
            f"The whole archive as CSV, per flow. Baseline: `TZ=UTC nfdump -R DIR -o csv -q > "
            f"/dev/null` (reads and decodes its files, prints `-o csv`). Ours: the same flows "
            f"from the cache (filled by one flowfetch run over {ALL}, which every flow of the "
            f"archive has a side in): `bench/bench_render` calls `cache_render` (CSV) on the "
            f"day twice in one process and the second is timed (the first reads the cache file "
            f"into the page cache: {R['render_first']:.2f} s in the last round); it times "
            f"SQLite's scan of the flows, render.c's decisions (names, times, "
            f"Community ID), the CSV writer and stdio's writes to /dev/null, not the process's "
            f"start or the cache's open. {RUNS} rounds, each an nfdump run and then a "
            f"bench_render run, so that the machine's load hits both alike: medians, and the "
            f"ratio of each round. flowfetch warm (`-o -` to /dev/null, median of {RUNS}) "
            f"is the same render with the whole process around it (start, engine and cache "
            f"open, the coverage check and the audit).")
        P.append("")
        P.append("| figure | time | flows/s | ratio |")
        P.append("| --- | ---: | ---: | --- |")
        P.append(f"| `nfdump -o csv -q` over the archive, {fmt_int(total)} flows (CPU "
                 f"{med(R['nfdump_all'], 1):.2f} s) | {nf:.2f} s | {fmt_int(round(nf_rate))} | "
                 f"1.00 (baseline) |")
        P.append(f"| `cache_render` CSV, {fmt_int(R['render_rows'])} flows (bench_render) | "
                 f"{rnd:.2f} s | {fmt_int(round(rnd_rate))} | **{rnd_rate / nf_rate:.2f} x** "
                 f"nfdump's rate (target >= {TARGET_RENDER:.0f}: "
                 f"{verdict(rnd_rate / nf_rate >= TARGET_RENDER) if ok_rows else 'invalid'})"
                 f"{inval}; by round {', '.join(f'{r:.2f}' for r in per_round)}; by CPU time "
                 f"{cpu_ratio:.2f} x |")
        P.append(f"| flowfetch warm, `-o -` to /dev/null, {fmt_int(wf_rows)} flows (CPU "
                 f"{med(R['warm_fetch'], 1):.2f} s; {R['warm_fetch'][0][3]} requests) | {wf:.2f} s | "
                 f"{fmt_int(round(wf_rate))} | {wf_rate / nf_rate:.2f} x |")
        rc, wall, rss, m = R["fill"]
        if m:
            P.append(f"| for reference: flowfetch cold over {ALL}'s day, the same flows (fills "
                     f"the cache; {m.group(2)} nfdump runs, {fmt_int(int(m.group(4)))} records "
                     f"read, decoding {m.group(6)} s, storing {m.group(7)} s; peak RSS "
                     f"{rss // 1024} MiB) | {wall:.2f} s | {fmt_int(round(R['fill_rows'] / wall))} | "
                     f"{(R['fill_rows'] / wall) / nf_rate:.2f} x |")
        P.append(f"| counts: nfdump's lines, the cache's rows (bench_render, flowfetch cold and "
                 f"warm), `nfdump -I` | {fmt_int(R['nfdump_all_rows'])}, "
                 f"{fmt_int(R['render_rows'])}, {fmt_int(R['fill_rows'])}, {fmt_int(wf_rows)}, "
                 f"{fmt_int(total)} | | {'equal' if ok_rows else '**differ**'} |")
        P.append("")

    if "fs_colds" in R:
        nh = med(R["nfdump_host"], 0)
        colds = R["fs_colds"]
        total_s = med(colds, 0)
        rows = R["fs_rows"]
        ok = rows == R["nfdump_host_rows"] and R.get("fs_complete") is True
        ratio = total_s / nh
        per_round = [c[0] / n[0] for c, n in zip(colds, R["nfdump_host"])]
        P.append("### Cold (2)")
        P.append("")
        P.append(
            f"The heavy host's day, {HEAVY} on {DAY}. Baseline: `TZ=UTC nfdump -R DIR 'host "
            f"{HEAVY}' -o csv > FILE` (the whole archive's files read and filtered; header and "
            f"summary lines included), wall time. flowfs: mounted on `nfdump:DIR` with a fresh "
            f"cache, `cat MNT/{HEAVY}/{DAY}/flows.csv` into a pipe, wall time from the open to "
            f"EOF (opening runs the folder's query: nfdump once a window, windows of two "
            f"hours and at most 50,000 flows, each reading its files plus the 600 s after its "
            f"end and decoded while nfdump writes; then the render). {RUNS} rounds, each an nfdump run and then flowfs on a new mount and "
            f"cache, so that the machine's load hits both alike: medians, and the ratio of "
            f"each round. flowfetch cold on the same day with another fresh cache, one run, "
            f"for reference.")
        P.append("")
        P.append("| figure | value | ratio |")
        P.append("| --- | --- | --- |")
        P.append(f"| `nfdump 'host {HEAVY}' -o csv > FILE`: {fmt_int(R['nfdump_host_rows'])} "
                 f"flows, {R['nfdump_host_bytes'] / 1e6:.0f} MB (runs "
                 f"{', '.join(f'{w:.2f}' for w, _ in R['nfdump_host'])} s; CPU "
                 f"{med(R['nfdump_host'], 1):.2f} s) | {nh:.2f} s | 1.00 (baseline) |")
        P.append(f"| flowfs cold, `cat flows.csv`, whole file ({colds[0][2] / 1e6:.0f} MB; runs "
                 f"{', '.join(f'{c[0]:.2f}' for c in colds)} s) | {total_s:.2f} s | "
                 f"**{ratio:.2f} x** nfdump's time (target <= {TARGET_COLD}: "
                 f"{verdict(ratio <= TARGET_COLD) if ok else 'invalid'}); by round "
                 f"{', '.join(f'{r:.2f}' for r in per_round)} |")
        firsts = [c[1] for c in colds if c[1] is not None]
        if firsts:
            P.append(f"| flowfs cold, first 64 KiB (download and render happen before the open "
                     f"returns) | {statistics.median(firsts):.2f} s | "
                     f"{statistics.median(firsts) / nh:.2f} x |")
        own, kids = med(colds, 3), med(colds, 4)
        P.append(f"| CPU during the cold read: flowfs itself, the nfdump processes it ran "
                 f"(medians) | {own:.2f} s, {kids:.2f} s | {(own + kids) / med(R['nfdump_host'], 1):.2f} "
                 f"x nfdump's CPU |")
        fe = R.get("fs_fetch", {})
        share = statistics.median(c[5] / c[0] for c in colds)
        P.append(f"| flowfs's download (query.json `fetch`): nfdump runs, records read; seconds "
                 f"(median) | {fe.get('requests')}, {fmt_int(int(fe.get('records', 0)))}; "
                 f"{med(colds, 5):.2f} s | {share:.0%} of the cold read (median of the rounds) |")
        rc, wall, rss, m = R.get("ff_cold", (None, 0, 0, None))
        if rc == 0 and m:
            P.append(f"| flowfetch cold, same day, process wall time ({stages(m)}, summed over "
                     f"threads; peak RSS {rss // 1024} MiB) | {wall:.2f} s | {wall / nh:.2f} x |")
        if "nfdump_json" in R:
            nj = med(R["nfdump_json"], 0)
            P.append(f"| what one nfdump run of the driver's format costs: `nfdump -C none -q -o "
                     f"json -R DIR 'host {HEAVY}'` to /dev/null, the whole day (CPU "
                     f"{med(R['nfdump_json'], 1):.2f} s) | {nj:.2f} s | {nj / nh:.2f} x |")
        rc, wall, rss, m = R.get("ff_big", (None, 0, 0, None))
        if rc == 0 and m:
            P.append(f"| flowfetch cold with `--max-records {SMALL_WINDOWS}` (the capped dialects' "
                     f"windows: {stages(m)}; {fmt_int(R.get('ff_big_rows', 0))} rows) | {wall:.2f} s | "
                     f"{wall / nh:.2f} x |")
        P.append(f"| counts: flowfs's rows, flowfetch's rows, nfdump's lines | {fmt_int(rows)}, "
                 f"{fmt_int(R.get('ff_rows', 0))}, {fmt_int(R['nfdump_host_rows'])} | "
                 f"{'equal' if ok and R.get('ff_rows') == rows else '**differ**'}; query.json "
                 f"complete: {R.get('fs_complete')}; flowfetch's CSV "
                 f"{'byte-identical to' if R.get('ff_same') else '**differs from**'} flowfs's |")
        P.append("")

    if R.get("perf"):
        threads, decode, dsos = R["perf"]
        P.append("Where the CPU of a cold read goes: flowfetch cold on the same day under "
                 "`perf record -F 499` (its threads and the nfdump processes it starts), "
                 "`perf report --sort comm`, and the decoding threads' top symbols (share of "
                 "their samples; by library: " + ", ".join(f"{d} {p:.0f}%" for p, d in dsos[:4])
                 + "):")
        P.append("")
        P.append("| thread or process | share of CPU samples |")
        P.append("| --- | ---: |")
        for p, name in threads[:6]:
            P.append(f"| {name} | {p:.1f}% |")
        P.append("")
        P.append("| decoding threads' symbol | library | share |")
        P.append("| --- | --- | ---: |")
        for p, dso, sym in decode:
            P.append(f"| `{sym}` | {dso} | {p:.1f}% |")
        P.append("")

    if "fs_colds" in R and med(R["fs_colds"], 0) / med(R["nfdump_host"], 0) > TARGET_COLD:
        P.append(why_cold(R))
        P.append("")

    if "warm" in R:
        fs_t, loc_t, cpu = R["warm"]
        f_m, l_m = statistics.median(fs_t), statistics.median(loc_t)
        size = R["csv_bytes"]
        P.append("### Warm (3)")
        P.append("")
        P.append(f"`cat` to /dev/null of the same flows.csv through the mount against `cat` of "
                 f"a local copy of the same bytes ({os.path.dirname(b.tmp) or '/tmp'}); each "
                 f"read once untimed, then {WARM_RUNS} runs each, alternating: median (range). "
                 f"The issue sets no target here; 0.8 is section fs's, which measures the same "
                 f"read path on a file six times as large.")
        P.append("")
        P.append("| file | size | flowfs | local copy | ratio (local / flowfs) | flowfs CPU |")
        P.append("| --- | ---: | ---: | ---: | ---: | ---: |")
        P.append(f"| flows.csv, {fmt_int(R['fs_rows'])} flows | {size / 1e6:.0f} MB | "
                 f"{f_m * 1e3:.0f} ms ({fs_t[0] * 1e3:.0f}-{fs_t[-1] * 1e3:.0f}) | "
                 f"{l_m * 1e3:.0f} ms ({loc_t[0] * 1e3:.0f}-{loc_t[-1] * 1e3:.0f}) | "
                 f"**{l_m / f_m:.2f}** (target >= {TARGET_WARM}: {verdict(l_m / f_m >= TARGET_WARM)}) "
                 f"| {cpu:.2f} s |")
        P.append("")
    report_end(P, b.problems, t_start)
    return "\n".join(P)


if __name__ == "__main__":
    sys.exit(main())
