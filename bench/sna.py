#!/usr/bin/python3
"""sna.py - engine.py's benchmark run against flowsim's SNA dialect.

Usage: /usr/bin/python3 bench/sna.py BUILD_DIR   (bench/run sna)

Starts its own flowsims on 127.0.0.1 port 0 (clock frozen, /_sim enabled,
private credentials): the SNA dialect with --max-records 10000 (searches
IN_PROGRESS for 200 ms, and a second one for 0 ms), the SNA dialect capped
at 2,000, and the reference dialect; stops each by its pid at the end, and
prints a Markdown section on stdout.  Figures are ratios against baselines
measured in the same run:

  a. searches per query (POSTs to the queries endpoint, from the deltas of
     /_sim/counters) against the lower bound ceil(flows / cap), and every
     HTTP request (creates, polls, results, logins) per search; flowfetch
     is told --max-records 10000; each result checked against
     /_sim/truth?key=sna (count, no duplicate, digest of the sorted ids);
     the reference dialect's requests for the same queries, same checks.
     The scan second is a gap in SNA (whole seconds, one peer): the run
     must exit 3 naming it, and everything outside it must be exact.  Then
     db-1's day against the Manager capped at 2,000, the cap told and the
     cap guessed (no --max-records: the driver assumes 10,000 and verifies).
  b. cold throughput, heavy-1's busiest two hours, CSV: the SNA dialect
     (searches of 0 and 200 ms) against the reference dialect, rounds
     interleaved, median of 3: flows/s, the ratio SNA / reference,
     flowfetch's stage figures, peak RSS; bytes per record of a saturated
     answer in each dialect.
  c. the same two hours while every session is expired every 2 s
     (POST /_sim/sessions/expire), each run paired with one without:
     wall time, logins, exactness.

Progress goes to stderr; only the section goes to stdout.
"""
import csv
import http.client
import json
import math
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
from datetime import datetime

from engine import (DAY, HOUR, NOW_MS, REPEAT, SUMMARY, TODAY, YESTERDAY, check_csv, digest,
                    finish, fmt_int, iso, run, run_bench)
from simctl import NOW_ISO, Sim

CAP = 10000             # the SNA Manager's cap in (a) to (c), told to flowfetch
LOW_CAP = 2000          # the Manager whose cap the driver guesses wrong
COLD_RUNS = 3           # rounds of (b), and pairs of (c)
EXPIRE_EVERY_S = 2.0
QUERIES = "/sw-reporting/v2/tenants/{tenant}/flows/queries"
ENDPOINTS = {"searches": QUERIES, "polls": QUERIES + "/{id}",
             "results": QUERIES + "/{id}/results", "logins": "/token/v2/authenticate"}
GAP = re.compile(r"flowfetch: gap: (\S+) to (\S+), peer (\S+): (.*) \((\d+) records seen\)")


def log(msg):
    print(f"sna: {msg}", file=sys.stderr, flush=True)


