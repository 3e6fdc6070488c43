"""The suite `faults` (issue 5, items 1, 5 and 6): collector faults, hostile
names in both directions, and secrets, against real flowfs mounts and real
flowfetch runs over flowsim, every answer judged by /_sim/truth and every
request counted by /_sim/counters.

The contract is README.md: the errno table of flowfs, flowfetch's exit
statuses (0 complete, 1 error, 2 usage, 3 incomplete), --retries (per
window; 3 x for 429s; Retry-After honoured; 401 never retried), the
simulator's hostile names, the token; and docs/design.md,
"Reliability rules".  Under every fault a query either ends with exactly
the truth or fails with the documented errno / exit status and a message
naming the cause; a read never returns a partial file as complete; every
gap is in query.json.

Faults tried (flowsim's switches, changed at run time by POST /_sim/faults):
500, 503, 429 (Retry-After 1 s, then 0), slow (2.5 s past a 1 s stall
limit; 0.3 s within a 2 s one), stall, reset, cut, malformed, html, 401 (a
token that expired or was revoked, at the start and in the middle of a
query), and their mixture; each at rate 1 (the query must fail, after an
exact number of attempts), at rate 1 from the middle of a query (what was
fetched is kept; nothing else is asked meanwhile), and at a rate (0.2
alone, 0.04 each mixed, with the draws seeded per case: the query must give
the truth, and the retries add up).  Not repeated here, because
test_flowfetch.py and test_flowfs.py prove it already: flowfetch at rate 0.3
of each fault but stall (test_collector_faults), a wrong token at the start
(test_wrong_token, test_bad_token_refused_at_mount), an unreachable or
restarted collector, EFBIG, ENOSPC, and TLS with an untrusted certificate.

Run alone:  meson test -C build --suite faults
       or:  /usr/bin/python3 -m pytest tests/integration/test_faults.py -q
"""

import csv
import errno
import hashlib
import io
import json
import os
import re
import secrets
import shutil
import signal
import sqlite3
import stat
import subprocess
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from conftest import (Lookups, TlsProxy, assert_ids_equal, fetch_cmd,
                      flowfetch, ndjson_rows, output_rows, parse_csv_bytes,
                      run_fetch, sim_args, sqlite_rows, start_fetch, truth_of,
                      url_of)
from mount import (MountError, check_failed_progress, errno_of, module_mount,
                   mounted_at, progress, run, wait_for, watched)

HOUR = 3600 * 1000
DAY = 24 * HOUR

ALL_FAULTS = ["500", "503", "429", "slow", "stall", "reset", "cut",
              "malformed", "html", "401"]
NO_FAULTS = {f: 0 for f in ALL_FAULTS}
# Faults that must never be taken for an answer (a slow answer is one).
FAILING = [f for f in ALL_FAULTS if f != "slow"]

# flowfs's stderr: a failed or incomplete query is logged, by design, each
# line naming its folder's path.
QUERY_LOG = [r"flowfs: /\S+: (failed|ready|gap |and \d+ more gaps)"]


# ---- small helpers ----------------------------------------------------------------

def ms_of(text):
    """'2026-11-28' or '2026-11-28T14:00' (UTC) -> ms since the epoch."""
    fmt = "%Y-%m-%dT%H:%M" if "T" in text else "%Y-%m-%d"
    d = datetime.strptime(text, fmt).replace(tzinfo=timezone.utc)
    return int(d.timestamp()) * 1000


def hm(ms):
    """A range's end in a folder name: '2026-11-28T14:00'."""
    return datetime.fromtimestamp(ms // 1000, timezone.utc).strftime(
        "%Y-%m-%dT%H:%M")


def ms_of_iso(text):
    """query.json's '2026-11-28T10:00:00.000Z' -> ms."""
    d = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=timezone.utc)
    return int(round(d.timestamp() * 1000))


def flows_total(c):
    """Every /api/v1/flows exchange the sim saw (any status, resets and
    stalls too)."""
    return sum(c["endpoints"].get("/api/v1/flows", {}).values())


def flows_status(c, status):
    return c["endpoints"].get("/api/v1/flows", {}).get(status, 0)


def api_requests(c):
    return sum(sum(v.values()) for k, v in c["endpoints"].items()
               if k != "/_sim")


def fault_n(c, *names):
    return sum(c["faults"].get(n, 0) for n in names)


def settled(sim):
    """The counters once every answer the sim started is counted: a slow
    answer counts its 200 when it is finally sent, after the client gave
    up on it."""
    def done():
        c = sim.counters()
        late = fault_n(c, "slow") - (flows_status(c, "200")
                                     - fault_n(c, "cut", "malformed", "html"))
        return c if late <= 0 else None
    c = wait_for(done, 10)
    assert c, f"slow answers still not sent after 10 s: {sim.counters()}"
    return c


def prog(text):
    """.progress as numbers: requests, retries, gaps, done (windows); all 0
    for a folder not yet running (idle or queued: no counters shown)."""
    kv = dict(ln.split(": ", 1) for ln in text.splitlines() if ": " in ln)
    if "windows" not in kv and kv["state"] in ("idle", "queued"):
        kv.update(requests="0", retries="0", gaps="0", windows="0 done of 0 planned")
        kv["records received"] = "0"
    out = {k: int(kv[k]) for k in ("requests", "retries", "gaps", "records received")}
    m = re.match(r"(\d+) done of (\d+) planned", kv["windows"])
    out["done"], out["planned"] = int(m[1]), int(m[2])
    out["state"] = kv["state"]
    return out


def check_sums(d):
    """SHA256SUMS holds the six other files, and their bytes match."""
    lines = (d / "SHA256SUMS").read_text().splitlines()
    assert len(lines) == 6, lines
    for ln in lines:
        h, name = ln.split(None, 1)
        data = (d / name.lstrip("*")).read_bytes()
        assert hashlib.sha256(data).hexdigest() == h, f"{name}: checksum"


def check_folder_truth(sim, d, ip, S, E, peer=None):
    """flows.csv of folder d is exactly the truth, query.json says complete
    without gaps, and the checksums hold.  Returns query.json."""
    rows = parse_csv_bytes((d / "flows.csv").read_bytes())
    assert_ids_equal([r["flowId"] for r in rows],
                     truth_of(sim, ip, S, E, peer), f"{d.name}: ")
    q = json.loads((d / "query.json").read_text())
    assert q["complete"] is True and q["gaps"] == [], (q["complete"],
                                                       q["gaps"])
    assert q["flows"] == len(rows)
    check_sums(d)
    return q


def log_lines(m, folder_name):
    """flowfs.log lines about one folder."""
    text = (m.cache / "flowfs.log").read_text(errors="replace")
    return [ln for ln in text.splitlines() if f"/{folder_name}: " in ln]


def cat(path, timeout=120):
    return run(["cat", str(path)], timeout=timeout)


