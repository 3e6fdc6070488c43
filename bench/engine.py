#!/usr/bin/python3
"""engine.py - benchmarks of the download engine (flowfetch) against flowsim.

Usage: /usr/bin/python3 bench/engine.py BUILD_DIR   (bench/run engine)

Starts its own flowsim on 127.0.0.1 port 0 (clock frozen, /_sim enabled,
bearer token in a private file), stops it with SIGTERM at the end, and
prints a Markdown section on stdout.  Every figure is a ratio against a
baseline measured in the same run:

  a. requests per query / the lower bound ceil(flows / max_records), from
     the deltas of /_sim/counters for /api/v1/flows, each query with a fresh
     cache; every result is checked against /_sim/truth (row count, distinct
     ids and the SHA-256 digest of the sorted ids), because a ratio for an
     incomplete result is worthless;
  b. the old method (move the window's start to the latest start time seen
     in a full answer, one request at a time), implemented here with
     http.client against the same flowsim: its requests and the records it
     loses, next to flowfetch's;
  c. cold end to end: flowfetch's wall time on the heavy host's busiest two
     hours -> flows/s, against the rate at which cJSON alone decodes
     saturated answers of the same host and hours on one core
     (build/bench/bench_cjson); flowfetch's stage figures from its summary
     line; peak memory (ru_maxrss of the child) of the largest query against
     the two-hour one;
  d. warm: the same query again (no /flows request) with CSV to /dev/null,
     against `cat` of the same CSV to /dev/null.

Progress goes to stderr; only the section goes to stdout.
"""
import csv
import hashlib
import http.client
import json
import math
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

from simctl import Sim, report_end

NOW_ISO = "2026-11-29T12:00:00Z"
NOW_MS = 1795953600000
DAY = 86400000
HOUR = 3600000
TODAY = NOW_MS // DAY * DAY
YESTERDAY = TODAY - DAY
COLD_RUNS = 3           # cold runs of the throughput query (median)
WARM_RUNS = 5           # warm runs and cat runs (median)
CJSON_ROUNDS = 3        # rounds of each of the COLD_RUNS baseline runs (median)
REPEAT = 3              # flowfetch runs of each small query (requests vary: random subsets)

SUMMARY = re.compile(
    r"flowfetch: (\d+) flows written to .*?; (\d+) requests, (\d+) retries, (\d+) records "
    r"fetched in ([\d.]+) s \(decoding ([\d.]+) s, storing ([\d.]+) s\)(; INCOMPLETE)?")


def log(msg):
    print(f"engine: {msg}", file=sys.stderr, flush=True)