def ms_of(text):
    """flowfetch's time text (ISO 8601 with an offset or Z) in ms."""
    return round(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def csv_ids(path):
    with open(path, newline="") as f:
        r = csv.reader(f)
        col = next(r).index("flowId")
        return [row[col] for row in r]


def median_by(runs, key):
    s = sorted(runs, key=key)
    return s[len(s) // 2]


def sna_counts(sim):
    """The SNA endpoints' counts, every status, and the expired-session 401s."""
    c = sim.counters()
    out = {k: sum(c["endpoints"].get(p, {}).values()) for k, p in ENDPOINTS.items()}
    out["expired_401"] = c["sna"]["expired_401"]
    out["created"] = c["endpoints"].get(QUERIES, {}).get("201", 0)
    return out


def answer_bytes_ref(sim, ip, start, end):
    """(bytes, records) of one uncompressed /flows answer."""
    conn = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=120)
    try:
        conn.request("GET", sim.flows_url(ip, start, end)[len(sim.url):],
                     headers={"Authorization": f"Bearer {sim.token}"})
        body = conn.getresponse().read()
        return len(body), len(json.loads(body)["flows"])
    finally:
        conn.close()


def answer_bytes_sna(sim, ip, start, end, cap):
    """(bytes, records) of one uncompressed SNA results answer: log in,
    create the search, poll it until COMPLETED, read it, log out."""
    conn = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=120)

    def ask(method, path, body=None, headers=None, want=200):
        conn.request(method, path, body, headers or {})
        r = conn.getresponse()
        data = r.read()
        if r.status != want:
            raise RuntimeError(f"{method} {path}: HTTP {r.status}")
        return r, data

    try:
        form = urllib.parse.urlencode({"username": sim.user, "password": sim.token})
        r, _ = ask("POST", "/token/v2/authenticate", form,
                   {"Content-Type": "application/x-www-form-urlencoded"})
        cookies = dict(c.split(";", 1)[0].split("=", 1) for c in r.msg.get_all("Set-Cookie"))
        auth = {"Cookie": f"stealthwatch.jwt={cookies['stealthwatch.jwt']}"}
        post = dict(auth, **{"X-XSRF-TOKEN": cookies.get("XSRF-TOKEN", ""),
                             "Content-Type": "application/json"})
        tenant = json.loads(ask("GET", "/sw-reporting/v1/tenants", headers=auth)[1])["data"][0]["id"]
        base = f"/sw-reporting/v2/tenants/{tenant}/flows/queries"
        search = {"startDateTime": iso(start)[:19] + "Z", "endDateTime": iso(end)[:19] + "Z",
                  "recordLimit": cap, "subject": {"ipAddresses": {"includes": [ip]}}}
        _, data = ask("POST", base, json.dumps(search), post, want=201)
        qid = json.loads(data)["data"]["query"]["id"]
        while True:
            status = json.loads(ask("GET", f"{base}/{qid}", headers=auth)[1])["data"]["query"]["status"]
            if status == "COMPLETED":
                break
            if status != "IN_PROGRESS":
                raise RuntimeError(f"search {qid}: {status}")
            time.sleep(0.05)
        _, body = ask("GET", f"{base}/{qid}/results", headers=auth)
        ask("DELETE", "/token", headers=post)
        return len(body), len(json.loads(body)["data"]["flows"])
    finally:
        conn.close()


class Expirer:
    """Expires every live session of an SNA sim every EXPIRE_EVERY_S, on
    its own connection, until stopped."""

    def __init__(self, sim):
        self.sim, self.calls, self.expired = sim, 0, 0
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self._loop)
        self.thread.start()

    def _loop(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.sim.port, timeout=30)
        try:
            while not self.stop_ev.wait(EXPIRE_EVERY_S):
                conn.request("POST", "/_sim/sessions/expire")
                r = conn.getresponse()
                body = r.read()
                if r.status == 200:
                    self.calls += 1
                    self.expired += json.loads(body)["expired"]
        finally:
            conn.close()

    def stop(self):
        self.stop_ev.set()
        self.thread.join()