def fetch_run(sim, tmp, ip, S, E, token_file, out="flows.csv", extra=()):
    """flowfetch over [S, E) into tmp/out with the cache tmp/cache."""
    return flowfetch(url_of(sim), ip, iso(S), iso(E), tmp / out,
                     cache=tmp / "cache", token_file=token_file, extra=extra)


def iso(ms):
    return datetime.fromtimestamp(ms // 1000, timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


def summary_counts(stderr):
    """flowfetch's summary line: (requests, retries)."""
    m = re.search(r"(\d+) requests, (\d+) retries", stderr)
    assert m, f"no summary line: {stderr!r}"
    return int(m[1]), int(m[2])


# ---- fixtures: the token, the collectors, the mounts ---------------------------------

@pytest.fixture(scope="module")
def token():
    """Distinctive, so that a leak cannot hide in other text."""
    return "flowfs-SECRET-" + secrets.token_hex(20)


# The strict collector and clients: one window a query, one retry, one
# request in flight, a stall limit of 1 s; a slow answer takes 2.5 s.
STRICT_RETRIES = 1
RETRY_AFTER_S = 1
STRICT_OPTS = [f"retries={STRICT_RETRIES}", "max_inflight=1",
               "stall_timeout=1"]
STRICT_FF = ["--retries", str(STRICT_RETRIES), "--max-inflight", "1",
             "--stall-timeout", "1"]

# The tolerant ones: 10 retries a window, a stall limit of 2 s; a slow
# answer takes 0.3 s; small answers (100 records), so a query asks often.
TOLERANT_RETRIES = 10
TOLERANT_OPTS = [f"retries={TOLERANT_RETRIES}", "stall_timeout=2"]
TOLERANT_FF = ["--retries", str(TOLERANT_RETRIES), "--stall-timeout", "2"]


@pytest.fixture(scope="module")
def strict(make_module_sim, token_file):
    return make_module_sim(*sim_args(
        token_file, "--max-records", "250", "--slow-ms", "2500",
        "--stall-s", "30", "--retry-after", str(RETRY_AFTER_S)))


@pytest.fixture(scope="module")
def tolerant(make_module_sim, token_file):
    return make_module_sim(*sim_args(
        token_file, "--max-records", "100", "--slow-ms", "300",
        "--stall-s", "30", "--retry-after", "0"))


# Host groups 12 (comma and quotes), 15 (leading '=') and 17 (a newline);
# 500 flows in one millisecond between one pair, at max_records 100: a gap.
HOSTILE_SCENARIO = (
    "steady name=web-1 addr=10.0.1.10 flows=500 peers=198.18.0.0/15 "
    "pool=400 groups=12,15,17\n"
    "steady name=victim-1 addr=10.0.1.40 flows=300 peers=198.18.0.0/15 "
    "pool=200 groups=15,17\n"
    "scan name=s victim=10.0.1.10 attacker=203.0.113.66 day=-1 "
    "at=10:00:00 span=1 flows=500\n"
)
GAP_DAY = "2026-11-28"                  # the scan's day (day=-1)
CSV_DAY = "2026-11-27"


@pytest.fixture(scope="module")
def hostile(make_module_sim, token_file, tmp_path_factory):
    scn = tmp_path_factory.mktemp("scenario") / "hostile.scn"
    scn.write_text(HOSTILE_SCENARIO)
    return make_module_sim(*sim_args(token_file, "--max-records", "100",
                                     "--scenario", str(scn)))


@pytest.fixture(scope="module")
def strict_mount(tmp_path_factory, strict, token_file):
    yield from module_mount(tmp_path_factory, url_of(strict), token_file,
                            STRICT_OPTS, QUERY_LOG)


@pytest.fixture(scope="module")
def tolerant_mount(tmp_path_factory, tolerant, token_file):
    yield from module_mount(tmp_path_factory, url_of(tolerant), token_file,
                            TOLERANT_OPTS, QUERY_LOG)


@pytest.fixture(scope="module")
def hostile_mount(tmp_path_factory, hostile, token_file):
    yield from module_mount(tmp_path_factory, url_of(hostile), token_file,
                            (), QUERY_LOG)


@pytest.fixture(autouse=True)
def _watch_mounts(request):
    """After each test, the module's mounts it used are alive, and their
    stderr holds no new error line but the logged queries."""
    names = ("strict_mount", "tolerant_mount", "hostile_mount")
    checks = [watched(request.getfixturevalue(n), QUERY_LOG)
              for n in names if n in request.fixturenames]
    for c in checks:
        next(c)
    yield
    for c in checks:
        next(c, None)


@pytest.fixture
def faults_off(strict, tolerant):
    """Whatever a test switched on is switched off after it."""
    yield
    for s in (strict, tolerant):
        if s.alive():
            s.set_faults(**NO_FAULTS)


# ---- 1. every fault at rate 1: the documented failure, with exact attempts ----------

# fault -> (errno of the mount, what the message says, retries a window
# gets: --retries x this)
STRICT = {
    "500": (errno.EIO, r"HTTP 500", 1),
    "503": (errno.EIO, r"HTTP 503", 1),
    "429": (errno.EIO, r"HTTP 429", 3),
    "slow": (errno.ETIMEDOUT, r"timed out", 1),
    "stall": (errno.ETIMEDOUT, r"timed out", 1),
    "reset": (errno.EIO, r"reset", 1),
    "cut": (errno.EIO, r"closed|cut|remaining", 1),
    "malformed": (errno.EIO, r"not JSON", 1),
    "html": (errno.EIO, r"not JSON.*html", 1),
    "401": (errno.EACCES, r"token.*401|401.*token", 0),
}


def strict_range(fault):
    """victim-1 for one hour of 2026-11-26 (about 80 flows: one window), an
    hour of its own for each fault."""
    S = ms_of("2026-11-26") + list(STRICT).index(fault) * HOUR
    return "10.0.1.40", S, S + HOUR


def check_attempts(sim, fault):
    """Exactly 1 + retries attempts of the one window, each one faulted."""
    _, _, k = STRICT[fault]
    want = 1 + STRICT_RETRIES * k
    c = settled(sim)
    assert fault_n(c, fault) == want and flows_total(c) == want, \
        (f"{fault}: want {want} attempts of the one window, the collector "
         f"saw {flows_total(c)} ({fault_n(c, fault)} faulted): {c}")
    return want


@pytest.mark.parametrize("fault", list(STRICT))
def test_fault_always_mount_fails_with_errno(strict, strict_mount, faults_off,
                                             fault):
    """cat fails with the errno of README's table; .progress and the log
    name the cause; the window was asked exactly 1 + retries times (3 x
    retries for 429, each after Retry-After; 401 never again).  With the
    fault gone, the same folder gives exactly the truth: nothing fetched
    under the fault was kept as an answer."""
    want_errno, cause, _ = STRICT[fault]
    ip, S, E = strict_range(fault)
    d = strict_mount.path(ip, f"{hm(S)}--{hm(E)}")
    strict.reset_counters()
    strict.set_faults(**{fault: 1})
    t0 = time.monotonic()
    r = cat(d / "flows.csv")
    took = time.monotonic() - t0
    strict.set_faults(**{fault: 0})
    assert r.returncode != 0 and r.stdout == b"", \
        f"{fault}: cat succeeded or printed something: {r.stdout[:200]!r}"
    assert os.strerror(want_errno).encode() in r.stderr, \
        f"{fault}: want {errno.errorcode[want_errno]}: {r.stderr!r}"
    attempts = check_attempts(strict, fault)
    text = check_failed_progress(d, cause)
    p = prog(text)
    assert (p["requests"], p["retries"]) == (attempts, attempts - 1), text
    logged = log_lines(strict_mount, d.name)
    assert any(re.search(cause, ln, re.I) for ln in logged), \
        f"flowfs.log does not name the cause /{cause}/: {logged}"
    if fault == "429":
        assert took >= (attempts - 1) * RETRY_AFTER_S, \
            f"Retry-After {RETRY_AFTER_S} s not honoured: {took:.2f} s " \
            f"for {attempts} attempts"

    strict.reset_counters()
    check_folder_truth(strict, d, ip, S, E)
    assert flows_total(strict.counters()) >= 1, "the folder was not asked again"
    assert "state: ready" in progress(d)[0]


@pytest.mark.parametrize("fault", list(STRICT))
def test_fault_always_flowfetch_fails_with_status_1(strict, token,
                                                    token_file, tmp_path,
                                                    faults_off, fault):
    """flowfetch: exit 1, one line on stderr naming the cause (never the
    token), no output file, not even a partial one; exactly 1 + retries
    attempts.  (That it gives the truth after a failure, from what it
    kept, is test_failure_half_way_then_resume's.)"""
    _, cause, _ = STRICT[fault]
    ip, S, E = strict_range(fault)
    strict.reset_counters()
    strict.set_faults(**{fault: 1})
    f = fetch_run(strict, tmp_path, ip, S, E, token_file, extra=STRICT_FF)
    strict.set_faults(**{fault: 0})
    assert f.rc == 1, f.describe()
    lines = f.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("flowfetch:"), f.describe()
    assert re.search(cause, lines[0], re.I), \
        f"the message does not name the cause /{cause}/: {lines[0]}"
    assert token not in f.stderr
    assert f.stdout == b""
    assert not list(tmp_path.glob("flows*")), list(tmp_path.glob("flows*"))
    check_attempts(strict, fault)


# ---- 1. faults at rates: exactly the truth, retries accounted for --------------------

def mixture(names, rate):
    return {n: rate for n in names}


# case -> the rates; a seed of the fault draws is set per case, so each run
# sees the same sequence of faulted and clean answers
TOLERANT = {f: {f: 0.2} for f in ALL_FAULTS if f != "401"}
TOLERANT["mixture"] = mixture([f for f in ALL_FAULTS if f != "401"], 0.04)


def tolerant_range(case):
    """A range of its own per case, of 15 to 30 windows of 100: web-1 for
    six hours, 2026-11-23 on (away from the scan's 30,000 flows on the
    afternoon of 2026-11-27)."""
    S = ms_of("2026-11-23") + list(TOLERANT).index(case) * 6 * HOUR
    return "10.0.1.10", S, S + 6 * HOUR


def check_accounting(c, rates, requests, retries, done, what):
    """The client's count of requests and retries against the
    collector's: every request seen, every fault retried, no window retried
    past its bound.  One thing the client cannot count: libcurl resends, by
    itself and once, a request whose kept-alive connection was reset before
    any answer (it cannot tell that from a connection the server had
    closed while idle); so the collector may see up to one more request a
    reset."""
    served = fault_n(c, *rates)
    assert served > 0, f"{what}: no fault was served ({c['faults']}): " \
                       f"this run proves nothing"
    failed = fault_n(c, *[f for f in rates if f in FAILING])
    resent = flows_total(c) - requests
    assert 0 <= resent <= fault_n(c, "reset"), \
        f"{what}: the client counts {requests} requests, the collector " \
        f"{flows_total(c)} ({fault_n(c, 'reset')} resets)"
    assert requests == done + retries, (requests, done, retries)
    if {"slow", "stall"} & set(rates):
        # a clean answer slower than the stall limit is retried too
        assert retries + resent >= failed, (retries, resent, failed, c)
    else:
        assert retries + resent == failed, \
            f"{what}: {retries} retries (+{resent} by libcurl) for " \
            f"{failed} failed answers: {c}"
    bound = TOLERANT_RETRIES * (3 if "429" in rates else 1)
    assert retries <= bound * done, (retries, done)


@pytest.mark.parametrize("case", list(TOLERANT))
def test_faults_at_a_rate_mount_gives_the_truth(tolerant, tolerant_mount,
                                                faults_off, case):
    ip, S, E = tolerant_range(case)
    d = tolerant_mount.path(ip, f"{hm(S)}--{hm(E)}")
    rates = TOLERANT[case]
    seed = 1 + list(TOLERANT).index(case)
    tolerant.reset_counters()
    tolerant.set_faults(seed=seed, **rates)
    r = cat(d / "flows.csv")
    tolerant.set_faults(**NO_FAULTS)
    assert r.returncode == 0, \
        f"{case} [fault seed {seed}]: {r.stderr!r}\n{progress(d)[0]}"
    c = settled(tolerant)
    check_folder_truth(tolerant, d, ip, S, E)
    p = prog(progress(d)[0])
    assert p["state"] == "ready"
    check_accounting(c, rates, p["requests"], p["retries"], p["done"],
                     f"mount, {case} [fault seed {seed}]")
    q = json.loads((d / "query.json").read_text())
    assert (q["fetch"]["requests"], q["fetch"]["retries"]) == \
        (p["requests"], p["retries"]), q["fetch"]


@pytest.mark.parametrize("case", ["mixture"])
def test_faults_at_a_rate_flowfetch_gives_the_truth(tolerant, token_file,
                                                    tmp_path, faults_off,
                                                    case):
    """test_flowfetch.py's test_collector_faults covers each fault alone
    (test_stall_fails the stall); here their mixture with stalls, and the
    summary line's counts against the collector's."""
    ip, S, E = tolerant_range(case)
    rates = TOLERANT[case]
    seed = 101 + list(TOLERANT).index(case)
    tolerant.reset_counters()
    tolerant.set_faults(seed=seed, **rates)
    f = fetch_run(tolerant, tmp_path, ip, S, E, token_file,
                  extra=TOLERANT_FF)
    tolerant.set_faults(**NO_FAULTS)
    assert f.rc == 0, f"[fault seed {seed}]\n{f.describe()}"
    c = settled(tolerant)
    assert_ids_equal([r["flowId"] for r in output_rows(f)],
                     truth_of(tolerant, ip, S, E))
    requests, retries = summary_counts(f.stderr)
    check_accounting(c, rates, requests, retries, requests - retries,
                     f"flowfetch, {case} [fault seed {seed}]")


ALL_MIXTURE = mixture(ALL_FAULTS, 0.04)


@pytest.mark.parametrize("front", ["mount", "flowfetch"])
def test_mixture_with_expired_token(tolerant, tolerant_mount, token_file,
                                    tmp_path, faults_off, front):
    """Every fault at once, a token that expires now and then among them:
    a 401 ends the query at once (EACCES, exit 1, the token named as the
    cause, no 401 retried: at most one a request in flight); without one,
    the truth.  Either way the next try without faults gives the truth."""
    ip, S = "10.0.1.10", ms_of("2026-11-28")
    E = S + 12 * HOUR
    d = tolerant_mount.path(ip, f"{hm(S)}--{hm(E)}")
    tolerant.reset_counters()
    tolerant.set_faults(seed=7, **ALL_MIXTURE)
    if front == "mount":
        r = cat(d / "flows.csv")
        ok, message = r.returncode == 0, r.stderr.decode()
    else:
        f = fetch_run(tolerant, tmp_path, ip, S, E, token_file,
                      extra=TOLERANT_FF)
        ok, message = f.rc == 0, f.stderr
    tolerant.set_faults(**NO_FAULTS)
    c = settled(tolerant)
    if fault_n(c, "401"):
        assert not ok, f"a 401 was answered, yet {front} succeeded"
        assert fault_n(c, "401") <= 4, f"a 401 was retried: {c}"
        if front == "mount":
            assert os.strerror(errno.EACCES) in message, message
            check_failed_progress(d, r"token")
        else:
            assert f.rc == 1 and re.search(r"token", f.stderr), f.describe()
    else:
        assert ok, f"{front} failed without a 401: {message}"
    if front == "mount":
        check_folder_truth(tolerant, d, ip, S, E)
    else:
        f = fetch_run(tolerant, tmp_path, ip, S, E, token_file).ok()
        assert_ids_equal([r["flowId"] for r in output_rows(f)],
                         truth_of(tolerant, ip, S, E))


# ---- 1. a query that fails half way: what it got is kept, never served as whole -----

ANSWERS = 12


def wait_windows(pred, what, timeout=30):
    assert wait_for(pred, timeout, 0.02), f"{what} within {timeout} s"


@pytest.mark.parametrize("front,fault", [
    ("mount", "500"), ("mount", "429"), ("flowfetch", "401")])
def test_failure_half_way_then_resume(make_sim, mounts, token_file, tmp_path,
                                      front, fault):
    """Answers come slowly (0.1 s), one at a time; after twelve of them
    (the first ones are samples that place the windows) the collector fails
    every request.  The window then asked is asked exactly
    1 + retries times (3 x for 429s, 401 once) and nothing else meanwhile:
    a backoff or a Retry-After holds the whole query, not only that window
    (it did not: 26 requests went out in the backoff of one window).  The
    query fails as documented and serves nothing; with the collector well
    again, the next try gives exactly the truth and keeps the windows
    fetched before the failure."""
    want_errno, cause, k = STRICT[fault]
    attempts = 1 + k
    sim = make_sim(*sim_args(token_file, "--max-records", "100",
                             "--slow-ms", "100", "--slow", "1",
                             "--retry-after", str(RETRY_AFTER_S)))
    ip, S = "10.0.1.10", ms_of("2026-11-26T12:00")
    E = S + 6 * HOUR
    if front == "mount":
        m = mounts(url=url_of(sim), opts=["retries=1", "max_inflight=1",
                                          "stall_timeout=5"])
        mounts.allow(*QUERY_LOG)
        d = m.path(ip, f"{hm(S)}--{hm(E)}")
        box = {}
        th = threading.Thread(
            target=lambda: box.update(r=cat(d / "flows.csv")))
        th.start()
        wait_windows(lambda: prog(progress(d)[0])["done"] >= ANSWERS,
                     f"{ANSWERS} answers")
        t_fail = time.time()
        sim.set_faults(slow=0, **{fault: 1})
        th.join(60)
        r = box["r"]
        assert r.returncode != 0 and r.stdout == b"", r.stderr
        assert os.strerror(want_errno).encode() in r.stderr, r.stderr
        check_failed_progress(d, cause)
    else:
        cmd = fetch_cmd(url_of(sim), ip, iso(S), iso(E),
                        tmp_path / "flows.sqlite", cache=tmp_path / "cache",
                        token_file=token_file,
                        extra=["--retries", "1", "--max-inflight", "1"])
        p = start_fetch(cmd, tmp_path, stdout=subprocess.PIPE)
        try:
            wait_windows(lambda: flows_status(sim.counters(), "200")
                         >= ANSWERS, f"{ANSWERS} answers")
            t_fail = time.time()
            sim.set_faults(slow=0, **{fault: 1})
            _, err = p.communicate(timeout=60)
        finally:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
        err = err.decode()
        assert p.returncode == 1, err
        assert re.search(cause, err, re.I) and len(err.splitlines()) == 1, err
        assert not list(tmp_path.glob("flows*")), "output after a failure"
    c = settled(sim)
    assert fault_n(c, fault) == attempts == flows_total(c) - flows_status(
        c, "200"), f"want {attempts} attempts of one window, nothing else: {c}"
    sim.set_faults(**{fault: 0})
    sim.reset_counters()
    if front == "mount":
        coverage = check_folder_truth(sim, d, ip, S, E)["coverage"]
    else:
        f = run_fetch(cmd, tmp_path).ok()
        assert_ids_equal([r["flowId"] for r in output_rows(f)],
                         truth_of(sim, ip, S, E))
        con = sqlite3.connect(f"file:{f.out}?immutable=1", uri=True)
        coverage = [{"fetched": ft} for (ft,) in
                    con.execute("select fetched_ms from coverage")]
        con.close()
    # (how many of the first answers were samples, not windows kept as
    # covered, depends on the random subsets the collector answers)
    before = [x for x in coverage
              if parse_fetched(x["fetched"]) < t_fail * 1000]
    assert before, \
        f"no window fetched before the failure was kept: {coverage}"


def parse_fetched(v):
    """A coverage row's fetch time: ISO text (query.json) or whatever
    flows.sqlite holds (ms, or ISO text)."""
    if isinstance(v, (int, float)):
        return v
    return ms_of_iso(v)


# ---- 1. gaps: always in query.json, flows.sqlite, summary.txt ---------------------------

GAP_FAULTS = mixture(["500", "503", "429", "reset", "cut", "malformed",
                      "html"], 0.05)


def check_gaps_cover_missing(sim, ids, gaps, ip, S, E):
    """Every flow of the truth that is not in ids starts inside one of
    the gaps [(start_ms, end_ms)]; ids hold no duplicate and nothing
    outside the truth."""
    t = truth_of(sim, ip, S, E, records=True)
    assert len(ids) == len(set(ids)), "duplicate flowIds"
    assert set(ids) <= set(t["ids"]), "rows that are not in the truth"
    missing = [r for r in t["records"] if r["id"] not in set(ids)]
    assert missing, "nothing is missing: no gap to judge (precondition)"
    outside = [r for r in missing
               if not any(a <= r["start"] < b for a, b in gaps)]
    assert not outside, \
        (f"{len(outside)} missing flows lie in no reported gap, e.g. "
         f"{outside[:2]}; gaps {gaps}")


@pytest.mark.parametrize("with_faults", [False, True],
                         ids=["clean", "faults"])
def test_gap_never_hidden_mount(hostile, mounts, faults_off, with_faults):
    """A millisecond with 500 flows between one pair, max_records 100: the
    folder is served (it is evidence), flows.csv holds what could be had,
    and every flow it lacks lies in a gap listed in query.json, the gaps
    table of flows.sqlite, summary.txt, .progress and the log; also while
    the collector answers every other fault now and then."""
    m = mounts(url=url_of(hostile), opts=TOLERANT_OPTS)
    mounts.allow(*QUERY_LOG)
    d = m.path("10.0.1.10", GAP_DAY)
    S = ms_of(GAP_DAY)
    hostile.reset_counters()
    if with_faults:
        hostile.set_faults(seed=11, **GAP_FAULTS)
    r = cat(d / "flows.csv")
    hostile.set_faults(**NO_FAULTS)
    assert r.returncode == 0, r.stderr
    if with_faults:
        assert fault_n(hostile.counters(), *GAP_FAULTS) > 0
    rows = parse_csv_bytes(r.stdout)
    q = json.loads((d / "query.json").read_text())
    assert q["complete"] is False and q["gaps"], q["gaps"]
    gaps = [(ms_of_iso(g["start"]), ms_of_iso(g["end"])) for g in q["gaps"]]
    check_gaps_cover_missing(hostile, [x["flowId"] for x in rows], gaps,
                             "10.0.1.10", S, S + DAY)
    assert q["flows"] == len(rows)
    con = sqlite3.connect(f"file:{d / 'flows.sqlite'}?immutable=1", uri=True)
    try:
        table = sorted(con.execute("select start_ms, end_ms from gaps"))
    finally:
        con.close()
    assert table == sorted(gaps), f"flows.sqlite gaps {table}, query.json {gaps}"
    summary = (d / "summary.txt").read_text()
    for g in q["gaps"]:
        assert g["start"] in summary, f"summary.txt omits the gap {g}"
    assert prog(progress(d)[0])["gaps"] == len(gaps)
    logged = log_lines(m, d.name)
    assert any(re.search(rf": ready: .* gaps {len(gaps)} \(", ln) for ln in logged), logged
    for g in q["gaps"][:20]:
        assert any(f"gap {g['start']}" in ln for ln in logged), \
            f"the log does not name the gap {g}: {logged}"
    check_sums(d)


def test_gap_never_hidden_flowfetch(hostile, token_file, tmp_path,
                                    faults_off):
    """flowfetch under faults: exit 3, each gap named on stderr, and every
    flow missing from the output lies in a gap of the gaps table
    (test_gap_exit_3 proves exit 3 and a gaps row without faults)."""
    S = ms_of(GAP_DAY)
    hostile.set_faults(seed=12, **GAP_FAULTS)
    f = fetch_run(hostile, tmp_path, "10.0.1.10", S, S + DAY, token_file,
                  out="gap.sqlite", extra=TOLERANT_FF)
    hostile.set_faults(**NO_FAULTS)
    assert f.rc == 3, f.describe()
    con = sqlite3.connect(f"file:{f.out}?immutable=1", uri=True)
    try:
        gaps = sorted(con.execute("select start_ms, end_ms from gaps"))
    finally:
        con.close()
    assert gaps
    for a, _ in gaps:
        assert iso(a)[:19] in f.stderr or str(a) in f.stderr, \
            f"the gap at {iso(a)} is not named: {f.stderr}"
    check_gaps_cover_missing(hostile, [x["flowId"] for x in output_rows(f)],
                             gaps, "10.0.1.10", S, S + DAY)


# ---- 5. hostile path names: ENOENT or ENAMETOOLONG, no request, no crash ---------------

SUBJECTS = [
    # addresses
    "10.0.1", "10.0.1.256", "10.0.1.11.", ".10.0.1.11", "010.0.1.11",
    "10.0.1.011", "0x0a.0.1.11", "0x0a000111", "167772427", "10.1",
    "10.0.1.11 ", " 10.0.1.11", "10.0.1.-1", "10.0.1.1e1", "localhost",
    "example.org", "*", "?", "10.0.1.*", "$(id)", "`id`", "'10.0.1.11'",
    '"10.0.1.11"', "10.0.1.11\\", "10.0.1.11%00", "10.0.1.11%2F24",
    "fe80::1%eth0", "[2001:db8::1]", "2001:db8:::1", "2001:db8::g",
    "1:2:3:4:5:6:7:8:9", "::ffff:10.0.1.256", "-", "..."
    # control characters, DEL, bytes that are no UTF-8, look-alike digits
    , "10.0.1.11\t", "10.0.1.11\n", "\n", "\t", "\r", "\x01", "\x1b[2J",
    "10.0.1.11\x01", "\x0110.0.1.11", "10.0.1.11\x7f", "\x7f",
    b"10.0.1.11\xff", b"\xff\xfe", b"10.0.1.\xc0\xb1\xc0\xb1",
    "\uff11\uff10.\uff10.\uff11.\uff11\uff11",      # fullwidth digits
    "\u0661\u0660.\u0660.\u0661.\u0661\u0661",      # Arabic-Indic digits
    "10\uff0e0\uff0e1\uff0e11",                     # fullwidth full stops
    "10.0.1.11\u200b", "\u202e10.0.1.11",           # zero width, RTL override
    # pairs
    "10.0.1.11+", "+10.0.1.11", "10.0.1.11++203.0.113.66",
    "10.0.1.11+203.0.113.66+1.2.3.4", "10.0.1.11+2001:db8::1",
    "10.0.1.11 +203.0.113.66", "10.0.1.11+203.0.113.66\n",
    # prefix lengths
    "10.0.1.0_33", "2001:db8::_129", "10.0.1.0_-1", "10.0.1.0_+24",
    "10.0.1.0_ 24", "10.0.1.0_24 ", "10.0.1.0_", "_24", "10.0.1.0__24",
    "10.0.1.0_24_", "10.0.1.0_2.4", "10.0.1.0_0x18", "10.0.1.0_0024",
    "10.0.1.0_1e1", "10.0.1.11_24", "10.0.1.0_999", "10.0.1.0_4294967320",
    "10.0.1.0_\u0662\u0664", "10.0.0.0_08\n",
]

DATES = [
    "2023-02-29", "2026-02-29", "2023-13-01", "2026-13-01", "2026-00-10",
    "2026-11-00", "2026-11-31", "2026-09-31", "2026-11-32", "99999-01-01",
    "2023-1-1", "2026-1-1", "02026-11-27", "2026-011-27",
    "2026_11_27", "20261127", "2026-11-27Z", "2026-11-27T00:00",
    "2026-11-27 ", " 2026-11-27", "2026-11-27\n", "2026-11-27\t",
    "2026-11-2\uff17", "\uff12\uff10\uff12\uff16-11-27",
    "2026\u201011\u201027", "2026\u221211\u221227", "-2026-11-27",
    "+2026-11-27", "2026-11-27x", "2026-11--27", "1969-12-31",
    "0000-01-01", "9999-12-31", "2026-11-30", "2027-01-01",
    "2026-08-30", "1970-01-01", b"2026-11-27\xff",
]

# 2026-11-1 (the 1st), a range with milliseconds and a space for the T are
# not here: their meaning is certain, so they are taken since issue 13 (item
# 1) and shown canonically (test_flowfs: test_lenient_day_is_the_canonical_
# folder, test_range_with_milliseconds; test_path: test_lenient_spellings).
# 2023-1-1 and 2026-1-1 are refused as before the retention.
RANGES = [
    "2026-11-28T15:00--2026-11-28T14:00",       # ends before it starts
    "2026-11-28T14:00--2026-11-28T14:00",       # empty
    "2026-01-01T00:00--2026-11-28T00:00",       # longer than the retention
    "2026-08-30T23:59--2026-11-28T00:00",       # starts a minute before it
    "2026-11-28T00:00--2099-01-01T00:00",       # to the far future
    "2026-11-29T10:00--2026-11-30T00:01",       # past the end of today
    "2026-11-29T13:00--2026-11-29T14:00",       # starts after now
    "2026-11-28T24:00--2026-11-29T00:00", "2026-11-28T14:60--2026-11-28T15:00",
    "2026-11-28T14:00:60--2026-11-28T15:00",
    "2026-11-28T14:00-2026-11-28T15:00", "2026-11-28T14:00---2026-11-28T15:00",
    "2026-11-28T14:00----2026-11-28T15:00", "2026-11-28--2026-11-29",
    "2026-11-28T14:00--", "--2026-11-28T15:00", "--",
    "2026-11-28T14:00Z--2026-11-28T15:00Z",
    "2026-11-28T14:00+01:00--2026-11-28T15:00",
    "2026-11-28T14--2026-11-28T15", "2026-11-28t14:00--2026-11-28t15:00",
    "2026-11-28T14:00--2026-11-28T15:00--2026-11-28T16:00",
    "2026-11-28T14:00\n--2026-11-28T15:00",
    "2026-11-28T14:00\u2014\u20142026-11-28T15:00",  # em dashes
]

FILES_BAD = ["flows.CSV", "flows.csv ", "flows.csv\n", "flows", "flows.csv.gz",
             ".progress ", "progress", "..progress", "SHA256SUMS.txt",
             "query.json~", "flows.csv\x7f", "FLOWS.CSV", b"flows.csv\xff"]

# (name, errno): the lengths are bytes; NAME_MAX is 255
LONG = [
    ("a" * 255, errno.ENOENT), ("a" * 256, errno.ENAMETOOLONG),
    ("1" * 1024, errno.ENAMETOOLONG), ("1" * 1025, errno.ENAMETOOLONG),
    ("\u00e9" * 127 + "a", errno.ENOENT), ("\u00e9" * 128, errno.ENAMETOOLONG),
    ("\u20ac" * 85, errno.ENOENT), ("\u20ac" * 86, errno.ENAMETOOLONG),
    ("10.0.1.11" + "0" * 246, errno.ENOENT),
    ("10.0.1.11" + "0" * 247, errno.ENAMETOOLONG),
    ("10.0.1.11/" + "2" * 256, errno.ENAMETOOLONG),
    ("10.0.1.11/2026-11-27T00:00--" + "9" * 237, errno.ENOENT),
    ("10.0.1.11/2026-11-27T00:00--" + "9" * 238, errno.ENAMETOOLONG),
    ("10.0.1.11/2026-11-27/" + "f" * 300, errno.ENAMETOOLONG),
]


def bpath(*parts):
    return b"/".join(p if isinstance(p, bytes) else os.fsencode(p)
                     for p in parts)


def wrong_errnos(paths, want, ops):
    """[(path, op, errno name)] where an op did not fail with want."""
    wrong = []
    for p in paths:
        for name, op in ops:
            e = errno_of(op, p)
            if e != want:
                wrong.append((p[-60:], name, errno.errorcode.get(e, e)))
    return wrong


DIR_OPS = [("stat", os.stat), ("listdir", os.listdir),
           ("stat below", lambda p: os.stat(p + b"/flows.csv"))]
FILE_OPS = [("stat", os.stat), ("open", lambda p: open(p, "rb").close())]


def check_no_request(sim, m, what):
    c = sim.counters()
    assert api_requests(c) == 0, f"{what} sent requests: {c['endpoints']}"
    assert m.alive(), f"flowfs died on {what}"
    r = run(["ls", str(m.mnt)])
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("level", ["subject", "date", "range", "file"])
def test_bad_names_enoent_no_request(strict, strict_mount, level):
    """Extends test_flowfs.py's test_bad_names_enoent_without_request:
    every malformed address, pair, prefix length, date, range and file
    name, control characters and bytes that are no UTF-8 at each level:
    stat, listdir and open fail with ENOENT, the collector hears nothing,
    flowfs lives on."""
    root = bytes(strict_mount.mnt)
    strict.reset_counters()
    if level == "subject":
        paths, ops = [bpath(root, n) for n in SUBJECTS], DIR_OPS
    elif level == "date":
        paths, ops = [bpath(root, "10.0.1.11", n) for n in DATES], DIR_OPS
    elif level == "range":
        paths, ops = [bpath(root, "10.0.1.11", n) for n in RANGES], DIR_OPS
    else:
        paths = [bpath(root, "10.0.1.11", "2026-11-27", n) for n in FILES_BAD]
        ops = FILE_OPS
    wrong = wrong_errnos(paths, errno.ENOENT, ops)
    assert not wrong, f"names with the wrong errno: {wrong}"
    check_no_request(strict, strict_mount, f"bad {level} names")


def test_long_names_enametoolong_no_request(strict, strict_mount):
    root = bytes(strict_mount.mnt)
    strict.reset_counters()
    wrong = []
    for name, want in LONG:
        wrong += wrong_errnos([bpath(root, name)], want, FILE_OPS)
    assert not wrong, f"long names with the wrong errno: {wrong}"
    check_no_request(strict, strict_mount, "long names")


def test_valid_spellings_meet_without_request(strict, strict_mount):
    """What is not hostile though it looks odd: a prefix length with a
    leading zero, an IPv4-mapped IPv6 address, upper-case IPv6, a range
    longer than a collector's 31-day window (the engine splits it) reach
    the canonical folder; stating them asks nothing."""
    strict.reset_counters()
    same = [("10.0.0.0_08", "10.0.0.0_8"), ("::ffff:10.0.1.11", "10.0.1.11"),
            ("2001:DB8::_32", "2001:db8::_32"),
            ("10.0.1.11_32", "10.0.1.11")]
    for a, b in same:
        ia, ib = (os.stat(strict_mount.path(x)).st_ino for x in (a, b))
        assert ia == ib, f"{a} and {b} are different folders"
    st = os.stat(strict_mount.path("10.0.1.11",
                                 "2026-09-01T00:00--2026-11-29T23:59"))
    assert stat.S_ISDIR(st.st_mode)
    check_no_request(strict, strict_mount, "odd spellings")


# ---- 5. hostile names in the data: RFC 4180, round trips -----------------------------

QUOTED = re.compile(rb'"(?:[^"]|"")*"')
BARE = re.compile(rb'[^",\r\n]*')


def rfc4180(data):
    """Parse CSV bytes by RFC 4180's grammar, strictly (records end in LF or
    CRLF, one kind throughout; a field with a comma, quote or line break is
    quoted, quotes doubled): the records as lists of str.  Fails on
    anything else, with the offset."""
    eol = b"\r\n" if b"\r\n" in data.split(b"\n", 1)[0] + b"\n" else b"\n"
    out, rec, i = [], [], 0
    while i < len(data):
        m = QUOTED.match(data, i) if data[i:i + 1] == b'"' else BARE.match(
            data, i)
        field = m.group(0)
        if field.startswith(b'"'):
            field = field[1:-1].replace(b'""', b'"')
        rec.append(field.decode("utf-8"))
        i = m.end()
        if data.startswith(b",", i):
            i += 1
            continue
        assert data.startswith(eol, i), \
            f"not RFC 4180 at byte {i}: {data[max(0, i - 40):i + 40]!r}"
        out.append(rec)
        rec = []
        i += len(eol)
    assert not rec, "the last record does not end with a line break"
    widths = {len(r) for r in out}
    assert len(widths) == 1, f"records of {widths} fields"
    return out


def check_csv(data, what):
    """RFC 4180, and the same records through Python's csv module."""
    mine = rfc4180(data)
    theirs = list(csv.reader(io.StringIO(data.decode("utf-8"), newline=""),
                             strict=True))
    assert mine == theirs, f"{what}: the csv module reads it otherwise"
    return mine


def names_of(lk, r):
    """What the names columns must hold for truth record r, raw."""
    a = r.get("app", 0)
    return {
        "srcGroups": ";".join(lk.groups.get(g, str(g))
                              for g in r.get("src_groups", [])),
        "dstGroups": ";".join(lk.groups.get(g, str(g))
                              for g in r.get("dst_groups", [])),
        "app": "" if not a else lk.apps.get(a, str(a)),
    }


def check_names(rows, truth, lk, what):
    """Every row's names equal the collector's, byte for byte; the hostile
    ones (comma and quotes, leading '=', newline) are there to be judged."""
    by_id = {r["id"]: r for r in truth["records"]}
    assert_ids_equal([x["flowId"] for x in rows], truth, what)
    bad = []
    seen = {"newline": 0, "quote": 0, "comma": 0, "equals": 0}
    for x in rows:
        want = names_of(lk, by_id[x["flowId"]])
        for k, v in want.items():
            if x[k] != v:
                bad.append((x["flowId"], k, x[k], v))
            seen["newline"] += "\n" in v
            seen["quote"] += '"' in v
            seen["comma"] += "," in v
            seen["equals"] += any(n.startswith("=") for n in v.split(";"))
    assert not bad, f"{what}: names differ from the collector's: {bad[:5]}"
    assert all(seen.values()), f"{what}: hostile names missing: {seen}"


CSV_FOLDERS = [("10.0.1.10", CSV_DAY), ("10.0.1.40", CSV_DAY)]


@pytest.mark.parametrize("ip,day", CSV_FOLDERS)
def test_hostile_names_round_trip_mount(hostile, hostile_mount, token, ip, day):
    """flows.csv is RFC 4180 and gives back the collector's names exactly
    (commas, quotes, a newline, a leading '='), and so do flows.ndjson and
    flows.sqlite."""
    lk = Lookups(hostile, token)
    S = ms_of(day)
    t = truth_of(hostile, ip, S, S + DAY, records=True)
    d = hostile_mount.path(ip, day)
    data = (d / "flows.csv").read_bytes()
    recs = check_csv(data, "flows.csv")
    rows = [dict(zip(recs[0], r)) for r in recs[1:]]
    assert rows == parse_csv_bytes(data)
    check_names(rows, t, lk, "flows.csv")
    check_names(ndjson_rows(d / "flows.ndjson"), t, lk, "flows.ndjson")
    check_names(sqlite_rows(d / "flows.sqlite"), t, lk, "flows.sqlite")


def test_hostile_names_round_trip_flowfetch(hostile, token, token_file,
                                            tmp_path):
    lk = Lookups(hostile, token)
    ip, S = "10.0.1.40", ms_of(CSV_DAY)
    t = truth_of(hostile, ip, S, S + DAY, records=True)
    f = fetch_run(hostile, tmp_path, ip, S, S + DAY, token_file).ok()
    recs = check_csv(f.out.read_bytes(), "flowfetch's CSV")
    check_names([dict(zip(recs[0], r)) for r in recs[1:]], t, lk,
                "flowfetch's CSV")
    f = fetch_run(hostile, tmp_path, ip, S, S + DAY, token_file,
                  out="flows.ndjson").ok()
    check_names(output_rows(f), t, lk, "flowfetch's NDJSON")


def test_collector_tables_rfc4180(hostile, hostile_mount, token):
    """/collector/*.csv: RFC 4180, and every name exactly the API's (also
    the application with a leading '=' that no flow uses)."""
    api = {
        "hostgroups.csv": {(str(g["id"]), g["name"]) for g in hostile.get_json(
            "/api/v1/hostgroups", token=token)["hostgroups"]},
        "applications.csv": {(str(a["id"]), a["name"]) for a in
                             hostile.get_json("/api/v1/applications",
                                              token=token)["applications"]},
        "exporters.csv": {(str(x["id"]), x["name"]) for x in hostile.get_json(
            "/api/v1/exporters", token=token)["exporters"]},
    }
    for name, want in api.items():
        recs = check_csv(hostile_mount.path("collector", name).read_bytes(),
                         name)
        assert recs[0][:2] == ["id", "name"], recs[0]
        assert {(r[0], r[1]) for r in recs[1:]} == want, name
    hostile_names = [n for _, n in api["hostgroups.csv"]
                     | api["applications.csv"]
                     if re.search(r'[,"\n]|^=', n)]
    assert len(hostile_names) >= 4, hostile_names


# ---- 6. secrets: the token nowhere; the cache private --------------------------------

def grep_tree(top, needle):
    """Files under top whose bytes hold needle; every file is read."""
    hits, n = [], 0
    for p in Path(top).rglob("*"):
        if p.is_file() and not p.is_symlink():
            n += 1
            if needle in p.read_bytes():
                hits.append(str(p))
    return hits, n


def check_private(top):
    """Every directory 0700 and every file 0600 (exactly)."""
    bad = []
    for p in [Path(top), *Path(top).rglob("*")]:
        mode = stat.S_IMODE(os.lstat(p).st_mode)
        want = 0o700 if p.is_dir() else 0o600
        if mode != want:
            bad.append((str(p), oct(mode)))
    assert not bad, f"not private: {bad}"


def sqlite_strings(path):
    """Every text and blob value of every table."""
    con = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        out = []
        tables = [t for (t,) in con.execute(
            "select name from sqlite_master where type = 'table'")]
        for t in tables:
            for row in con.execute(f'select * from "{t}"'):
                out += [v if isinstance(v, str) else bytes(v).decode(
                    "latin-1") for v in row if isinstance(v, (str, bytes))]
        return tables, out
    finally:
        con.close()


def test_token_nowhere_and_cache_private(make_sim, mounts, token, token_file,
                                         tmp_path):
    """With umask 000: a mount that answers a folder, fails one on 500s and
    one on an expired token, and flowfetch runs that succeed (CSV, NDJSON,
    SQLite) and fail.  The token is in no file of either cache (every byte
    of every file: logs, databases, snapshots), no file of the tree
    (.progress, query.json, SHA256SUMS, summary.txt, flows.sqlite's
    tables...), no stderr, and not in flowfs's /proc/PID/cmdline; the cache
    directories are 0700 and their files 0600."""
    sim = make_sim(*sim_args(token_file, "--max-records", "200"))
    tok = token.encode()
    old = os.umask(0)
    try:
        m = mounts(url=url_of(sim), opts=["retries=1", "max_inflight=1"])
    finally:
        os.umask(old)
    mounts.allow(*QUERY_LOG)
    good = m.path("10.0.1.40", "2026-11-26")
    for name in ["flows.csv", "flows.ndjson", "flows.sqlite", "summary.txt",
                 "timeline.svg", "query.json", "SHA256SUMS", ".progress"]:
        assert tok not in (good / name).read_bytes(), f"the token is in {name}"
    failed = {"500": m.path("10.0.1.40", "2026-11-25"),
              "401": m.path("10.0.1.40", "2026-11-24")}
    for fault, d in failed.items():
        sim.set_faults(**{fault: 1})
        r = cat(d / "flows.csv")
        sim.set_faults(**{fault: 0})
        assert r.returncode != 0
        assert tok not in r.stderr
        text = check_failed_progress(d)
        assert token not in text
    for name in ["README.txt", "collector/info.json",
                 "collector/hostgroups.csv"]:
        assert tok not in m.path(name).read_bytes(), name
    tables, values = sqlite_strings(good / "flows.sqlite")
    assert "flows" in tables and values
    assert not [v for v in values if token in v], "the token in flows.sqlite"
    assert tok not in Path(f"/proc/{m.proc.pid}/cmdline").read_bytes()

    # flowfetch, umask 000, its own cache
    ff_cache = tmp_path / "ff-cache"
    outs = []

    def umask0(out, day="2026-11-26", extra=(), tf=token_file):
        f = flowfetch(url_of(sim), "10.0.1.40", day, day, tmp_path / out,
                      cache=ff_cache, token_file=tf, extra=extra, umask=0,
                      timeout=120)
        outs.append(f.stderr)
        return f

    for out in ["ff.csv", "ff.ndjson", "ff.sqlite"]:
        f = umask0(out)
        assert f.rc == 0, f.describe()
        assert tok not in (tmp_path / out).read_bytes(), out
    assert not [v for v in sqlite_strings(tmp_path / "ff.sqlite")[1]
                if token in v]
    sim.set_faults(**{"401": 1})
    assert umask0("ff2.csv", "2026-11-25", ["--retries", "1"]).rc == 1
    sim.set_faults(**{"401": 0, "500": 1})
    assert umask0("ff3.csv", "2026-11-24", ["--retries", "1"]).rc == 1
    sim.set_faults(**{"500": 0})
    wrong = tmp_path / "wrong-token"
    wrong.write_text("flowfs-WRONG-" + secrets.token_hex(8) + "\n")
    wrong.chmod(0o600)                 # a token file must be private
    assert umask0("ff4.csv", tf=wrong).rc == 1
    for err in outs:
        assert token not in err, err
        assert "flowfs-WRONG-" not in err, err

    m.stop()
    assert tok not in Path(m.stderr_path).read_bytes(), "flowfs's stderr"
    for cache in (m.cache, ff_cache):
        hits, n = grep_tree(cache, tok)
        assert n >= 1 and not hits, f"the token is in {hits} ({n} files)"
        check_private(cache)
    assert (m.cache / "flowfs.log").exists()


# ---- 6. TLS: the host name is verified too -------------------------------------------

def test_tls_wrong_host_name_refused(strict, mounts, token_file, tmp_path):
    """A certificate trusted through ca_file but made for another name
    (collector.invalid, not 127.0.0.1): flowfs refuses to mount and
    flowfetch exits 1, both saying TLS; with -o insecure the same proxy
    works (so it was the name).  test_flowfs.py's
    test_tls_verified_unless_told covers the untrusted certificate."""
    if not shutil.which("openssl"):
        pytest.skip("no openssl to make a certificate")
    proxy = TlsProxy(tmp_path, strict.port, san="DNS:collector.invalid",
                     name="wrong-host")
    try:
        url = f"https://127.0.0.1:{proxy.port}"
        m = mounts(start=False, url=url, opts=[f"ca_file={proxy.cert}"])
        t0 = time.monotonic()
        with pytest.raises(MountError):
            m.start()
        assert time.monotonic() - t0 < 15
        assert m.returncode not in (None, 0) and not mounted_at(m.mnt)
        assert re.search(r"TLS|certificate|SSL", m.stderr_text()), \
            m.stderr_text()
        m.proc = None
        f = flowfetch(url, "10.0.1.40", "2026-11-26", "2026-11-26",
                      tmp_path / "flows.csv", cache=tmp_path / "c",
                      token_file=token_file,
                      extra=["--ca-file", str(proxy.cert)])
        assert f.rc == 1 and re.search(r"TLS|certificate|SSL", f.stderr), \
            f.describe()
        m2 = mounts(url=url, opts=["insecure"])
        assert (m2.path("collector", "info.json")).read_text()
    finally:
        proxy.close()
