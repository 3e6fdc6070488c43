#!/usr/bin/python3
"""flowmon.py - the Flowmon driver's cost against flowsim's Flowmon dialect.

Usage: /usr/bin/python3 bench/flowmon.py BUILD_DIR   (bench/run flowmon)

Starts its own flowsims on 127.0.0.1 port 0 (clock frozen, /_sim enabled,
private credentials, the default seed): the Flowmon dialect with its
defaults (results pending one poll, kept 600 s, flows exported up to 300 s
after their end), the SNA dialect (--max-records 10000, searches done at
once: --sna-query-ms 0), the reference dialect, and a Flowmon dialect whose
flows are all short (a scenario of the scan and the flood alone, exported
up to 290 s after their end); stops each by its pid at the end, and prints
a Markdown section on stdout.  The days are test_flowmon.py's: the steady
day (db-1, 10.0.1.11, two days ago), the scan day (web-1, 10.0.1.10, two
days ago) and the flood day (victim-1, 10.0.1.40, yesterday), each fetched
cold (a fresh cache) by flowfetch, --active-timeout 3900 as the tests do.

  1. listings per day (the deltas of flowsim's "flowmon" counters) against
     the lower bound ceil(flows / 10,000) the issue names; polls (every
     GET of /rest/fmc/analysis/results/ID) and result-list requests; wall
     time against the same day through the SNA driver (the baseline) and
     through the reference dialect; each Flowmon result checked against
     the truth (the multiset of the fields of the flows that started in
     the day, as test_flowmon.py compares them), the others by row count.
  2. the lateness probe: the same runs again through a recording proxy
     (here, in Python) that reads each listing's search: a probe's search
     spans one slot (from to to: 5 minutes), a part's at least two; the
     listings the windows would need without the probe are the others.
  3. the reach: the short-flow flowsim's scan day and flood day with
     --active-timeout 300 (enough there) and 3900: listings of each.

Progress goes to stderr; only the section goes to stdout.
"""
import csv
import http.client
import json
import math
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

from engine import DAY, SUMMARY, TODAY, finish, fmt_int, run
from simctl import Sim

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

import test_flowmon as fm_tests     # noqa: E402  (the tests' comparison with the truth)
from test_flowmon import day_text   # noqa: E402

CAP = 10000             # showonly's maximum, the driver's listing size
REACH = "3900"          # flowsim's longest flow (1 h) + its export delay (300 s)
DAYS = (("steady day", "db-1", "10.0.1.11", TODAY - 2 * DAY),
        ("scan day", "web-1", "10.0.1.10", TODAY - 2 * DAY),
        ("flood day", "victim-1", "10.0.1.40", TODAY - DAY))
SHORT_SCENARIO = (
    "# the default scenario's scan and flood alone: flows of at most 1 s\n"
    "scan  name=scan-1  victim=10.0.1.10 attacker=203.0.113.66 day=-2 at=13:05:00 span=1000 "
    "flows=30000\n"
    "flood name=flood-1 victim=10.0.1.40 day=-1 at=03:17:00.250 flows=15000\n")
SHORT_EXPORT_S = 290    # the short-flow flowsim's export delay: inside a reach of 300
FM_COUNTERS = ("listings", "pending_202", "gone_204", "empty_204", "result_lists")
RESULTS = "/rest/fmc/analysis/results/{id}"
GAP = re.compile(r"flowfetch: gap: .*\((\d+) records seen\)")


def log(msg):
    print(f"flowmon: {msg}", file=sys.stderr, flush=True)


def truth_flows(sim, ip, start, end):
    """test_flowmon.py's truth_flows over a Sim of simctl.py."""
    def get_json(path, params):
        return sim.request("GET", f"{path}?{urllib.parse.urlencode(params)}")
    return fm_tests.truth_flows(SimpleNamespace(get_json=get_json), ip, start, end)


def csv_flows(path):
    with open(path, "rb") as f:
        return fm_tests.csv_flows(f.read())[0]