class Bench:
    def __init__(self, build):
        self.build = os.path.abspath(build)
        self.flowfetch = os.path.join(self.build, "fetch", "flowfetch")
        self.tmp = tempfile.mkdtemp(prefix="bench_sna.")
        self.ncache = 0
        self.problems = []
        self.sims = {}
        binary = os.path.join(self.build, "sim", "flowsim")
        for name, dialect, args in (
                ("sna", "sna", ["--max-records", str(CAP), "--sna-query-ms", "200"]),
                ("sna0", "sna", ["--max-records", str(CAP), "--sna-query-ms", "0"]),
                ("low", "sna", ["--max-records", str(LOW_CAP), "--sna-query-ms", "200"]),
                ("ref", "flowapi", [])):
            d = os.path.join(self.tmp, name)
            os.mkdir(d)
            self.sims[name] = Sim(binary, d, dialect, args)
        self.ref_cap = self.sims["ref"].request("GET", "/api/v1/info", auth=True)["max_records"]

    def close(self):
        for sim in self.sims.values():
            sim.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def fresh_cache(self):
        self.ncache += 1
        return os.path.join(self.tmp, f"cache{self.ncache}")

    def fetch(self, sim, ip, start, end, label, cap=CAP, expirer=False):
        """One cold flowfetch run to a CSV, measured by the collector's
        counters: the SNA endpoints' deltas, or /flows requests."""
        out = os.path.join(self.tmp, f"out{self.ncache}.csv")
        cmd = [self.flowfetch, sim.driver_url, "--ip", ip, "--from", iso(start), "--to", iso(end),
               "--token-file", sim.token_file, "--cache", self.fresh_cache(), "-o", out]
        sna = sim.dialect == "sna"
        if sna and cap:
            cmd += ["--max-records", str(cap)]
        if expirer:     # sessions of earlier runs are not this run's to count
            sim.request("POST", "/_sim/sessions/expire")
        before = sna_counts(sim) if sna else sim.flows_requests()
        exp = Expirer(sim) if expirer else None
        try:
            rc, wall, rss, err, _ = run(cmd)
        finally:
            if exp:
                exp.stop()
        if sna:
            after = sna_counts(sim)
            counts = {k: after[k] - before[k] for k in after}
            counts["http"] = sum(counts[k] for k in ENDPOINTS)
            fetched = counts["searches"] + counts["polls"] + counts["results"]
        else:
            counts = {"requests": sim.flows_requests() - before}
            fetched = counts["requests"]
        m = SUMMARY.search(err)
        res = {"rc": rc, "wall": wall, "rss": rss, "summary": m, "out": out, "err": err,
               "gaps": [(ms_of(a), ms_of(b), peer, why, int(seen))
                        for a, b, peer, why, seen in GAP.findall(err)],
               "expiries": (exp.calls, exp.expired) if exp else (0, 0), **counts}
        if rc not in (0, 3) or not m:
            last = err.strip().splitlines()[-3:]
            self.problems.append(f"{label}: flowfetch exited with status {rc}: {' / '.join(last)}")
            log(f"{label}: flowfetch status {rc}: {err.strip()[-400:]}")
        elif int(m.group(2)) != fetched and not expirer:
            self.problems.append(f"{label}: flowfetch says {m.group(2)} requests, the collector "
                                 f"counted {fetched} (creates, polls and results)")
        return res

    def check(self, sim, ip, start, end, r, label, gap_expected=False):
        """Is the run exact against the truth?  Sets r["complete"] (exit 0,
        rows = count, no duplicate, digest) and, for a run with gaps,
        r["outside_exact"] and the gap's figures: everything outside the
        gaps (second, peer) must be exact."""
        key = "sna" if sim.dialect == "sna" else None
        count, want = sim.truth(ip, start, end, key=key)
        r["complete"] = r["outside_exact"] = False
        r["nrows"] = 0
        if r["rc"] not in (0, 3) or not os.path.exists(r["out"]):
            pass
        elif not r["gaps"]:
            nrows, distinct, same = check_csv(r["out"], count, want)
            r["nrows"] = nrows
            r["complete"] = r["outside_exact"] = (r["rc"] == 0 and nrows == count
                                                  and distinct == count and same)
            if not r["complete"]:
                self.problems.append(
                    f"{label}: INCOMPLETE: exit status {r['rc']}, {nrows} rows ({distinct} distinct "
                    f"ids) for {count} flows in the truth, digest {'matches' if same else 'differs'}")
        else:
            ids = csv_ids(r["out"])
            in_gaps = set()
            for gs, ge, peer, _, _ in r["gaps"]:
                in_gaps.update(sim.truth_ids(ip, gs, ge, key=key, peer=peer))
            got_out = [i for i in ids if i not in in_gaps]
            want_out = [i for i in sim.truth_ids(ip, start, end, key=key) if i not in in_gaps]
            r["nrows"] = len(ids)
            r["in_gap_truth"] = len(in_gaps)
            r["in_gap_got"] = len(ids) - len(got_out)
            r["outside_exact"] = (r["rc"] == 3 and len(got_out) == len(set(got_out)) == len(want_out)
                                  and digest(got_out) == digest(want_out))
            if not r["outside_exact"]:
                self.problems.append(f"{label}: outside the gaps {len(got_out)} rows for "
                                     f"{len(want_out)} flows in the truth, or the ids differ")
        if gap_expected and not r["gaps"]:
            self.problems.append(f"{label}: no gap reported (the scan second should be one)")
        if r["gaps"] and not gap_expected:
            self.problems.append(f"{label}: unexpected gaps: {r['gaps']}")
        return count

    # a ----------------------------------------------------------------
    def searches(self, queries):
        rows = []
        for label, ip, start, end, nruns, gap in queries:
            sna, ref = self.sims["sna"], self.sims["ref"]
            count, _ = sna.truth(ip, start, end, key="sna")
            runs, refs = [], []
            for i in range(nruns):
                log(f"{label}: {count} flows, SNA run {i + 1} of {nruns}")
                r = self.fetch(sna, ip, start, end, f"{label}, SNA run {i + 1}")
                self.check(sna, ip, start, end, r, f"{label}, SNA run {i + 1}", gap)
                runs.append(r)
                log(f"{label}: reference run {i + 1} of {nruns}")
                r = self.fetch(ref, ip, start, end, f"{label}, reference run {i + 1}")
                self.check(ref, ip, start, end, r, f"{label}, reference run {i + 1}")
                refs.append(r)
            rows.append({"label": label, "count": count, "lower": max(1, math.ceil(count / CAP)),
                         "ref_lower": max(1, math.ceil(count / self.ref_cap)),
                         "runs": runs, "refs": refs, "gap": gap})
        return rows

    def guessed(self, label, ip, start, end):
        """The Manager capped at LOW_CAP: the cap told, and guessed."""
        low = self.sims["low"]
        out = {"told": [], "guessed": []}
        for i in range(REPEAT):
            for kind, cap in (("told", LOW_CAP), ("guessed", None)):
                log(f"{label}, Manager capped at {LOW_CAP}, cap {kind}, run {i + 1} of {REPEAT}")
                r = self.fetch(low, ip, start, end, f"{label}, cap {kind}", cap=cap)
                count = self.check(low, ip, start, end, r, f"{label}, cap {kind}, run {i + 1}")
                out[kind].append(r)
        out["count"] = count
        return out

    # b, c ---------------------------------------------------------------
    def cold(self, ip, start, end):
        """COLD_RUNS rounds of one run in each dialect (same load)."""
        runs = {"ref": [], "sna0": [], "sna": []}
        for i in range(COLD_RUNS):
            for name in runs:
                log(f"cold, {name}, round {i + 1} of {COLD_RUNS}")
                r = self.fetch(self.sims[name], ip, start, end, f"cold {name} {i + 1}")
                self.check(self.sims[name], ip, start, end, r, f"cold {name} {i + 1}")
                runs[name].append(r)
        return runs

    def expiry(self, ip, start, end):
        """COLD_RUNS pairs: a run without expiries and a run with them,
        in turns first."""
        pairs = {"plain": [], "expired": []}
        sim = self.sims["sna"]
        for i in range(COLD_RUNS):
            for kind in (("plain", "expired") if i % 2 == 0 else ("expired", "plain")):
                log(f"session expiry, {kind} run {i + 1} of {COLD_RUNS}")
                r = self.fetch(sim, ip, start, end, f"expiry {kind} {i + 1}",
                               expirer=kind == "expired")
                self.check(sim, ip, start, end, r, f"expiry {kind} {i + 1}")
                pairs[kind].append(r)
        return pairs