def iso(ms):
    t = time.gmtime(ms // 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{ms % 1000:03d}Z"


def day_of(ms):
    return time.strftime("%Y-%m-%d", time.gmtime(ms // 1000))


def digest(ids):
    h = hashlib.sha256()
    for i in sorted(ids):
        h.update(i.encode() + b"\n")
    return h.hexdigest()


def check_csv(path, count, want_digest):
    """(rows, distinct ids, digest matches): the CSV against the truth."""
    with open(path, newline="") as f:
        r = csv.reader(f)
        col = next(r).index("flowId")
        ids = [row[col] for row in r]
    distinct = set(ids)
    return len(ids), len(distinct), len(ids) == count and digest(distinct) == want_digest


def run(cmd, stdout=subprocess.DEVNULL, rss=True):
    """Run a child; (exit status, wall s, peak RSS KiB, stderr text, CPU s).

    CPU is user + system time of the child and what it waited for (so,
    through /usr/bin/time, of flowfetch).

    The peak RSS comes from /usr/bin/time: ru_maxrss of a child forked by
    this (large) Python process would count the parent's pages copied at the
    fork (Linux keeps the pre-exec high-water mark)."""
    timer = "/usr/bin/time" if rss and os.access("/usr/bin/time", os.X_OK) else None
    with tempfile.TemporaryFile("w+") as err, tempfile.NamedTemporaryFile("r") as rssf:
        full = ([timer, "-q", "-f", "%M", "-o", rssf.name] if timer else []) + cmd
        t0 = time.monotonic()
        p = subprocess.Popen(full, stdin=subprocess.DEVNULL, stdout=stdout, stderr=err)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.monotonic() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        peak = ru.ru_maxrss
        if timer:
            try:
                peak = int(rssf.read().split()[-1])
            except (ValueError, IndexError):
                peak = 0
        return p.returncode, wall, peak, err.read(), ru.ru_utime + ru.ru_stime


class Bench:
    def __init__(self, build):
        self.build = os.path.abspath(build)
        self.flowfetch = os.path.join(self.build, "fetch", "flowfetch")
        self.cjson = os.path.join(self.build, "bench", "bench_cjson")
        self.tmp = tempfile.mkdtemp(prefix="bench_engine.")
        self.sim = Sim(os.path.join(self.build, "sim", "flowsim"), self.tmp)
        info = self.sim.request("GET", "/api/v1/info", auth=True)
        self.cap = info["max_records"]
        self.ncache = 0
        self.problems = []

    def close(self):
        self.sim.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def fresh_cache(self):
        self.ncache += 1
        return os.path.join(self.tmp, f"cache{self.ncache}")

    def flowfetch_cmd(self, ip, start, end, cache, out):
        return [self.flowfetch, self.sim.url, "--ip", ip, "--from", iso(start), "--to", iso(end),
                "--token-file", self.sim.token_file, "--cache", cache, "-o", out]

    def sim_cpu(self):
        """flowsim's user + system CPU seconds so far (/proc/PID/stat)."""
        try:
            with open(f"/proc/{self.sim.proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return 0.0

    def fetch(self, ip, start, end, cache, out, label):
        """One flowfetch run, measured by the collector's counters too."""
        before = self.sim.flows_requests()
        if out == "-":
            with open(os.devnull, "w") as null:
                rc, wall, rss, err, cpu = run(self.flowfetch_cmd(ip, start, end, cache, out), null)
        else:
            sim0 = self.sim_cpu()
            rc, wall, rss, err, cpu = run(self.flowfetch_cmd(ip, start, end, cache, out))
            sim_cpu = self.sim_cpu() - sim0
        reqs = self.sim.flows_requests() - before
        m = SUMMARY.search(err)
        res = {"rc": rc, "wall": wall, "rss": rss, "requests": reqs, "summary": m, "cpu": cpu,
               "sim_cpu": sim_cpu if out != "-" else 0.0}
        if rc != 0 or not m:
            last = err.strip().splitlines()[-3:]
            self.problems.append(f"{label}: flowfetch exited with status {rc}: {' / '.join(last)}")
            log(f"{label}: flowfetch status {rc}: {err.strip()[-400:]}")
        return res

    # a + b -------------------------------------------------------------
    def old_method(self, ip, start, end):
        """Shift the window's start to the latest start seen in a full answer."""
        before = self.sim.flows_requests()
        ids, s, stuck = set(), start, False
        while True:
            q = urllib.parse.urlencode({"ip": ip, "start": s, "end": end})
            flows = self.sim.request("GET", f"/api/v1/flows?{q}", auth=True)["flows"]
            ids.update(f["id"] for f in flows)
            if len(flows) < self.cap:
                break
            latest = max(f["start"] for f in flows)
            if latest <= s:     # every record at the window's first ms: it would loop
                stuck = True
                break
            s = latest
        return self.sim.flows_requests() - before, ids, stuck

    def requests(self, queries):
        rows = []
        for label, ip, start, end, kind, nruns in queries:
            count, want = self.sim.truth(ip, start, end)
            lower = max(1, math.ceil(count / self.cap))
            runs = []
            for i in range(nruns):
                out = os.path.join(self.tmp, f"q{len(rows)}.csv")
                log(f"{label}: {count} flows, flowfetch run {i + 1} of {nruns}")
                cache = self.fresh_cache()
                r = self.fetch(ip, start, end, cache, out, label)
                if r["rc"] == 0 and os.path.exists(out):
                    nrows, distinct, same = check_csv(out, count, want)
                else:
                    nrows, distinct, same = 0, 0, False
                r.update(cache=cache, out=out, nrows=nrows,
                         complete=r["rc"] == 0 and nrows == count and distinct == count and same)
                if not r["complete"]:
                    self.problems.append(
                        f"{label}, run {i + 1}: INCOMPLETE: exit status {r['rc']}, {nrows} rows "
                        f"({distinct} distinct ids) for {count} flows in the truth, digest "
                        f"{'matches' if same else 'differs'}")
                if r["summary"] and int(r["summary"].group(2)) != r["requests"]:
                    self.problems.append(
                        f"{label}: flowfetch says {r['summary'].group(2)} requests, "
                        f"the collector counted {r['requests']}")
                runs.append(r)
            log(f"{label}: old method")
            oreq, oids, stuck = self.old_method(ip, start, end)
            reqs = sorted(r["requests"] for r in runs)
            rows.append({
                "label": label, "kind": kind, "count": count, "lower": lower, "runs": runs,
                "r": runs[-1], "reqs": reqs, "complete": all(r["complete"] for r in runs),
                "lost": max(count - r["nrows"] for r in runs),
                "old_req": oreq, "old_lost": count - len(oids), "old_stuck": stuck,
            })
        return rows

    # c ----------------------------------------------------------------
    def cjson_rate(self, ip, start, end):
        """cJSON alone on saturated answers of the same host and hours."""
        slices = 8
        step = (end - start) // slices
        urls = [self.sim.flows_url(ip, start + i * step, start + (i + 1) * step) for i in range(slices)]
        p = subprocess.run([self.cjson, self.sim.token_file, str(CJSON_ROUNDS)] + urls,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, check=True)
        fig = dict(kv.split("=", 1) for kv in p.stdout.split())
        if int(fig["records"]) != slices * self.cap:
            self.problems.append(f"bench_cjson: {fig['records']} records in {slices} answers "
                                 f"(not all saturated)")
        return fig

    def cold(self, ip, start, end):
        """COLD_RUNS cold runs, each after a cJSON baseline run (same load)."""
        count, want = self.sim.truth(ip, start, end)
        runs, cj = [], []
        out = os.path.join(self.tmp, "cold.csv")
        for i in range(COLD_RUNS):
            log(f"cJSON baseline run {i + 1} of {COLD_RUNS}")
            cj.append(self.cjson_rate(ip, start, end))
            log(f"cold run {i + 1} of {COLD_RUNS}")
            cache = self.fresh_cache()
            r = self.fetch(ip, start, end, cache, out, f"cold run {i + 1}")
            if r["rc"] != 0:
                continue
            nrows, distinct, same = check_csv(out, count, want)
            if not (nrows == count and distinct == count and same):
                self.problems.append(f"cold run {i + 1}: INCOMPLETE: {nrows} rows for {count} flows")
                continue
            r["cache"] = cache
            runs.append(r)
        cj.sort(key=lambda f: float(f["records_per_s"]))
        if not runs:
            return None, cj[len(cj) // 2]
        runs.sort(key=lambda r: r["wall"])
        med = runs[len(runs) // 2]
        return {"count": count, "runs": runs, "med": med, "out": out}, cj[len(cj) // 2]

    # d ----------------------------------------------------------------
    def warm(self, ip, start, end, cache, csv_path, count, label, nruns):
        walls, reqs = [], 0
        for _ in range(nruns):
            r = self.fetch(ip, start, end, cache, "-", f"warm {label}")
            reqs += r["requests"]
            if r["rc"] != 0:
                return None
            if r["summary"] and int(r["summary"].group(1)) != count:
                self.problems.append(f"warm {label}: {r['summary'].group(1)} rows, {count} expected")
            walls.append(r["wall"])
        cats = []
        with open(os.devnull, "w") as null:
            for _ in range(nruns):
                rc, wall, _, _, _ = run(["cat", csv_path], null, rss=False)
                cats.append(wall)
        if reqs:
            self.problems.append(f"warm {label}: {reqs} /flows requests (expected none)")
        return {"ff": statistics.median(walls), "cat": statistics.median(cats), "reqs": reqs,
                "size": os.path.getsize(csv_path)}


def finish(P, t_start, problems):
    """The section's text: its lines P, a blank line, the benchmark's run
    time and the problems seen (also used by bench/sna.py)."""
    P.append("")
    report_end(P, problems, t_start)
    return "\n".join(P)


def fmt_int(n):
    return f"{n:,}"


def run_bench(name, make, report_fn):
    """A benchmark's entry (bench/run calls it with BUILD_DIR): make the
    bench, print the section its report returns, close it whatever
    happens; the exit status (0 when the section was printed: problems
    are in the section, so that the report shows them)."""
    if len(sys.argv) != 2:
        print(f"usage: {name} BUILD_DIR", file=sys.stderr)
        return 2
    t_start = time.monotonic()
    b = make(sys.argv[1])
    try:
        print(report_fn(b, t_start))
        return 0
    finally:
        b.close()


def main():
    return run_bench("engine.py", Bench, report)


def report(b, t_start):
    load0 = os.getloadavg()[0]
    heavy_from, heavy_to = YESTERDAY + 13 * HOUR, YESTERDAY + 15 * HOUR
    queries = [
        ("db-1 (steady) 10.0.1.11, 7 days to now", "10.0.1.11", TODAY - 6 * DAY, NOW_MS, "steady", REPEAT),
        ("db-1 (steady) 10.0.1.11, 1 day", "10.0.1.11", YESTERDAY, TODAY, "steady", REPEAT),
        ("heavy-1 (steady curve) 10.0.1.20, 1 day", "10.0.1.20", YESTERDAY, TODAY, "steady", 1),
        ("burst-1 (bursty) 10.0.1.30, 1 day", "10.0.1.30", YESTERDAY, TODAY, "bursty", REPEAT),
        ("victim-1 + flood 10.0.1.40, yesterday", "10.0.1.40", YESTERDAY, TODAY, "bursty", REPEAT),
        ("web-1 + scan 10.0.1.10, two days ago", "10.0.1.10", YESTERDAY - DAY, YESTERDAY, "bursty", REPEAT),
    ]
    rows = b.requests(queries)
    heavy_day = rows[2]
    hd = heavy_day["r"]

    cold, cj = b.cold("10.0.1.20", heavy_from, heavy_to)
    cj_rate = float(cj["records_per_s"])
    warm2h = warmday = None
    if cold:
        log("warm runs, two hours")
        warm2h = b.warm("10.0.1.20", heavy_from, heavy_to, cold["med"]["cache"], cold["out"],
                        cold["count"], "heavy-1 2 h", WARM_RUNS)
    if heavy_day["complete"]:
        log("warm runs, heavy day")
        warmday = b.warm("10.0.1.20", YESTERDAY, TODAY, hd["cache"], hd["out"],
                         heavy_day["count"], "heavy-1 day", 3)
    load1 = os.getloadavg()[0]

    P = []
    P.append(f"flowsim on loopback, clock frozen at {NOW_ISO}, default scenario, "
             f"max_records {fmt_int(b.cap)}; flowfetch with its defaults (4 requests in flight, "
             f"{os.cpu_count()} cores), a fresh cache for every cold run. Baselines measured in the "
             f"same run: the lower bound ceil(flows / {fmt_int(b.cap)}); the old method (move `start` "
             f"to the latest start time of a full answer, one request at a time), run by the "
             f"benchmark against the same flowsim; cJSON alone on one core (`bench_cjson`); `cat`. "
             f"Load average (1 min) {load0:.2f} at the start, {load1:.2f} at the end.")
    P.append("")
    P.append("### Requests per query (a, b)")
    P.append("")
    P.append(f"Requests are counted by flowsim (`/_sim/counters`, `/api/v1/flows`, every status). "
             f"Each small query is run {REPEAT} times with a fresh cache (a saturated answer is a random "
             f"subset, so the count varies): median and range; the heavy day once. Complete means, for "
             f"every run: exit status 0, CSV rows = truth count, no duplicate id, and the SHA-256 of the "
             f"sorted ids equals `/_sim/truth`'s digest.")
    P.append("")
    P.append("| query | flows (truth) | lower bound | flowfetch requests, median (range) | ratio to bound "
             "| target | flowfetch complete, lost | flowfetch wall | old method requests | old method lost |")
    P.append("| --- | ---: | ---: | ---: | ---: | --- | --- | ---: | ---: | ---: |")
    for r in rows:
        reqs = r["reqs"]
        medreq = reqs[len(reqs) // 2]
        ratio = medreq / r["lower"]
        target = 1.3 if r["kind"] == "steady" else 2.0
        verdict = "met" if ratio <= target else "**missed**"
        if not r["complete"]:
            verdict = "n/a (incomplete)"
        span = f" ({reqs[0]}-{reqs[-1]})" if len(reqs) > 1 else ""
        rspan = (f" ({reqs[0] / r['lower']:.2f}-{reqs[-1] / r['lower']:.2f})" if len(reqs) > 1 else "")
        comp = "yes, 0" if r["complete"] else f"**NO**, {fmt_int(r['lost'])}"
        walls = sorted(x["wall"] for x in r["runs"])
        lost = r["old_lost"]
        old = f"{fmt_int(lost)} ({100 * lost / r['count']:.1f}%)" + (", stuck" if r["old_stuck"] else "")
        P.append(f"| {r['label']} | {fmt_int(r['count'])} | {r['lower']} | {medreq}{span} "
                 f"| **{ratio:.2f}**{rspan} | <= {target:g} ({verdict}) | {comp} "
                 f"| {walls[len(walls) // 2]:.1f} s | {r['old_req']} | {old} |")
    P.append("")

    P.append("### Cold, end to end (c)")
    P.append("")
    if cold:
        med = cold["med"]
        m = med["summary"]
        ff_rate = cold["count"] / med["wall"]
        fetch_s = float(m.group(5))
        walls = ", ".join(f"{r['wall']:.2f}" for r in cold["runs"])
        P.append(f"Query: heavy-1 (10.0.1.20), {iso(heavy_from)} to {iso(heavy_to)} (its busiest two "
                 f"hours), {fmt_int(cold['count'])} flows, CSV output; median of {len(cold['runs'])} "
                 f"complete cold runs (wall {walls} s). Baseline: `bench_cjson` parses "
                 f"{int(cj['records']) // b.cap} saturated answers of the same host and hours "
                 f"({float(cj['bytes']) / 1e6:.1f} MB), walks every field of every record and frees "
                 f"them, single-threaded; run before each cold run, median.")
        P.append("")
        P.append("| figure | value | ratio |")
        P.append("| --- | --- | --- |")
        P.append(f"| cJSON alone, one core | {cj_rate:,.0f} records/s ({cj['mb_per_s']} MB/s) | 1.00 (baseline) |")
        P.append(f"| flowfetch cold, process wall time ({med['wall']:.2f} s) | {ff_rate:,.0f} flows/s "
                 f"| **{ff_rate / cj_rate:.2f} x cJSON** (target >= 0.8: "
                 f"{'met' if ff_rate / cj_rate >= 0.8 else '**missed**'}; stretch 200,000 flows/s) |")
        P.append(f"| flowfetch fetch stage only (summary: {fetch_s:.2f} s) | "
                 f"{cold['count'] / fetch_s:,.0f} flows/s | {cold['count'] / fetch_s / cj_rate:.2f} x cJSON |")
        P.append(f"| records decoded (duplicates of split windows included) | {fmt_int(int(m.group(4)))} "
                 f"| {int(m.group(4)) / cold['count']:.2f} x the flows |")
        P.append(f"| requests | {med['requests']} | {med['requests'] / math.ceil(cold['count'] / b.cap):.2f} "
                 f"x the lower bound |")
        if hd["summary"] and heavy_day["complete"]:
            day_rate = heavy_day["count"] / hd["wall"]
            day_x = day_rate / cj_rate
            P.append(f"| heavy-1, 1 day ({fmt_int(heavy_day['count'])} flows), one cold run, process "
                     f"wall {hd['wall']:.1f} s | {day_rate:,.0f} flows/s | **{day_x:.2f} x cJSON** "
                     f"(target >= 1.2, issue 18: {'met' if day_x >= 1.2 else '**missed**'}) |")
            dm = hd["summary"]
            store_s = float(dm.group(7))
            ncpu = os.cpu_count() or 1
            floor_s = (hd["cpu"] + hd["sim_cpu"]) / ncpu
            P.append(f"| the same run's CPU: flowfetch {hd['cpu']:.1f} s, flowsim {hd['sim_cpu']:.1f} s; "
                     f"on {ncpu} cores no wall time is shorter than their sum / {ncpu} = "
                     f"{floor_s:.1f} s | {heavy_day['count'] / floor_s:,.0f} flows/s at best | "
                     f"they had {(hd['cpu'] + hd['sim_cpu']) / hd['wall']:.2f} of the {ncpu} cores "
                     f"on average (the rest: other work) |")
            if store_s > 0:
                P.append(f"| the same day's store thread (summary: storing {store_s:.2f} s, "
                         f"{fmt_int(int(dm.group(4)))} records offered) | "
                         f"{int(dm.group(4)) / store_s:,.0f} records/s | "
                         f"{int(dm.group(4)) / store_s / cj_rate:.2f} x cJSON |")
        P.append("")
        P.append("Stage figures from flowfetch's summary line (decoding is summed over its decoder "
                 "threads, so its share can pass 100%; storing is one thread):")
        P.append("")
        P.append("| query | process wall | fetch stage | decoding | storing | outside the fetch stage (start, render) |")
        P.append("| --- | ---: | ---: | ---: | ---: | ---: |")

        def stage_row(label, r):
            m = r["summary"]
            w, f, d, s = r["wall"], float(m.group(5)), float(m.group(6)), float(m.group(7))
            return (f"| {label} | {w:.2f} s | {f:.2f} s ({f / w:.0%} of wall) | {d:.2f} s ({d / f:.0%} of fetch) "
                    f"| {s:.2f} s ({s / f:.0%} of fetch) | {w - f:.2f} s ({(w - f) / w:.0%} of wall) |")
        P.append(stage_row(f"heavy-1, 2 h ({fmt_int(cold['count'])} flows), median run", med))
        if hd["summary"]:
            P.append(stage_row(f"heavy-1, 1 day ({fmt_int(heavy_day['count'])} flows)", hd))
        P.append("")
        if hd["summary"] and heavy_day["complete"]:
            P.append("What stands between the heavy day and 1.2 x cJSON (issue 18, item 3), counted "
                     "exactly once with callgrind on the two-hour query (instructions, independent of "
                     "the load; docs/design.md, \"The cache\"): the store thread ran 17,200 "
                     "instructions a record before issue 18 and 12,100 after (16 KiB pages, 256 "
                     "records a statement), so flowfetch's whole run fell from 16.1 G to 15.1 G "
                     "instructions; of them decoding (cJSON's parse, which is the baseline itself, "
                     "and the records built from it) is 57%, storing 23%, the CSV render after the "
                     "download 11%. On 2 cores a wall time of 1.2 x cJSON needs flowfetch's and "
                     "flowsim's CPU together to stay within 2 / 1.2 = 1.67 times what cJSON alone "
                     "needs on one core for the same records, while decoding alone is about 1 times "
                     "that: the CPU row above gives this run's floor.")
            P.append("")
        if hd["summary"]:
            rss = sorted(r["rss"] for r in cold["runs"])
            base = rss[len(rss) // 2]
            P.append("| peak memory (ru_maxrss of flowfetch) | value | ratio |")
            P.append("| --- | --- | --- |")
            P.append(f"| heavy-1, 2 h, {fmt_int(cold['count'])} flows (baseline), median of the cold runs "
                     f"| {base / 1024:.0f} MiB (runs: {', '.join(f'{x / 1024:.0f}' for x in rss)}) | 1.00 |")
            P.append(f"| heavy-1, 1 day, {fmt_int(heavy_day['count'])} flows "
                     f"({heavy_day['count'] / cold['count']:.1f} x the flows) | {hd['rss'] / 1024:.0f} MiB "
                     f"| **{hd['rss'] / base:.2f}** (flat = 1) |")
            P.append("")
    else:
        P.append(f"No figure: no cold run was complete (see problems). cJSON alone: {cj_rate:,.0f} records/s.")
        P.append("")

    P.append("### Warm (d)")
    P.append("")
    P.append("The same query again on the same cache, `-o -` to /dev/null, against `cat` of the "
             "CSV the cold run wrote, to /dev/null (page cache warm); medians. A ratio of 1 is as "
             "fast as `cat`.")
    P.append("")
    P.append("| query | CSV size | /flows requests | flowfetch warm | cat | ratio (cat time / flowfetch time) |")
    P.append("| --- | ---: | ---: | ---: | ---: | ---: |")
    for label, w, n in (("heavy-1, 2 h", warm2h, cold["count"] if cold else 0),
                        ("heavy-1, 1 day", warmday, heavy_day["count"])):
        if not w:
            P.append(f"| {label} | | | not measured (no complete cold run) | | |")
            continue
        P.append(f"| {label}, {fmt_int(n)} flows | {w['size'] / 1e6:.0f} MB | {w['reqs']} | "
                 f"{w['ff'] * 1e3:.0f} ms ({n / w['ff']:,.0f} flows/s) | {w['cat'] * 1e3:.0f} ms "
                 f"| **{w['cat'] / w['ff']:.3f}** ({w['ff'] / w['cat']:.0f} x slower) |")
    return finish(P, t_start, b.problems)


if __name__ == "__main__":
    sys.exit(main())