class Recorder:
    """A recording proxy on 127.0.0.1:0 in front of a flowsim: forwards
    every request as it came and keeps each listing's search span (to -
    from, minutes); stopped by stop()."""

    def __init__(self, port):
        rec = self
        self.spans = Counter()
        self.lock = threading.Lock()
        local = threading.local()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def forward(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                path = urllib.parse.urlsplit(self.path)
                if path.path == "/rest/fmc/analysis/flows":
                    form = urllib.parse.parse_qs(path.query)
                    if body:
                        form.update(urllib.parse.parse_qs(body.decode()))
                    rec.note(form.get("search", ["{}"])[0])
                if getattr(local, "conn", None) is None:
                    local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() in ("authorization", "content-type", "accept")}
                local.conn.request(self.command, self.path, body, headers)
                r = local.conn.getresponse()
                data = r.read()
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() in ("content-type", "x-fm-message", "retry-after"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever)
        self.thread.start()

    def note(self, search):
        try:
            s = json.loads(search)
            fmt = "%Y-%m-%d %H:%M"
            span = (datetime.strptime(s["to"], fmt) - datetime.strptime(s["from"], fmt))
            minutes = int(span.total_seconds() // 60)
        except (ValueError, KeyError, TypeError):
            minutes = -1
        with self.lock:
            self.spans[minutes] += 1

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


class Bench:
    def __init__(self, build):
        self.build = os.path.abspath(build)
        self.flowfetch = os.path.join(self.build, "fetch", "flowfetch")
        self.tmp = tempfile.mkdtemp(prefix="bench_flowmon.")
        self.ncache = 0
        self.problems = []
        self.loads = [os.getloadavg()[0]]      # the 1-minute load before each run
        self.sims = {}
        scenario = os.path.join(self.tmp, "short.scenario")
        with open(scenario, "w") as f:
            f.write(SHORT_SCENARIO)
        binary = os.path.join(self.build, "sim", "flowsim")
        for name, dialect, args in (
                ("fm", "flowmon", []),
                ("sna", "sna", ["--max-records", str(CAP), "--sna-query-ms", "0"]),
                ("ref", "flowapi", []),
                ("short", "flowmon", ["--scenario", scenario,
                                      "--flowmon-active-timeout", str(SHORT_EXPORT_S)])):
            d = os.path.join(self.tmp, name)
            os.mkdir(d)
            self.sims[name] = Sim(binary, d, dialect, args)

    def close(self):
        for sim in self.sims.values():
            sim.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def counts(self, sim):
        c = sim.counters()
        out = {k: c["flowmon"][k] for k in FM_COUNTERS}
        out["polls"] = sum(c["endpoints"].get(RESULTS, {}).values())
        return out

    def fetch(self, name, ip, day, label, reach=REACH, proxy=None):
        """One cold flowfetch run of a day; its exit status, wall time,
        summary, and for a Flowmon sim the counters' deltas and whether
        the CSV equals the truth."""
        sim = self.sims[name]
        self.ncache += 1
        out = os.path.join(self.tmp, f"out{self.ncache}.csv")
        url = f"flowmon+http://127.0.0.1:{proxy.port}" if proxy else sim.driver_url
        cmd = [self.flowfetch, url, "--ip", ip, "--from", day_text(day), "--to", day_text(day),
               "--token-file", sim.token_file, "--cache",
               os.path.join(self.tmp, f"cache{self.ncache}"), "-o", out]
        fm = sim.dialect == "flowmon"
        if fm:
            cmd += ["--active-timeout", reach]
        if sim.dialect == "sna":
            cmd += ["--max-records", str(CAP)]
        before = self.counts(sim) if fm else None
        log(f"{label}: running")
        self.loads.append(os.getloadavg()[0])
        rc, wall, _, err, _ = run(cmd, rss=False)
        res = {"rc": rc, "wall": wall, "summary": SUMMARY.search(err), "exact": False}
        if fm:
            after = self.counts(sim)
            res.update({k: after[k] - before[k] for k in after})
        if rc not in (0, 3):
            self.problems.append(f"{label}: flowfetch exited with status {rc}: "
                                 f"{' / '.join(err.strip().splitlines()[-2:])}")
            return res
        if fm:
            want = truth_flows(sim, ip, day, day + DAY)
            res["flows"] = sum(want.values())
            res["same"] = csv_flows(out) == want
            res["exact"] = rc == 0 and res["same"]
            res["gaps"] = GAP.findall(err)
        else:
            key = "sna" if sim.dialect == "sna" else None
            res["flows"] = sim.truth(ip, day, day + DAY, key=key)[0]
            with open(out, newline="") as f:
                res["exact"] = rc == 0 and sum(1 for _ in f) - 1 == res["flows"]
        if not res["exact"] and not (sim.dialect == "sna" and rc == 3) and not res.get("same"):
            self.problems.append(f"{label}: INCOMPLETE or not equal to the truth (status {rc})")
        os.unlink(out)
        return res

    def probed(self, ip, day, label):
        """The day again through the recorder: (probe listings, others)."""
        rec = Recorder(self.sims["fm"].port)
        try:
            r = self.fetch("fm", ip, day, label, proxy=rec)
        finally:
            rec.stop()
        probes = rec.spans.get(5, 0)
        others = sum(rec.spans.values()) - probes
        if sum(rec.spans.values()) != r.get("listings"):
            self.problems.append(f"{label}: the recorder saw {sum(rec.spans.values())} listings, "
                                 f"flowsim counted {r.get('listings')}")
        return probes, others, r


def exact_text(r):
    """yes, or why not: exit 3 with the CSV equal to the truth, or NO."""
    if r["exact"]:
        return "yes"
    if r.get("same"):
        return f"all flows, exit {r['rc']}"
    return "**NO**"


def row(cells):
    return "| " + " | ".join(str(c) for c in cells) + " |"


def report(b, t_start):
    P = []
    res = {}
    for label, host, ip, day in DAYS:
        res[label] = {name: b.fetch(name, ip, day, f"{label}, {name}") for name in ("fm", "sna", "ref")}
        res[label]["probe"] = b.probed(ip, day, f"{label}, through the recorder")
    reach = {}
    for label, host, ip, day in DAYS[1:]:
        reach[label] = {r: b.fetch("short", ip, day, f"{label}, short flows, reach {r}", reach=r)
                        for r in ("300", REACH)}

    P.append(f"The days of tests/integration/test_flowmon.py (flowsim's default seed), each fetched "
             f"cold by flowfetch (a fresh cache, one run each) against `flowsim --dialect flowmon` "
             f"with its defaults (results answer 202 once, are kept 600 s; flows exported up to "
             f"300 s after their end), `--active-timeout {REACH}` as the tests give (flowsim's "
             f"flows last up to an hour). Listings and polls are the deltas of flowsim's counters "
             f"(`/_sim/counters`: `flowmon`, and the endpoint `/rest/fmc/analysis/results/{{id}}` "
             f"for polls); bound = ceil(flows / {fmt_int(CAP)}), the issue's \"requests near "
             f"ceil(flows / 10,000)\". Exact: the CSV equals the truth's flows that started in the "
             f"day (the multiset of their fields). Time baseline: the same day through the SNA "
             f"driver against `flowsim --dialect sna --max-records {CAP} --sna-query-ms 0` (its "
             f"searches done at once, as a Flowmon result is ready at the second poll), and, for "
             f"reference, through the simple flowapi dialect (flowsim's default).")
    P.append("")
    P.append("| day | flows | listings | bound | listings / bound | polls | result lists | "
             "204s (empty, gone) | exact | wall | SNA wall (baseline) | Flowmon / SNA | "
             "flowapi wall | Flowmon / flowapi |")
    P.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: "
             "| ---: | ---: |")
    for label, host, ip, day in DAYS:
        fm, sna, ref = res[label]["fm"], res[label]["sna"], res[label]["ref"]
        if "flows" not in fm:
            P.append(row([f"{label} ({host})", "failed (see problems)"] + [""] * 12))
            continue
        bound = max(1, math.ceil(fm["flows"] / CAP))
        sna_note = "" if sna["rc"] == 0 else f" (exit {sna['rc']})"
        P.append(row([f"{label} ({host}, {ip}, {day_text(day)})", fmt_int(fm["flows"]),
                      fmt_int(fm["listings"]), bound, f"**{fm['listings'] / bound:.1f}**",
                      fmt_int(fm["polls"]), fmt_int(fm["result_lists"]),
                      f"{fm['empty_204']}, {fm['gone_204']}", "yes" if fm["exact"] else "**NO**",
                      f"{fm['wall']:.2f} s", f"{sna['wall']:.2f} s{sna_note}",
                      f"**{fm['wall'] / sna['wall']:.2f}**", f"{ref['wall']:.2f} s",
                      f"{fm['wall'] / ref['wall']:.2f}"]))
    P.append("")
    load1 = os.getloadavg()[0]
    P.append(f"Load average (1 min) {b.loads[0]:.2f} at the start, {load1:.2f} at the end, "
             f"{max(b.loads + [load1]):.2f} the most seen before a run, on {os.cpu_count()} cores"
             + (": **the machine was loaded by other work**, every wall time here (the baselines' "
                "too) is longer than on an idle machine and the time ratios are rough; the "
                "counts do not depend on it." if max(b.loads + [load1]) > os.cpu_count() else "."))
    P.append("")
    if any(res[label]["sna"]["rc"] == 3 for label, *_ in DAYS):
        P.append("An SNA run that exits 3 names a gap (the scan's second: SNA searches take whole "
                 "seconds and a peer, bench/sna.py); its wall time still counts every search.")
        P.append("")
    P.append("Where the time goes (flowfetch's summary line of the Flowmon run: records decoded, "
             "the decoding threads' time summed):")
    P.append("")
    P.append("| day | HTTP requests | records decoded | records / flows | fetch stage | decoding |")
    P.append("| --- | ---: | ---: | ---: | ---: | ---: |")
    for label, *_ in DAYS:
        fm = res[label]["fm"]
        m = fm["summary"]
        if not m or "flows" not in fm:
            continue
        P.append(row([label, fmt_int(int(m.group(2))), fmt_int(int(m.group(4))),
                      f"{int(m.group(4)) / fm['flows']:.2f}", f"{float(m.group(5)):.2f} s",
                      f"{float(m.group(6)):.2f} s"]))
    P.append("")

    P.append("### The lateness probe")
    P.append("")
    P.append("A window whose listing answers whole, or a window asked in parts once all of them "
             "are in, is followed by one listing of the slots right after its reach (the probe: a "
             "search of one slot; a probe that answers the cap is split by filters as a part is). "
             "The same runs again through a recording proxy that reads each listing's search: "
             "probe listings are those of one slot, the others are the listings the windows would "
             "need without it.")
    P.append("")
    P.append("| day | listings | probe listings (one a window, and a full probe's parts) | "
             "listings without "
             "the probe | listings / listings without | exact |")
    P.append("| --- | ---: | ---: | ---: | ---: | --- |")
    for label, *_ in DAYS:
        probes, others, r = res[label]["probe"]
        if not others:
            continue
        P.append(row([label, fmt_int(probes + others), fmt_int(probes), fmt_int(others),
                      f"**{(probes + others) / others:.2f}**", "yes" if r["exact"] else "**NO**"]))
    P.append("")

    P.append("### The reach")
    P.append("")
    P.append(f"flowsim's steady flows last up to an hour and it has no option to shorten them, so "
             f"the reach of the days above cannot be lowered without losing flows (the probe "
             f"refuses them: test_default_reach_refuses_long_flows). A flowsim whose flows are all "
             f"short instead: a scenario of the default's scan and flood alone (flows of at most "
             f"1 s), exported up to {SHORT_EXPORT_S} s after their end; the same two days fetched "
             f"with `--active-timeout 300` (enough there) and with {REACH}.")
    P.append("")
    P.append("| day (short flows only) | flows | bound | listings, reach 300 | listings, reach "
             f"{REACH} | {REACH} / 300 | exact (300, {REACH}) |")
    P.append("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for label, r in reach.items():
        lo, hi = r["300"], r[REACH]
        if "flows" not in lo or "flows" not in hi:
            continue
        bound = max(1, math.ceil(lo["flows"] / CAP))
        P.append(row([label, fmt_int(lo["flows"]), bound, fmt_int(lo["listings"]),
                      fmt_int(hi["listings"]), f"**{hi['listings'] / max(1, lo['listings']):.1f}**",
                      f"{exact_text(lo)}, {exact_text(hi)}"]))
    P.append("")
    gappy = [(label, r) for label, rr in reach.items() for r in rr.values()
             if r.get("same") and r.get("gaps") and r["rc"] == 3]
    if gappy:
        P.append("A run marked \"exit 3\" wrote every flow of the truth (the CSV equals it) but "
                 "reported gaps whose windows saw 0 records of their own: "
                 + "; ".join(f"{label}, {len(r['gaps'])} gap(s), records seen "
                             f"{', '.join(r['gaps'])}" for label, r in gappy)
                 + ". A false gap: every flow was written, yet a window stayed full (docs/flowmon.md, "
                 "\"A false gap, fixed\", for the last one found).")
        P.append("")
    P.append("For the days above (reach 3900) the minimal plan is the bound of the first table: "
             "every listing beyond it is the reach's, the probe's or a split's.")
    return finish(P, t_start, b.problems)


if __name__ == "__main__":
    from engine import run_bench
    sys.exit(run_bench("flowmon.py", Bench, report))