def row(cells):
    return "| " + " | ".join(cells) + " |"


def col(runs, key):
    return span([x[key] for x in runs])


def exact_text(runs):
    return "yes" if all(x["complete"] for x in runs) else "**NO**"


def walls(runs):
    return ", ".join(f"{x['wall']:.2f}" for x in runs)


def span(values, fmt="{}"):
    """'median (low-high)' of several values; the median alone when they
    all read the same."""
    v = [fmt.format(x) for x in sorted(values)]
    return v[len(v) // 2] + (f" ({v[0]}-{v[-1]})" if v[0] != v[-1] else "")


def report(b, t_start):
    load0 = os.getloadavg()
    heavy_from, heavy_to = YESTERDAY + 13 * HOUR, YESTERDAY + 15 * HOUR
    queries = [
        ("db-1 (steady) 10.0.1.11, 7 days to now", "10.0.1.11", TODAY - 6 * DAY, NOW_MS, REPEAT, False),
        ("db-1 (steady) 10.0.1.11, 1 day", "10.0.1.11", YESTERDAY, TODAY, REPEAT, False),
        ("heavy-1 (steady curve) 10.0.1.20, 1 day", "10.0.1.20", YESTERDAY, TODAY, 1, False),
        ("burst-1 (bursty) 10.0.1.30, 1 day", "10.0.1.30", YESTERDAY, TODAY, REPEAT, False),
        ("victim-1 + flood 10.0.1.40, yesterday", "10.0.1.40", YESTERDAY, TODAY, REPEAT, False),
        ("web-1 + scan 10.0.1.10, two days ago", "10.0.1.10", YESTERDAY - DAY, YESTERDAY, REPEAT, True),
    ]
    rows = b.searches(queries)
    guess = b.guessed("db-1 (steady) 10.0.1.11, 1 day", "10.0.1.11", YESTERDAY, TODAY)
    cold = b.cold("10.0.1.20", heavy_from, heavy_to)
    log("answer sizes")
    size_win = (YESTERDAY + 14 * HOUR, YESTERDAY + 15 * HOUR)
    sizes = {"ref": answer_bytes_ref(b.sims["ref"], "10.0.1.20", *size_win),
             "sna": answer_bytes_sna(b.sims["sna"], "10.0.1.20", *size_win, CAP)}
    exp = b.expiry("10.0.1.20", heavy_from, heavy_to)
    load1 = os.getloadavg()

    P = []
    P.append(f"engine.py's benchmark against `flowsim --dialect sna` (docs/flowsim.md, \"The SNA "
             f"dialect\"), clock frozen at {NOW_ISO}, default scenario: the Manager's cap "
             f"{fmt_int(CAP)} (`--max-records`), told to flowfetch (`--max-records {CAP}`), a search "
             f"IN_PROGRESS for 200 ms (`--sna-query-ms`, the default) unless said; flowfetch with its "
             f"defaults (4 requests in flight, {os.cpu_count()} cores), a fresh cache for every run. "
             f"Baselines measured in the same run: the lower bound ceil(flows / cap); the reference "
             f"dialect (a second flowsim, cap {fmt_int(b.ref_cap)}) on the same queries. The machine "
             f"was shared with other work (run under `nice`): load average (1, 5, 15 min) "
             f"{load0[0]:.2f}, {load0[1]:.2f}, {load0[2]:.2f} at the start, {load1[0]:.2f}, "
             f"{load1[1]:.2f}, {load1[2]:.2f} at the end; wall times are inflated by it, ratios "
             f"between runs interleaved in one round less so.")
    P.append("")
    P.append("### Searches per query (a)")
    P.append("")
    P.append(f"Searches are POSTs to `{QUERIES}`, counted by flowsim (`/_sim/counters`, every status); "
             f"HTTP requests are creates + polls + results + logins (plus one tenants and one tags "
             f"request a run, not counted). Each small query is run {REPEAT} times with a fresh cache "
             f"(a saturated answer is a random subset): median (range); the heavy day once. Exact "
             f"means, for every run: exit status 0, CSV rows = `/_sim/truth?key=sna` count, no "
             f"duplicate id (`flowCollectorId:id`), and the SHA-256 of the sorted ids equals the "
             f"truth's digest; the reference runs are checked the same way against the reference "
             f"truth. flowfetch's own request count (its summary line) is checked against creates + "
             f"polls + results; a difference would be listed under problems.")
    P.append("")
    P.append("| query | flows (truth) | lower bound | SNA searches | ratio to bound | HTTP requests "
             "per search | polls per search | logins | SNA exact | SNA wall | reference requests "
             "| SNA searches / reference requests | reference exact, wall |")
    P.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- |")
    for r in rows:
        runs, refs = r["runs"], r["refs"]
        med = median_by(runs, lambda x: x["searches"])
        rmed = median_by(refs, lambda x: x["requests"])
        ratios = [x["searches"] / r["lower"] for x in runs]
        per = [x["http"] / max(1, x["searches"]) for x in runs]
        polls = [x["polls"] / max(1, x["searches"]) for x in runs]
        if r["gap"]:
            ok = all(x["outside_exact"] for x in runs)
            exact = ("gap, exit 3; outside it " + ("exact" if ok else "**NOT exact**"))
        else:
            exact = exact_text(runs)
        rexact = exact_text(refs)
        P.append(f"| {r['label']} | {fmt_int(r['count'])} | {r['lower']} "
                 f"| {col(runs, 'searches')} | **{span(ratios, '{:.2f}')}** "
                 f"| {span(per, '{:.1f}')} | {span(polls, '{:.1f}')} "
                 f"| {col(runs, 'logins')} | {exact} "
                 f"| {statistics.median(x['wall'] for x in runs):.1f} s "
                 f"| {col(refs, 'requests')} | {med['searches'] / max(1, rmed['requests']):.2f} "
                 f"| {rexact}, {statistics.median(x['wall'] for x in refs):.1f} s |")
    P.append("")
    scan = [r for r in rows if r["gap"]]
    if scan:
        s = scan[0]
        r0 = s["runs"][0]
        for gs, ge, peer, why, seen in r0["gaps"]:
            P.append(f"The scan (web-1, two days ago): flowfetch exits 3 and names the gap "
                     f"{iso(gs)} to {iso(ge)}, peer {peer}: \"{why}\", {fmt_int(seen)} records seen. "
                     f"SNA searches take whole seconds and a peer, no port: a second in which more "
                     f"than the cap of flows share one peer cannot be split. The truth has "
                     f"{fmt_int(r0['in_gap_truth'])} flows of that peer in that second; the CSV keeps "
                     f"the {fmt_int(r0['in_gap_got'])} seen; every flow outside it (the truth's "
                     f"{fmt_int(s['count'] - r0['in_gap_truth'])}) is there exactly (count, no "
                     f"duplicate, digest), in "
                     f"{sum(x['outside_exact'] for x in s['runs'])} of {len(s['runs'])} runs. The "
                     f"reference dialect splits the same scan by milliseconds and closes it.")
        P.append("")
    P.append(f"The cap not told: db-1, 1 day ({fmt_int(guess['count'])} flows) against a Manager "
             f"capped at {fmt_int(LOW_CAP)}; lower bound ceil(flows / {fmt_int(LOW_CAP)}) = "
             f"{math.ceil(guess['count'] / LOW_CAP)}. Without `--max-records` the driver assumes "
             f"10,000 and treats an answer as large as the largest seen so far as possibly cut. "
             f"{REPEAT} runs of each, alternating:")
    P.append("")
    P.append("| cap | searches | ratio to bound | HTTP requests | exact | wall |")
    P.append("| --- | ---: | ---: | ---: | --- | ---: |")
    lower2k = math.ceil(guess["count"] / LOW_CAP)
    for kind, text in (("told", f"told (`--max-records {LOW_CAP}`)"),
                       ("guessed", "guessed (none given: 10,000 assumed)")):
        g = guess[kind]
        P.append(row([text, col(g, "searches"), span([x["searches"] / lower2k for x in g], "{:.2f}"),
                      col(g, "http"), exact_text(g), f"{statistics.median(x['wall'] for x in g):.1f} s"]))
    told = statistics.median(x["searches"] for x in guess["told"])
    gss = statistics.median(x["searches"] for x in guess["guessed"])
    P.append("")
    P.append(f"A wrong guess costs {gss / told:.2f} x the searches of the told cap (medians), and "
             f"no flow.")
    P.append("")

    P.append("### Cold throughput (b)")
    P.append("")
    ccount = b.sims["ref"].truth("10.0.1.20", heavy_from, heavy_to)[0]
    P.append(f"Query: heavy-1 (10.0.1.20), {iso(heavy_from)} to {iso(heavy_to)} (its busiest two "
             f"hours), {fmt_int(ccount)} flows, CSV output, a fresh cache each run; {COLD_RUNS} rounds, "
             f"each one run against the reference flowsim, one against the SNA flowsim with searches "
             f"done at once (`--sna-query-ms 0`), one with 200 ms; median by wall time of the exact "
             f"runs. flows/s = flows / process wall time.")
    P.append("")
    P.append("| dialect | walls | flows/s (median) | ratio to reference (medians) | ratio per round "
             "| searches (HTTP requests); reference: requests | records decoded | peak RSS (median) |")
    P.append("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    names = (("ref", "reference"), ("sna0", "SNA, searches of 0 ms"), ("sna", "SNA, searches of 200 ms"))
    ref_rate = None
    meds = {}
    for name, text in names:
        every = cold[name]
        runs = [x for x in every if x["complete"]]
        if not runs:
            P.append(f"| {text} | no exact run (see problems) | | | | | | |")
            continue
        rounds = ", ".join(f"{r0['wall'] / x['wall']:.2f}" for r0, x in zip(cold["ref"], every)
                           if r0["complete"] and x["complete"])
        med = meds[name] = median_by(runs, lambda x: x["wall"])
        rate = ccount / med["wall"]
        if name == "ref":
            ref_rate = rate
        m = med["summary"]
        reqs = (f"{med['requests']}" if name == "ref"
                else f"{med['searches']} ({med['http']})")
        P.append(f"| {text} | {walls(runs)} s | {rate:,.0f} "
                 f"| {'1.00 (baseline)' if name == 'ref' else (f'**{rate / ref_rate:.2f}**' if ref_rate else 'n/a')} "
                 f"| {rounds} | {reqs} | {fmt_int(int(m.group(4)))} ({int(m.group(4)) / ccount:.2f} x the flows) "
                 f"| {statistics.median(x['rss'] for x in runs) / 1024:.0f} MiB |")
    P.append("")
    P.append("Stage figures from flowfetch's summary line, median run (decoding is summed over its "
             "decoder threads; storing is one thread):")
    P.append("")
    P.append("| dialect | process wall | fetch stage | decoding | storing | outside the fetch stage |")
    P.append("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, text in names:
        if name not in meds:
            continue
        r = meds[name]
        m = r["summary"]
        w, f, d, s = r["wall"], float(m.group(5)), float(m.group(6)), float(m.group(7))
        P.append(f"| {text} | {w:.2f} s | {f:.2f} s ({f / w:.0%} of wall) | {d:.2f} s ({d / f:.0%} of fetch) "
                 f"| {s:.2f} s ({s / f:.0%} of fetch) | {w - f:.2f} s ({(w - f) / w:.0%} of wall) |")
    P.append("")
    rb, rn = sizes["ref"]
    sb, sn = sizes["sna"]
    P.append(f"Answer sizes: one saturated answer of heavy-1, {iso(size_win[0])} to {iso(size_win[1])}, "
             f"uncompressed (flowfetch does not ask for gzip on loopback):")
    P.append("")
    P.append("| dialect | records | bytes | bytes per record | ratio |")
    P.append("| --- | ---: | ---: | ---: | ---: |")
    P.append(f"| reference (`/api/v1/flows`) | {fmt_int(rn)} | {fmt_int(rb)} | {rb / rn:.0f} | 1.00 |")
    P.append(f"| SNA (`.../queries/{{id}}/results`) | {fmt_int(sn)} | {fmt_int(sb)} | {sb / sn:.0f} "
             f"| **{(sb / sn) / (rb / rn):.2f}** |")
    P.append("")

    P.append("### Session expiry (c)")
    P.append("")
    P.append(f"The same two hours against the 200 ms SNA flowsim, {COLD_RUNS} pairs (which runs first "
             f"alternates): a run without expiries, and a run while a thread calls `POST /_sim/sessions/expire` every "
             f"{EXPIRE_EVERY_S:g} s (every live session gets the HTML 401 from then on; the driver logs "
             f"in again and sends the refused request again); before that run, the sessions of earlier runs are expired "
             f"once, uncounted. Medians; exact as in (a).")
    P.append("")
    P.append("| run | walls | logins | expire calls | sessions expired | HTML 401s | searches (created) "
             "| HTTP requests | exact |")
    P.append("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for kind, text in (("plain", "no expiries (baseline)"), ("expired", f"expired every {EXPIRE_EVERY_S:g} s")):
        runs = exp[kind]
        P.append(row([text, walls(runs) + " s", col(runs, "logins"),
                      span([x["expiries"][0] for x in runs]), span([x["expiries"][1] for x in runs]),
                      col(runs, "expired_401"), f"{col(runs, 'searches')} ({col(runs, 'created')})",
                      col(runs, "http"), exact_text(runs)]))
    wp = statistics.median(x["wall"] for x in exp["plain"])
    we = statistics.median(x["wall"] for x in exp["expired"])
    P.append("")
    pairs = ", ".join(f"{e['wall'] / p['wall']:.2f}" for p, e in zip(exp["plain"], exp["expired"]))
    P.append(f"Wall time with expiries / without: **{we / wp:.2f}** (medians {we:.2f} s / {wp:.2f} s; "
             f"pair by pair {pairs}). Searches count every POST, creates refused with 401 and sent "
             f"again included; created are those answered 201.")
    return finish(P, t_start, b.problems)


if __name__ == "__main__":
    sys.exit(run_bench("sna.py", Bench, report))
