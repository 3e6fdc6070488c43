"""flowsim as a client sees it, checked against docs/flowsim.md and
docs/collector-api.md, and against the simulator's own truth
(/_sim/truth), never against hard-coded answers.

Run:  /usr/bin/python3 -m pytest tests/integration -q
"""

import gzip
import hashlib
import http.client
import ipaddress
import json
import re
import signal
import socket
import subprocess
import threading
import time
from collections import Counter

import pytest

NOW_ISO = "2026-11-29T12:00:00Z"
NOW_MS = 1795953600000                  # NOW_ISO in ms since the epoch
SEC = 1000
MIN = 60 * SEC
HOUR = 60 * MIN
DAY = 24 * HOUR
TODAY0 = NOW_MS - 12 * HOUR             # 2026-11-29T00:00:00Z
YDAY0 = TODAY0 - DAY                    # yesterday, a full past day
DEFAULT_MAX_RECORDS = 10000             # flowsim's documented default cap

DEFINED_FIELDS = {
    "id", "start", "end", "src", "dst", "sport", "dport", "proto", "pkts",
    "bytes", "tcp_flags", "icmp_type", "icmp_code", "in_if", "out_if",
    "exporter", "app", "src_groups", "dst_groups", "src_as", "dst_as",
    "sampling",
}
OPTIONAL_OMITTABLE = ("app", "src_as", "dst_as", "in_if", "out_if")
ID_RE = re.compile(r"^[0-9a-f]{16}$")
HOST_KINDS = ("steady", "heavy", "bursty")


# ---- helpers ----------------------------------------------------------------

def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def net(text):
    return ipaddress.ip_network(text, strict=False)


def addr(text):
    return ipaddress.ip_address(text)


def in_net(a, n):
    return a.version == n.version and a in n


def check_record(r, S=None, E=None, match="start", ip=None, peer=None):
    """The record's shape per the API page; its window and its match."""
    assert isinstance(r, dict), f"record is not an object: {r!r}"
    for k in ("id", "start", "src", "dst"):
        assert k in r, f"record without {k!r}: {r}"
    assert isinstance(r["id"], str) and ID_RE.match(r["id"]), \
        f"id is not 16 lowercase hex digits: {r['id']!r}"
    assert is_int(r["start"]), f"start not an integer: {r}"
    if "end" in r:
        assert is_int(r["end"]) and r["end"] >= r["start"], f"bad end: {r}"
    for k in ("src", "dst"):
        assert isinstance(r[k], str), f"{k} not a string: {r}"
        try:
            addr(r[k])
        except ValueError:
            pytest.fail(f"{k} is not an IP address: {r[k]!r} in {r}")
    for k, lo, hi in (("sport", 0, 65535), ("dport", 0, 65535),
                      ("proto", 0, 255), ("tcp_flags", 0, 255),
                      ("icmp_type", 0, 255), ("icmp_code", 0, 255),
                      ("pkts", 0, 2**63 - 1), ("bytes", 0, 2**63 - 1),
                      ("in_if", 0, 2**32 - 1), ("out_if", 0, 2**32 - 1),
                      ("exporter", 0, 2**32 - 1), ("app", 0, 2**32 - 1),
                      ("src_as", 0, 2**32 - 1), ("dst_as", 0, 2**32 - 1),
                      ("sampling", 1, 2**32 - 1)):
        if k in r:
            assert is_int(r[k]) and lo <= r[k] <= hi, f"bad {k}: {r}"
    for k in ("src_groups", "dst_groups"):
        if k in r:
            assert isinstance(r[k], list) and all(is_int(g) for g in r[k]), \
                f"bad {k}: {r}"
    if S is not None:
        if match == "start":
            assert S <= r["start"] < E, \
                f"start {r['start']} outside [{S}, {E}): {r}"
        else:
            assert "end" in r, f"overlap mode record without end: {r}"
            assert r["start"] < E and r["end"] >= S, \
                f"[{r['start']}, {r['end']}] does not overlap [{S}, {E}): {r}"
    if ip is not None:
        a, b = addr(r["src"]), addr(r["dst"])
        ipn = net(ip)
        pn = net(peer) if peer is not None else None

        def side(x, y):
            return in_net(x, ipn) and (pn is None or in_net(y, pn))
        assert side(a, b) or side(b, a), \
            f"record does not match ip={ip} peer={peer}: {r}"


def check_records(recs, *args, **kw):
    for r in recs:
        check_record(r, *args, **kw)
    ids = [r["id"] for r in recs]
    dups = [i for i, n in Counter(ids).items() if n > 1]
    assert not dups, f"duplicate ids in one answer: {dups[:5]}"
    return ids


def digest_of(ids):
    return hashlib.sha256("".join(i + "\n" for i in sorted(ids))
                          .encode()).hexdigest()


def truth_ids(s, ip, S, E, peer=None):
    t = s.truth(ip, S, E, peer, list="ids")
    ids = t["ids"]
    assert ids == sorted(ids), "truth ids not sorted"
    assert len(set(ids)) == len(ids), "truth ids not unique"
    assert t["count"] == len(ids), "truth count != len(ids)"
    assert t["digest"] == digest_of(ids), "truth digest != sha256(sorted ids)"
    return set(ids)


def count(s, ip, S, E, peer=None):
    return s.truth(ip, S, E, peer)["count"]


def shrink_below(s, cap, ip, S, E, peer=None, minimum=2):
    """Halve [S, E) (keeping S) until its truth count is below the cap."""
    while True:
        n = count(s, ip, S, E, peer)
        if n < cap:
            break
        assert E - S > 1, f"cannot shrink {ip} {S} below the cap"
        E = S + (E - S) // 2
    assert n >= minimum, f"window [{S}, {E}) of {ip} has only {n} flows"
    return S, E, n


def assert_complete(s, cap, ip, S, E, peer=None, match="start"):
    """An unsaturated window: /flows must return exactly the truth ids."""
    want = truth_ids(s, ip, S, E, peer)
    assert 0 < len(want) < cap, \
        f"precondition: {len(want)} flows, want 1..{cap - 1}"
    recs = s.flows(ip, S, E, peer)
    got = check_records(recs, S, E, match, ip=ip, peer=peer)
    missing, extra = want - set(got), set(got) - want
    assert not missing and not extra, \
        (f"/flows ip={ip} peer={peer} [{S},{E}) != truth: "
         f"{len(missing)} missing (e.g. {sorted(missing)[:3]}), "
         f"{len(extra)} extra (e.g. {sorted(extra)[:3]})")
    return recs


def streams(scen, *kinds):
    return [s for s in scen["streams"] if s["kind"] in kinds]


def v4(s):
    return ":" not in s["addr"]


def error_body(status, hdrs, body, want):
    assert status == want, f"status {status}, want {want}: {body[:300]!r}"
    if hdrs.get("Content-Encoding", "").lower() == "gzip":
        body = gzip.decompress(body)
    try:
        doc = json.loads(body)
    except ValueError:
        pytest.fail(f"{want} body is not JSON: {body[:300]!r}")
    assert isinstance(doc, dict) and isinstance(doc.get("error"), str) \
        and doc["error"], f"{want} body lacks a non-empty 'error': {doc}"
    return doc


def flows_params(ip, S, E, peer=None, limit=None):
    return {"ip": ip, "start": S, "end": E, "peer": peer, "limit": limit}


def steady_query(s):
    """A small, unsaturated query on s's own default scenario."""
    st = [x for x in streams(s.scenario(), "steady") if v4(x)][0]
    return flows_params(st["addr"], YDAY0 + 10 * HOUR, YDAY0 + 11 * HOUR)


def endpoint_count(c, path, status):
    return c.get("endpoints", {}).get(path, {}).get(str(status), 0)


def fault_count(c, name):
    return c.get("faults", {}).get(name, 0)


def cap_of(s):
    return int(s.args[s.args.index("--max-records") + 1])


# ---- module fixtures --------------------------------------------------------

@pytest.fixture(scope="module")
def cap(sim):
    return cap_of(sim)


@pytest.fixture(scope="module")
def scen(sim):
    return sim.scenario()


@pytest.fixture(scope="module")
def steady(scen):
    st = [s for s in streams(scen, "steady") if v4(s)]
    assert st, "default scenario has no IPv4 steady host"
    return st[0]


@pytest.fixture(scope="module")
def heavy(scen):
    h = streams(scen, "heavy")
    assert h, "default scenario has no heavy host"
    return h[0]


@pytest.fixture(scope="module")
def v6host(scen):
    h = [s for s in streams(scen, *HOST_KINDS) if not v4(s)]
    assert h, "default scenario has no IPv6 host"
    return h[0]


@pytest.fixture(scope="module")
def scan(scen):
    s = streams(scen, "scan")
    assert s, "default scenario has no scan"
    return s[0]


@pytest.fixture(scope="module")
def heavy_hours(sim, heavy):
    """Truth counts of the heavy host for each hour of yesterday."""
    return [count(sim, heavy["addr"], YDAY0 + h * HOUR, YDAY0 + (h + 1) * HOUR)
            for h in range(24)]


@pytest.fixture(scope="module")
def busiest(heavy_hours):
    h = max(range(24), key=lambda i: heavy_hours[i])
    return YDAY0 + h * HOUR, YDAY0 + (h + 1) * HOUR, heavy_hours[h]


@pytest.fixture(scope="module")
def capped(sim, heavy, busiest, cap):
    """One saturated answer for the heavy host's busiest hour."""
    S, E, _ = busiest
    return sim.flows(heavy["addr"], S, E)


# ---- /info and /_sim/scenario -----------------------------------------------

def test_info_fields(sim, cap):
    info = sim.info()
    assert info.get("product") == "flowsim"
    assert isinstance(info.get("version"), str) and info["version"]
    for k in ("max_records", "retention_days", "now", "export_delay_s"):
        assert is_int(info.get(k)), f"/info {k} not an integer: {info}"
    assert info["max_records"] == cap
    assert info["retention_days"] == 30
    assert info["export_delay_s"] == 120
    assert info["now"] == NOW_MS


def test_scenario_endpoint(sim, scen, cap):
    assert scen["now"] == NOW_MS
    assert scen["days"] == 7
    assert scen["first_day"] == TODAY0 - 6 * DAY
    assert scen["max_records"] == cap
    names = [s["name"] for s in scen["streams"]]
    assert len(names) == len(set(names)), f"stream names not unique: {names}"
    for s in scen["streams"]:
        assert s["kind"] in HOST_KINDS + ("scan", "flood"), s
        addr(s["addr"])
        assert is_int(s["flows"]) and 1 <= s["flows"] <= 10_000_000, s
        if s["kind"] in ("scan", "flood"):
            assert is_int(s["start"]) and is_int(s["end"]), s
            assert s["start"] < s["end"], s
            assert scen["first_day"] <= s["start"] <= NOW_MS, s
        if s["kind"] == "scan":
            addr(s["attacker"])
        if s["kind"] in HOST_KINDS:
            net(s["peers"])


# ---- the cap ----------------------------------------------------------------

def test_cap_busiest_hour(sim, heavy, busiest, capped, cap):
    S, E, n = busiest
    assert n > cap, f"precondition: busiest heavy hour has {n} <= {cap} flows"
    want = truth_ids(sim, heavy["addr"], S, E)
    assert len(want) == n
    a = capped
    b = sim.flows(heavy["addr"], S, E)
    ida = check_records(a, S, E, ip=heavy["addr"])
    idb = check_records(b, S, E, ip=heavy["addr"])
    assert len(ida) == cap and len(idb) == cap, \
        f"saturated answers hold {len(ida)}, {len(idb)} records, want {cap}"
    assert set(ida) <= want and set(idb) <= want, "ids outside the truth set"
    assert ida != idb, "two saturated answers are identical"
    assert set(ida) != set(idb), "two saturated answers hold the same subset"
    common = set(ida) & set(idb)
    if len(common) >= 10:
        oa = [i for i in ida if i in common]
        ob = [i for i in idb if i in common]
        assert oa != ob, "common records came back in the same order"
    starts = [r["start"] for r in a]
    assert starts != sorted(starts), "saturated answer ordered by time"
    assert starts != sorted(starts, reverse=True), "ordered by time"


def test_unsaturated_new_order_each_answer(sim, steady, cap):
    S, E = YDAY0 + 10 * HOUR, YDAY0 + 11 * HOUR
    a = [r["id"] for r in sim.flows(steady["addr"], S, E)]
    b = [r["id"] for r in sim.flows(steady["addr"], S, E)]
    assert len(a) >= 20, f"precondition: only {len(a)} flows"
    assert len(a) < cap
    assert set(a) == set(b)
    assert a != b, "two answers of an unsaturated window in the same order"
    assert a != sorted(a)


def test_every_answer_new_order(sim, steady, cap):
    """docs/flowsim.md: "a new random order on every answer".  Ask the same
    unsaturated window over and over for ~2.5 s (so that the wall clock's
    second ticks at least twice): no two answers may come back in the same
    order (with ~200 records a repeat by chance is impossible)."""
    S, E = YDAY0 + 10 * HOUR, YDAY0 + 11 * HOUR
    seen = {}
    k = 0
    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline:
        order = tuple(r["id"] for r in sim.flows(steady["addr"], S, E))
        assert 50 <= len(order) < cap
        assert order not in seen, \
            f"answer {k} repeats the order of answer {seen[order]}"
        seen[order] = k
        k += 1
    assert k >= 20


# ---- unsaturated windows are exact ------------------------------------------

def test_complete_steady_hour(sim, steady, cap):
    assert_complete(sim, cap, steady["addr"], YDAY0 + 10 * HOUR,
                    YDAY0 + 11 * HOUR)


def test_complete_peer_restricted(sim, heavy, busiest, cap):
    S, E, _ = busiest
    peers = net(heavy["peers"])
    for plen in range(peers.prefixlen + 1, peers.max_prefixlen + 1):
        sub = str(next(peers.subnets(new_prefix=plen)))
        n = count(sim, heavy["addr"], S, E, sub)
        if n < cap:
            break
    assert n >= 2, f"precondition: peer {sub} has {n} flows"
    recs = assert_complete(sim, cap, heavy["addr"], S, E, peer=sub)
    # and the peer restriction really restricts
    assert count(sim, heavy["addr"], S, E) > len(recs)


def test_complete_single_peer(sim, scan, cap):
    """ip=victim peer=attacker, a restricted part of the scan."""
    S, E, _ = shrink_below(sim, cap, scan["addr"], scan["start"],
                           scan["start"] + 1000, peer=scan["attacker"])
    recs = assert_complete(sim, cap, scan["addr"], S, E,
                           peer=scan["attacker"])
    for r in recs:
        assert addr(scan["attacker"]) in (addr(r["src"]), addr(r["dst"]))


def test_complete_prefix(sim, scen, steady, cap):
    me = addr(steady["addr"])
    others = [addr(s["addr"]) for s in streams(scen, *HOST_KINDS, "flood")
              if v4(s) and addr(s["addr"]) != me]
    assert others, "precondition: no other IPv4 host"
    # the smallest prefix that holds this host and another one
    plen = max(32 - (int(me) ^ int(o)).bit_length() for o in others)
    prefix = str(net(f"{me}/{plen}"))
    S, E, _ = shrink_below(sim, cap, prefix, YDAY0 + 10 * HOUR,
                           YDAY0 + 11 * HOUR)
    recs = assert_complete(sim, cap, prefix, S, E)
    assert count(sim, prefix, S, E) >= count(sim, steady["addr"], S, E)
    hosts = set()
    for r in recs:
        for k in ("src", "dst"):
            if in_net(addr(r[k]), net(prefix)):
                hosts.add(addr(r[k]))
    assert len(hosts) >= 1


@pytest.mark.parametrize("spelling", [
    "exploded", "upper", "exploded_upper", "dotted_tail",
    "prefix128_exploded", "prefix64_upper"])
def test_complete_ipv6_noncanonical_query(sim, v6host, cap, spelling):
    a = addr(v6host["addr"])
    text = {
        "exploded": a.exploded,
        "upper": a.compressed.upper(),
        "exploded_upper": a.exploded.upper(),
        "dotted_tail": ":".join(a.exploded.split(":")[:6]) + ":"
        + str(ipaddress.IPv4Address(int(a) & 0xffffffff)),
        "prefix128_exploded": a.exploded + "/128",
        "prefix64_upper": str(net(f"{a}/64").network_address.exploded.upper())
        + "/64",
    }[spelling]
    S, E = YDAY0 + 10 * HOUR, YDAY0 + 11 * HOUR
    if spelling.startswith("prefix64"):
        S, E, _ = shrink_below(sim, cap, text, S, E)
    recs = assert_complete(sim, cap, text, S, E)
    # the same answer as the canonical spelling, per the truth
    if not spelling.startswith("prefix64"):
        assert truth_ids(sim, a.compressed, S, E) == {r["id"] for r in recs}


def test_complete_scan_window(sim, scan, cap):
    S, E, n = shrink_below(sim, cap, scan["addr"], scan["start"],
                           scan["start"] + 1000)
    assert n > cap // 4, f"precondition: restricted scan window holds {n}"
    assert_complete(sim, cap, scan["addr"], S, E)


def test_empty_window_before_dataset(sim, steady):
    S = TODAY0 - 30 * DAY
    assert sim.flows(steady["addr"], S, S + HOUR) == []
    assert count(sim, steady["addr"], S, S + HOUR) == 0


@pytest.mark.parametrize("everything", ["0.0.0.0/0", "::/0"])
def test_complete_whole_family(sim, cap, everything):
    """A prefix matches only addresses of its own family."""
    S, E, _ = shrink_below(sim, cap, everything, YDAY0 + 14 * HOUR,
                           YDAY0 + 15 * HOUR)
    assert_complete(sim, cap, everything, S, E)


def ids_of(recs):
    ids = [r["id"] for r in recs]
    assert len(ids) == len(set(ids)), "duplicate ids in one answer"
    return set(ids)


def test_window_boundaries_start_mode(sim, steady):
    """start in [S, E): checked on single flows, without the truth."""
    t = sim.truth(steady["addr"], YDAY0 + 10 * HOUR, YDAY0 + 11 * HOUR,
                  list="records")
    recs = t["records"]
    assert len(recs) >= 3
    for r in (recs[0], recs[len(recs) // 2], recs[-1]):
        a, i = steady["addr"], r["id"]
        assert i in ids_of(sim.flows(a, r["start"], r["start"] + 1))
        assert i in ids_of(sim.flows(a, r["start"] - HOUR, r["start"] + 1))
        assert i not in ids_of(sim.flows(a, r["start"] - HOUR, r["start"]))
        assert i not in ids_of(sim.flows(a, r["start"] + 1,
                                         r["start"] + HOUR))


@pytest.mark.parametrize("which", ["v4", "v6"])
def test_partitions_agree(sim, steady, v6host, cap, which):
    """Splitting the peer space or the window (a correct client's moves)
    loses and duplicates nothing: checked without the truth."""
    h = steady if which == "v4" else v6host
    halves = (("0.0.0.0/1", "128.0.0.0/1") if which == "v4"
              else ("::/1", "8000::/1"))
    S, E = YDAY0 + 10 * HOUR, YDAY0 + 11 * HOUR
    whole = ids_of(sim.flows(h["addr"], S, E))
    assert 2 <= len(whole) < cap
    lo = ids_of(sim.flows(h["addr"], S, E, peer=halves[0]))
    hi = ids_of(sim.flows(h["addr"], S, E, peer=halves[1]))
    assert not lo & hi, "a flow matched both peer halves"
    assert lo | hi == whole, "peer halves do not add up to the whole"
    M = S + 1234567
    first = ids_of(sim.flows(h["addr"], S, M))
    second = ids_of(sim.flows(h["addr"], M, E))
    assert not first & second, "a flow is in both halves of the window"
    assert first | second == whole, "window halves do not add up"
    net24 = str(net(h["addr"] + ("/24" if which == "v4" else "/64")))
    S2, E2, _ = shrink_below(sim, cap, net24, S, E)
    assert ids_of(sim.flows(h["addr"], S2, E2)) <= \
        ids_of(sim.flows(net24, S2, E2))


def test_keep_alive(sim, steady):
    """Several requests, errors included, on one HTTP/1.1 connection."""
    q = flows_params(steady["addr"], YDAY0 + 10 * HOUR, YDAY0 + 11 * HOUR)
    n = count(sim, steady["addr"], q["start"], q["end"])
    conn = sim.connection()
    try:
        for path, params, want in (("/api/v1/flows", q, 200),
                                   ("/api/v1/flows", {"ip": "x"}, 400),
                                   ("/api/v1/info", None, 200),
                                   ("/api/v1/nope", None, 404),
                                   ("/api/v1/flows", q, 200)):
            conn.request("GET", sim.url(path, params))
            resp = conn.getresponse()
            body = resp.read()
            assert resp.status == want, (path, resp.status, body[:200])
            doc = json.loads(body)
            if path == "/api/v1/flows" and want == 200:
                assert len(doc["flows"]) == n
    finally:
        conn.close()


def test_concurrent_requests(make_sim, steady, heavy):
    """Parallel clients on a fresh sim (data made lazily, concurrently) get
    what one client gets from another fresh sim, one request at a time."""
    from concurrent.futures import ThreadPoolExecutor
    a = make_sim("--now", NOW_ISO)
    b = make_sim("--now", NOW_ISO)
    qs = []
    for d in range(1, 5):
        day = TODAY0 - d * DAY
        qs.append((heavy["addr"], day + 14 * HOUR, day + 15 * HOUR))
        qs.append((steady["addr"], day + 10 * HOUR, day + 11 * HOUR))

    def truth(s, q):
        t = s.truth(*q)
        return t["count"], t["digest"]

    def flows(s, q):
        return sorted(r["id"] for r in s.flows(*q))

    with ThreadPoolExecutor(8) as ex:
        par_truth = list(ex.map(lambda q: truth(a, q), qs))
        par_flows = list(ex.map(lambda q: flows(a, q), qs[1::2] * 2))
    seq_truth = [truth(b, q) for q in qs]
    assert par_truth == seq_truth
    seq_flows = [sorted(truth_ids(b, *q)) for q in qs[1::2]] * 2
    assert par_flows == seq_flows


@pytest.mark.parametrize("param", ["ip", "peer"])
def test_ipv4_mapped_ipv6_prefix_accepted(sim, v6host, param):
    """::ffff:0:0/96 is a valid IPv6 CIDR prefix; the API takes any IPv6
    prefix as ip or peer, so it is no 400, and /flows agrees with the truth."""
    S, E = YDAY0 + 10 * HOUR, YDAY0 + 11 * HOUR
    pfx = "::ffff:0:0/96"
    ip, peer = (pfx, None) if param == "ip" else (v6host["addr"], pfx)
    status, _, body = sim.get("/api/v1/flows", flows_params(ip, S, E, peer))
    assert status == 200, f"{param}={pfx}: {status} {body[:200]!r}"
    got = ids_of(json.loads(body)["flows"])
    want = truth_ids(sim, ip, S, E, peer)
    cap = sim.info()["max_records"]
    if len(want) > cap:  # ::ffff:0:0/96 is every IPv4 flow: a capped answer
        assert len(got) == cap and got <= want
    else:
        assert got == want


# ---- truth endpoint ---------------------------------------------------------

def test_truth_lists_and_digest(sim, steady):
    S, E = YDAY0 + 10 * HOUR, YDAY0 + 11 * HOUR
    plain = sim.truth(steady["addr"], S, E)
    assert "ids" not in plain and "records" not in plain, \
        "truth lists ids/records without being asked"
    ids = truth_ids(sim, steady["addr"], S, E)
    t = sim.truth(steady["addr"], S, E, list="records")
    recs = t["records"]
    check_records(recs, S, E, ip=steady["addr"])
    assert t["count"] == plain["count"] == len(recs) == len(ids)
    assert t["digest"] == plain["digest"] == digest_of(ids)
    assert {r["id"] for r in recs} == ids
    keys = [(r["start"], r["id"]) for r in recs]
    assert keys == sorted(keys), "truth records not sorted by (start, id)"
    # the records served by /flows are the truth's records, field for field
    served = {r["id"]: r for r in sim.flows(steady["addr"], S, E)}
    assert served == {r["id"]: r for r in recs}


# ---- match modes ------------------------------------------------------------

def test_overlap_mode(sim, scen, make_sim, cap):
    ov = make_sim(*sim.args, "--match", "overlap")
    hosts = streams(scen, "steady")
    found = None
    for M in (YDAY0, YDAY0 - DAY, YDAY0 - 2 * DAY):
        for h in hosts:
            t = ov.truth(h["addr"], M, M + HOUR, list="records")
            crossing = [r for r in t["records"] if r["start"] < M]
            if crossing:
                found = (h, M, t, crossing)
                break
        if found:
            break
    assert found, "no steady flow crosses midnight (overlap truth)"
    h, S, t, crossing = found
    E = S + HOUR
    check_records(t["records"], S, E, "overlap", ip=h["addr"])
    recs = assert_complete(ov, cap, h["addr"], S, E, match="overlap")
    assert any(r["start"] < S for r in recs), \
        "overlap answer holds no flow that starts before S"
    # start mode (same dataset) is the overlap answer less the crossing flows
    start_ids = truth_ids(sim, h["addr"], S, E)
    ov_ids = {r["id"] for r in recs}
    assert start_ids <= ov_ids
    assert ov_ids - start_ids == {r["id"] for r in crossing}
    start_recs = sim.flows(h["addr"], S, E)
    check_records(start_recs, S, E, "start", ip=h["addr"])
    # the same flows, field for field, whatever the match mode
    by_id = {r["id"]: r for r in recs}
    for r in start_recs:
        assert by_id[r["id"]] == r
    # the boundaries of overlap on one crossing flow: start < E, end >= S
    c = crossing[0]
    a = h["addr"]
    assert c["id"] in ids_of(ov.flows(a, c["end"], c["end"] + HOUR))
    assert c["id"] not in ids_of(ov.flows(a, c["end"] + 1,
                                          c["end"] + HOUR))
    assert c["id"] in ids_of(ov.flows(a, c["start"] - HOUR, c["start"] + 1))
    assert c["id"] not in ids_of(ov.flows(a, c["start"] - HOUR, c["start"]))


# ---- limit ------------------------------------------------------------------

def test_limit(sim, steady, heavy, busiest, cap):
    S, E = YDAY0 + 10 * HOUR, YDAY0 + 11 * HOUR
    want = truth_ids(sim, steady["addr"], S, E)
    assert 5 < len(want) < cap
    five = sim.flows(steady["addr"], S, E, limit=5)
    ids = check_records(five, S, E, ip=steady["addr"])
    assert len(ids) == 5 and set(ids) <= want
    more = sim.flows(steady["addr"], S, E, limit=len(want) + 7)
    assert {r["id"] for r in more} == want
    hS, hE, _ = busiest
    cut = sim.flows(heavy["addr"], hS, hE, limit=cap + 1000)
    assert len(check_records(cut, hS, hE)) == cap
    exact = sim.flows(heavy["addr"], hS, hE, limit=cap)
    assert len(exact) == cap
    huge = sim.flows(heavy["addr"], hS, hE, limit=2**40)
    assert len(huge) == cap


@pytest.mark.parametrize("limit", ["0", "-1", "abc", "5x", "1.5"])
def test_limit_bad(sim, steady, limit):
    p = flows_params(steady["addr"], YDAY0, YDAY0 + HOUR, limit=limit)
    error_body(*sim.get("/api/v1/flows", p), 400)


# ---- bad requests -----------------------------------------------------------

A = "10.0.1.10"
BAD_REQUESTS = {
    "missing-ip": {"start": YDAY0, "end": YDAY0 + HOUR},
    "empty-ip": {"ip": "", "start": YDAY0, "end": YDAY0 + HOUR},
    "bad-ip-octet": {"ip": "10.0.1.256", "start": YDAY0, "end": YDAY0 + HOUR},
    "bad-ip-word": {"ip": "nonsense", "start": YDAY0, "end": YDAY0 + HOUR},
    "bad-ip-short": {"ip": "10.0.1", "start": YDAY0, "end": YDAY0 + HOUR},
    "bad-ip6": {"ip": "2001:db8::g", "start": YDAY0, "end": YDAY0 + HOUR},
    "bad-peer": {"ip": A, "peer": "999.1.1.1", "start": YDAY0,
                 "end": YDAY0 + HOUR},
    "prefix-33": {"ip": "10.0.1.0/33", "start": YDAY0, "end": YDAY0 + HOUR},
    "prefix-129": {"ip": "2001:db8::/129", "start": YDAY0,
                   "end": YDAY0 + HOUR},
    "prefix-neg": {"ip": "10.0.1.0/-1", "start": YDAY0, "end": YDAY0 + HOUR},
    "prefix-word": {"ip": "10.0.1.0/abc", "start": YDAY0,
                    "end": YDAY0 + HOUR},
    "start-eq-end": {"ip": A, "start": YDAY0, "end": YDAY0},
    "start-gt-end": {"ip": A, "start": YDAY0 + HOUR, "end": YDAY0},
    "range-31d+1": {"ip": A, "start": TODAY0 - 31 * DAY,
                    "end": TODAY0 + 1},
    "start-float": {"ip": A, "start": "1.5", "end": YDAY0},
    "start-word": {"ip": A, "start": "abc", "end": YDAY0},
    "start-iso": {"ip": A, "start": "2026-11-28T00:00:00Z", "end": YDAY0},
    "start-negative": {"ip": A, "start": -1000, "end": 1000},
    "end-word": {"ip": A, "start": YDAY0, "end": "xyz"},
    "missing-start": {"ip": A, "end": YDAY0},
    "missing-end": {"ip": A, "start": YDAY0},
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_bad_request_400(sim, case):
    error_body(*sim.get("/api/v1/flows", BAD_REQUESTS[case]), 400)


def test_range_boundaries_ok(sim, steady):
    p = flows_params(steady["addr"], TODAY0 - 31 * DAY, TODAY0, limit=1)
    status, _, body = sim.get("/api/v1/flows", p)
    assert status == 200, f"exactly 31 days refused: {status} {body[:200]!r}"
    assert len(json.loads(body)["flows"]) == 1
    assert sim.flows(steady["addr"], 0, 1000) == []


@pytest.mark.parametrize("path", ["/api/v1/nope", "/", "/api/v2/flows",
                                  "/api/v1/flowsx", "/_sim/nope"])
def test_unknown_path_404(sim, path):
    error_body(*sim.get(path), 404)


# ---- authentication ---------------------------------------------------------

def test_token(make_sim, tmp_path):
    s = make_sim("--now", NOW_ISO, "--token", "sekrit-42")
    q = steady_query(s)
    for path, params in (("/api/v1/info", None), ("/api/v1/flows", q),
                         ("/api/v1/applications", None)):
        error_body(*s.get(path, params), 401)
        error_body(*s.get(path, params, token="wrong"), 401)
        error_body(*s.get(path, params,
                          headers={"Authorization": "Basic sekrit-42"}), 401)
        status, _, body = s.get(path, params, token="sekrit-42")
        assert status == 200, f"{path} with the right token: {status}"
        json.loads(body)
    for path in ("/api/v1/hostgroups", "/api/v1/exporters"):
        assert s.get(path, token="sekrit-42")[0] == 200
        assert s.get(path)[0] == 401
    # the test endpoints need no token
    assert s.get("/_sim/scenario")[0] == 200
    assert s.get("/_sim/counters")[0] == 200
    assert s.get("/_sim/truth", q)[0] == 200


def test_token_file(make_sim, tmp_path):
    tf = tmp_path / "token"
    tf.write_text("from-a-file-7")
    s = make_sim("--now", NOW_ISO, "--token-file", str(tf))
    assert s.get("/api/v1/info", token="from-a-file-7")[0] == 200
    error_body(*s.get("/api/v1/info", token="wrong"), 401)
    error_body(*s.get("/api/v1/info"), 401)


def test_no_token_configured_accepts_any(sim):
    assert sim.get("/api/v1/info")[0] == 200
    assert sim.get("/api/v1/info", token="anything")[0] == 200


# ---- gzip -------------------------------------------------------------------

def test_gzip(sim, steady):
    S, E = YDAY0 + 10 * HOUR, YDAY0 + 11 * HOUR
    p = flows_params(steady["addr"], S, E)
    n = count(sim, steady["addr"], S, E)
    status, hdrs, body = sim.get("/api/v1/flows", p,
                                 headers={"Accept-Encoding": "gzip"})
    assert status == 200
    assert hdrs.get("Content-Encoding", "").lower() == "gzip"
    assert body[:2] == b"\x1f\x8b", "body is not gzip"
    doc = json.loads(gzip.decompress(body))
    check_records(doc["flows"], S, E, ip=steady["addr"])
    assert len(doc["flows"]) == n
    status, hdrs, body = sim.get("/api/v1/applications",
                                 headers={"Accept-Encoding": "gzip"})
    assert status == 200 and hdrs.get("Content-Encoding", "") == "gzip"
    json.loads(gzip.decompress(body))
    # not asked: not gzipped
    status, hdrs, body = sim.get("/api/v1/flows", p)
    assert "gzip" not in hdrs.get("Content-Encoding", "")
    assert len(json.loads(body)["flows"]) == n


# ---- lookup tables ----------------------------------------------------------

def test_lookup_tables_resolve(sim, steady, capped):
    apps = sim.get_json("/api/v1/applications")["applications"]
    groups = sim.get_json("/api/v1/hostgroups")["hostgroups"]
    exps = sim.get_json("/api/v1/exporters")["exporters"]
    assert apps and groups and exps
    for a in apps:
        assert is_int(a["id"]) and isinstance(a["name"], str), a
    for g in groups:
        assert is_int(g["id"]) and isinstance(g["name"], str), g
        assert is_int(g["parent"]), g
    app_ids = {a["id"] for a in apps}
    group_ids = {g["id"] for g in groups}
    assert len(app_ids) == len(apps) and len(group_ids) == len(groups)
    for g in groups:
        assert g["parent"] == 0 or g["parent"] in group_ids, \
            f"hostgroup parent does not resolve: {g}"
    ifs = {}
    for x in exps:
        assert is_int(x["id"]) and isinstance(x["name"], str), x
        addr(x["address"])
        ifs[x["id"]] = set()
        for i in x["interfaces"]:
            assert is_int(i["ifindex"]) and isinstance(i["name"], str) \
                and isinstance(i["description"], str), i
            ifs[x["id"]].add(i["ifindex"])
    assert len(ifs) == len(exps)
    recs = list(capped) + sim.flows(steady["addr"], YDAY0, YDAY0 + 6 * HOUR)
    tally = Counter()
    for r in recs:
        if r.get("app"):
            tally["app"] += 1
            tally["app_ok"] += r["app"] in app_ids
        for k in ("src_groups", "dst_groups"):
            for g in r.get(k, []):
                tally["group"] += 1
                tally["group_ok"] += g in group_ids
        if "exporter" in r:
            tally["exporter"] += 1
            tally["exporter_ok"] += r["exporter"] in ifs
            for k in ("in_if", "out_if"):
                if r.get(k):
                    tally["if"] += 1
                    tally["if_ok"] += r[k] in ifs.get(r["exporter"], ())
    # interfaces: a collector may well report an ifIndex its exporter table
    # lacks (flowsim does, ~10%); the other ids must nearly all resolve
    for k, share in (("app", 0.9), ("group", 0.9), ("exporter", 0.9),
                     ("if", 0.75)):
        assert tally[k] > 0, f"no record references a {k}"
        assert tally[k + "_ok"] >= share * tally[k], \
            f"{k} ids resolve for only {tally[k + '_ok']} of {tally[k]}"


# ---- record forms -----------------------------------------------------------

def test_ipv6_spellings_in_records(sim, v6host, cap):
    a = addr(v6host["addr"])
    S, E, _ = shrink_below(sim, cap, str(a), YDAY0 + 8 * HOUR,
                           YDAY0 + 14 * HOUR)
    recs = sim.flows(str(a), S, E)
    check_records(recs, S, E, ip=str(a))
    spellings = Counter()
    for r in recs:
        for k in ("src", "dst"):
            if addr(r[k]) == a:
                spellings[r[k]] += 1
    assert sum(spellings.values()) == len(recs)
    assert len(spellings) >= 2, \
        f"the host's address is always spelled the same: {dict(spellings)}"
    assert any(sp != a.compressed for sp in spellings), \
        "no non-canonical spelling"


def test_extra_fields_and_omissions(capped):
    recs = capped
    extra = [r for r in recs if set(r) - DEFINED_FIELDS]
    frac = len(extra) / len(recs)
    assert 0.001 <= frac <= 0.05, \
        f"{len(extra)} of {len(recs)} records carry undefined fields"
    omitted = [r for r in recs if any(k not in r for k in OPTIONAL_OMITTABLE)]
    assert omitted, "no record leaves out an optional field"
    assert len(omitted) < len(recs) / 2


# ---- determinism ------------------------------------------------------------

def scenario_digests(s, scen):
    out = {}
    for st in scen["streams"]:
        if st["kind"] in HOST_KINDS:
            S, E = YDAY0 + 14 * HOUR, YDAY0 + 15 * HOUR
        else:
            S, E = st["start"], st["end"]
        t = s.truth(st["addr"], S, E)
        out[st["name"]] = (t["count"], t["digest"])
    return out


def test_determinism(make_sim, steady):
    a = make_sim("--now", str(NOW_MS), "--seed", "5")
    b = make_sim("--now", str(NOW_MS), "--seed", "5")
    c = make_sim("--now", str(NOW_MS), "--seed", "6")
    info = a.info()
    assert info["now"] == NOW_MS
    assert info["max_records"] == DEFAULT_MAX_RECORDS
    assert info["retention_days"] == 90
    assert info["export_delay_s"] == 300
    scen = a.scenario()
    assert b.scenario() == scen
    da, db, dc = (scenario_digests(x, scen) for x in (a, b, c))
    assert da == db, "same seed and now, different truth"
    S, E = YDAY0 + 10 * HOUR, YDAY0 + 11 * HOUR
    ra = sorted(a.flows(steady["addr"], S, E), key=lambda r: r["id"])
    rb = sorted(b.flows(steady["addr"], S, E), key=lambda r: r["id"])
    assert ra == rb, "same seed, different records"
    hosts = [st["name"] for st in scen["streams"] if st["kind"] in HOST_KINDS]
    assert all(dc[n][1] != da[n][1] for n in hosts), \
        "a different seed gives the same digest"


# ---- counters ---------------------------------------------------------------

def test_counters(sim, steady):
    q = flows_params(steady["addr"], YDAY0 + 10 * HOUR, YDAY0 + 11 * HOUR)
    c0 = sim.counters()
    assert is_int(c0["total"])
    N = 7
    for _ in range(N):
        assert sim.get("/api/v1/flows", q)[0] == 200
    assert sim.get("/api/v1/flows", {"ip": "bogus"})[0] == 400
    c1 = sim.counters()
    f = "/api/v1/flows"
    assert endpoint_count(c1, f, 200) - endpoint_count(c0, f, 200) == N
    assert endpoint_count(c1, f, 400) - endpoint_count(c0, f, 400) == 1
    assert c1["total"] - c0["total"] >= N + 1
    sim.reset_counters()
    c2 = sim.counters()
    assert endpoint_count(c2, f, 200) == 0
    assert endpoint_count(c2, f, 400) == 0
    assert c2["total"] < c1["total"] and c2["total"] <= 2
    assert sum(c2.get("faults", {}).values()) == 0
    assert sim.get("/api/v1/flows", q)[0] == 200
    assert endpoint_count(sim.counters(), f, 200) == 1


def test_flows_in_flight_gauge(make_sim):
    """flows_in_flight: 'now' counts the flow requests being served (slow
    ones for as long as they are slowed), 'peak' the most at once; other
    endpoints are not counted; a reset starts the peak again from 'now'."""
    s = make_sim("--now", NOW_ISO, "--slow", "1", "--slow-ms", "1000")
    q = steady_query(s)
    g = s.counters()["flows_in_flight"]
    assert g == {"now": 0, "peak": 0}, g
    N = 5
    out = [None] * N

    def get(i):
        out[i] = s.get("/api/v1/flows", q)[0]

    th = [threading.Thread(target=get, args=(i,)) for i in range(N)]
    for t in th:
        t.start()
    seen = 0
    deadline = time.monotonic() + 0.8
    while time.monotonic() < deadline:
        seen = max(seen, s.counters()["flows_in_flight"]["now"])
        assert s.get("/api/v1/info")[0] == 200   # not a flow request
        time.sleep(0.05)
    for t in th:
        t.join(30)
    assert out == [200] * N, out
    assert seen == N, f"'now' reached {seen} with {N} slow requests"
    g = s.counters()["flows_in_flight"]
    assert g == {"now": 0, "peak": N}, g
    s.reset_counters()
    assert s.counters()["flows_in_flight"] == {"now": 0, "peak": 0}
    assert s.get("/api/v1/flows", {"ip": "bogus"})[0] == 400
    assert s.counters()["flows_in_flight"] == {"now": 0, "peak": 1}


# ---- faults -----------------------------------------------------------------

def fault_sim(make_sim, *args):
    return make_sim("--now", NOW_ISO, "--fault-seed", "1", *args)


@pytest.mark.parametrize("opt,name,status", [
    ("--fail-500", "500", 500), ("--fail-503", "503", 503),
    ("--fail-429", "429", 429)])
def test_fault_status(make_sim, opt, name, status):
    s = fault_sim(make_sim, opt, "1", "--retry-after", "7")
    q = steady_query(s)
    K = 3
    for _ in range(K):
        st, hdrs, body = s.get("/api/v1/flows", q)
        error_body(st, hdrs, body, status)
        if status == 429:
            assert hdrs.get("Retry-After") == "7", \
                f"Retry-After {hdrs.get('Retry-After')!r}, want '7'"
    c = s.counters()
    assert fault_count(c, name) == K
    assert endpoint_count(c, "/api/v1/flows", status) == K
    # scope flows (the default): the rest is not faulted
    assert s.get("/api/v1/info")[0] == 200
    assert s.get("/api/v1/applications")[0] == 200
    assert s.get("/_sim/truth", q)[0] == 200


def test_retry_after_default(make_sim):
    s = fault_sim(make_sim, "--fail-429", "1")
    st, hdrs, body = s.get("/api/v1/flows", steady_query(s))
    error_body(st, hdrs, body, 429)
    assert hdrs.get("Retry-After") == "1"


def test_fault_slow(make_sim):
    s = fault_sim(make_sim, "--slow", "1", "--slow-ms", "300")
    q = steady_query(s)
    t0 = time.monotonic()
    recs = s.flows(q["ip"], q["start"], q["end"])
    took = time.monotonic() - t0
    assert took >= 0.3, f"slow answer took only {took:.3f} s"
    assert {r["id"] for r in recs} == truth_ids(s, q["ip"], q["start"],
                                                q["end"])
    t0 = time.monotonic()
    s.truth(q["ip"], q["start"], q["end"])
    assert time.monotonic() - t0 < 0.3, "/_sim/truth was slowed"
    assert fault_count(s.counters(), "slow") == 1


def raw_request(s, path, params):
    sock = socket.create_connection(("127.0.0.1", s.port), timeout=5)
    req = (f"GET {s.url(path, params)} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
           f"Connection: close\r\n\r\n")
    sock.sendall(req.encode())
    return sock


def test_fault_stall(make_sim):
    s = fault_sim(make_sim, "--stall", "1", "--stall-s", "30")
    q = steady_query(s)
    t0 = time.monotonic()
    with pytest.raises(socket.timeout):
        s.get("/api/v1/flows", q, timeout=1)
    assert time.monotonic() - t0 < 5
    # another stalled request is held open while we shut the sim down
    sock = raw_request(s, "/api/v1/flows", q)
    try:
        time.sleep(0.3)
        assert s.get("/_sim/scenario")[0] == 200, \
            "sim does not answer while a request is stalled"
        sock.settimeout(0.3)
        with pytest.raises(socket.timeout):
            sock.recv(1)          # still stalled: nothing sent
        t0 = time.monotonic()
        rc = s.stop(check=False)
        took = time.monotonic() - t0
        assert rc == 0, f"exit status {rc} after SIGTERM while stalled\n" \
                        f"{s.stderr_text()[-2000:]}"
        assert took < 3, f"shutdown while stalled took {took:.1f} s"
        sock.settimeout(5)
        try:
            sock.recv(65536)      # released: EOF, an answer, or a reset
        except ConnectionError:
            pass
    finally:
        sock.close()


def test_fault_reset(make_sim):
    s = fault_sim(make_sim, "--reset", "1")
    q = steady_query(s)
    for _ in range(2):
        with pytest.raises(ConnectionError):   # reset / remote disconnected
            s.get("/api/v1/flows", q)
    c = s.counters()
    assert endpoint_count(c, "/api/v1/flows", "reset") == 2
    assert fault_count(c, "reset") == 2
    assert s.get("/api/v1/info")[0] == 200


def test_fault_reset_is_tcp_rst(make_sim):
    """docs/flowsim.md: --reset resets the connection (TCP RST): the
    client's first read fails with ECONNRESET, not a clean EOF."""
    s = fault_sim(make_sim, "--reset", "1")
    q = steady_query(s)
    sock = raw_request(s, "/api/v1/flows", q)
    try:
        try:
            got = sock.recv(65536)
        except ConnectionResetError:
            got = "RST"
        seen = "EOF (FIN)" if got == b"" else repr(got[:80])
        assert got == "RST", f"want a TCP reset, got {seen}"
    finally:
        sock.close()


def test_fault_cut(make_sim):
    s = fault_sim(make_sim, "--cut", "1")
    q = steady_query(s)
    conn = s.connection()
    try:
        conn.request("GET", s.url("/api/v1/flows", q))
        resp = conn.getresponse()
        assert resp.status == 200
        cl = resp.getheader("Content-Length")
        assert cl is not None, "cut answer without Content-Length"
        with pytest.raises(http.client.IncompleteRead) as ei:
            resp.read()
        got = len(ei.value.partial)
        assert 0 < got < int(cl), f"got {got} of {cl} bytes"
    finally:
        conn.close()
    assert fault_count(s.counters(), "cut") == 1


def test_fault_malformed(make_sim):
    s = fault_sim(make_sim, "--malformed", "1")
    q = steady_query(s)
    status, hdrs, body = s.get("/api/v1/flows", q)
    assert status == 200
    assert body.lstrip().startswith(b"{"), f"not JSON-like: {body[:80]!r}"
    with pytest.raises(ValueError):
        json.loads(body)
    assert fault_count(s.counters(), "malformed") == 1


def test_fault_html(make_sim):
    s = fault_sim(make_sim, "--html", "1")
    q = steady_query(s)
    status, hdrs, body = s.get("/api/v1/flows", q)
    assert status == 200
    assert b"<html" in body.lower(), f"not HTML: {body[:120]!r}"
    with pytest.raises(ValueError):
        json.loads(body)
    assert fault_count(s.counters(), "html") == 1


def selected(r, ip, S, E, peer=None):
    """Could the query select record r in either match mode: its addresses
    match and it overlaps the window?"""
    a, b = addr(r["src"]), addr(r["dst"])
    ipn, pn = net(ip), (net(peer) if peer is not None else None)

    def side(x, y):
        return in_net(x, ipn) and (pn is None or in_net(y, pn))
    return (side(a, b) or side(b, a)) and r["start"] < E \
        and r.get("end", r["start"]) >= S


def test_fault_foreign(make_sim):
    """--foreign: every /flows answer holds 1 to 5 well-formed records the
    query does not select, and all of the truth when the answer is not
    full; a full one stays at the cap.  With the rate set back to 0 while
    running, answers equal the truth again."""
    cap = 1000
    s = fault_sim(make_sim, "--foreign", "1", "--max-records", str(cap))
    sc = s.scenario()
    web = [x for x in streams(sc, "steady") if v4(x)][0]
    heavy = streams(sc, "heavy")[0]
    six = [x for x in streams(sc, *HOST_KINDS) if not v4(x)][0]
    attacker = streams(sc, "scan")[0]["attacker"]
    H10 = YDAY0 + 10 * HOUR
    queries = [                                 # (ip, S, E, peer)
        (web["addr"], H10, H10 + HOUR, None),
        (web["addr"], YDAY0, YDAY0 + 6 * HOUR, web["peers"]),
        (six["addr"], H10, H10 + 2 * HOUR, None),
        (attacker, H10, H10 + HOUR, None),      # nothing there: only foreign
        (heavy["addr"], YDAY0 + 14 * HOUR, YDAY0 + 15 * HOUR, None),  # full
    ]
    full = 0
    for ip, S, E, peer in queries:
        want = truth_ids(s, ip, S, E, peer)
        recs = s.flows(ip, S, E, peer)
        got = set(check_records(recs))         # well-formed, no duplicates
        foreign = [r for r in recs if r["id"] not in want]
        assert 1 <= len(foreign) <= 5, \
            f"{ip} [{S},{E}): {len(foreign)} records outside the truth"
        for r in foreign:
            assert not selected(r, ip, S, E, peer), \
                f"a foreign record the query could select: {r}"
        assert len(recs) <= cap
        if len(recs) < cap:
            assert want <= got, f"{len(want - got)} true records missing"
        else:
            full += 1
            assert len(want) >= cap - len(foreign)
    assert full == 1, "the heavy hour's answer is not full"
    c = s.counters()
    assert fault_count(c, "foreign") == len(queries)
    assert endpoint_count(c, "/api/v1/flows", 200) == len(queries)
    rates = s.set_faults(foreign=0)
    assert rates.get("foreign") == 0, rates
    for ip, S, E, peer in queries:
        want = truth_ids(s, ip, S, E, peer)
        got = set(check_records(s.flows(ip, S, E, peer), S, E, ip=ip,
                                peer=peer))
        if len(want) < cap:
            assert got == want, f"{ip} [{S},{E}) != truth once the rate is 0"
        else:
            assert len(got) == cap and got <= want
    assert fault_count(s.counters(), "foreign") == len(queries)


def test_fault_scope_all(make_sim):
    s = fault_sim(make_sim, "--fail-500", "1", "--fault-scope", "all")
    q = steady_query(s)
    for path, params in (("/api/v1/info", None), ("/api/v1/flows", q),
                         ("/api/v1/applications", None),
                         ("/api/v1/hostgroups", None),
                         ("/api/v1/exporters", None)):
        error_body(*s.get(path, params), 500)
    assert s.get("/_sim/truth", q)[0] == 200
    assert s.get("/_sim/scenario")[0] == 200
    assert fault_count(s.counters(), "500") == 5


def test_fault_rate_half_mixes(make_sim):
    s = fault_sim(make_sim, "--fail-500", "0.5")
    q = steady_query(s)
    q["end"] = q["start"] + 10 * MIN
    seen = Counter(s.get("/api/v1/flows", q)[0] for _ in range(40))
    assert set(seen) == {200, 500}, f"statuses over 40 requests: {seen}"
    c = s.counters()
    assert fault_count(c, "500") == seen[500]
    assert endpoint_count(c, "/api/v1/flows", 200) == seen[200]
    assert endpoint_count(c, "/api/v1/flows", 500) == seen[500]


def test_fault_rates_mix_several(make_sim):
    s = fault_sim(make_sim, "--fail-503", "0.3", "--fail-429", "0.3",
                  "--retry-after", "2")
    q = steady_query(s)
    q["end"] = q["start"] + 10 * MIN
    seen = Counter()
    for _ in range(40):
        st, hdrs, _ = s.get("/api/v1/flows", q)
        seen[st] += 1
        if st == 429:
            assert hdrs.get("Retry-After") == "2"
    assert set(seen) == {200, 429, 503}, f"statuses over 40 requests: {seen}"


def test_fault_seed_reproducible(make_sim):
    def run(seed):
        s = make_sim("--now", NOW_ISO, "--fail-500", "0.5",
                     "--fault-seed", seed)
        q = steady_query(s)
        q["end"] = q["start"] + 10 * MIN
        return [s.get("/api/v1/flows", q)[0] for _ in range(24)]
    a, b, c = run("99"), run("99"), run("100")
    assert a == b, "same --fault-seed, different fault draws"
    assert a != c, "different --fault-seed, same 24 fault draws"


def test_fault_401_expired_token(make_sim):
    """--fail-401: 401 with a JSON error whatever the token, as when a
    token expired; the right token works again once the rate is 0."""
    s = fault_sim(make_sim, "--token", "tok-401", "--fail-401", "1")
    q = steady_query(s)
    doc = error_body(*s.get("/api/v1/flows", q, token="tok-401"), 401)
    assert "token" in doc["error"], doc
    assert s.get("/api/v1/info", token="tok-401")[0] == 200, "/info faulted"
    c = s.counters()
    assert fault_count(c, "401") == 1
    assert endpoint_count(c, "/api/v1/flows", 401) == 1
    s.set_faults(**{"401": 0})
    assert s.get("/api/v1/flows", q, token="tok-401")[0] == 200


def test_faults_endpoint_seed_replays(make_sim):
    """POST /_sim/faults?seed=N starts the fault draws again: the same
    seed, the same sequence of faulted and clean answers."""
    s = make_sim("--now", NOW_ISO, "--fail-500", "0.5")
    q = steady_query(s)
    q["end"] = q["start"] + 10 * MIN

    def draws(seed):
        s.set_faults(seed=seed)
        return [s.get("/api/v1/flows", q)[0] for _ in range(24)]
    a, b, c = draws(5), draws(5), draws(6)
    assert a == b, "the same seed, other draws"
    assert a != c, "another seed, the same 24 draws"
    error_body(*s.post("/_sim/faults", {"seed": "x"}), 400)


def find_key(doc, key):
    if isinstance(doc, dict):
        if key in doc:
            return doc[key]
        for v in doc.values():
            r = find_key(v, key)
            if r is not None:
                return r
    return None


def test_faults_endpoint(make_sim):
    s = make_sim("--now", NOW_ISO)
    q = steady_query(s)
    assert s.get("/api/v1/flows", q)[0] == 200
    rates = s.set_faults(fail_500=1)
    assert find_key(rates, "500") == 1, f"answer does not show 500=1: {rates}"
    error_body(*s.get("/api/v1/flows", q), 500)
    rates = s.set_faults(**{"500": 0, "html": 1})
    assert find_key(rates, "500") == 0 and find_key(rates, "html") == 1
    status, _, body = s.get("/api/v1/flows", q)
    assert status == 200 and b"<html" in body.lower()
    # rates adding up to more than 1 are refused, and change nothing
    error_body(*s.post("/_sim/faults", {"slow": 0.25}), 400)
    status, _, body = s.get("/api/v1/flows", q)
    assert status == 200 and b"<html" in body.lower()
    s.set_faults(html=0.75)
    rates = s.set_faults(slow=0.25)  # missing ones keep their value
    assert find_key(rates, "html") == 0.75 and find_key(rates, "slow") == 0.25
    assert find_key(rates, "500") == 0
    s.set_faults(html=0, slow=0)
    status, _, body = s.get("/api/v1/flows", q)
    assert status == 200 and "flows" in json.loads(body)


# ---- bad input to flowsim itself --------------------------------------------

GOOD_LINES = ("# a test scenario\n"
              "steady name=a addr=10.9.0.1 flows=100 peers=198.18.0.0/15 "
              "pool=50\n")
LINE3 = [r"line\s*3\b", r":3\b"]

BAD_INPUTS = {
    "unknown-option": (["--bogus-flag"], None, ["bogus-flag"]),
    "max-records-0": (["--max-records", "0"], None, ["max-records"]),
    "max-records-word": (["--max-records", "12x"], None,
                         ["max-records", "12x"]),
    "match-foo": (["--match", "foo"], None, ["foo", "match"]),
    "rates-sum": (["--fail-500", "0.6", "--fail-503", "0.5"], None,
                  ["rate", "sum", "add up", "exceed", "total"]),
    "rate-above-1": (["--slow", "1.5"], None, ["slow", "1.5"]),
    "rate-negative": (["--html", "-0.1"], None, ["html", "-0.1"]),
    "days-0": (["--days", "0"], None, ["days"]),
    "days-401": (["--days", "401"], None, ["days", "401"]),
    "bad-now": (["--now", "yesterday"], None, ["now", "yesterday"]),
    "bad-fault-scope": (["--fault-scope", "everything"], None,
                        ["fault-scope", "everything"]),
    "missing-scenario": (["--scenario", "/nonexistent/x.scn"], None,
                         ["x.scn"]),
    "missing-token-file": (["--token-file", "/nonexistent/tok.txt"], None,
                           ["tok.txt"]),
    "seed-word": (["--seed", "abc"], None, ["seed", "abc"]),
    "slow-ms-negative": (["--slow-ms", "-5"], None, ["slow-ms", "-5"]),
    "missing-value": (["--max-records"], None, ["max-records"]),
    "scenario-unknown-kind": (
        [], GOOD_LINES + "wobbly name=w addr=10.9.0.2 flows=10\n",
        ["wobbly"] + LINE3),
    "scenario-missing-name": (
        [], GOOD_LINES + "steady addr=10.9.0.2 flows=10 "
        "peers=198.18.0.0/15\n", ["name"] + LINE3),
    "scenario-bad-address": (
        [], GOOD_LINES + "steady name=b addr=10.0.1.300 flows=10 "
        "peers=198.18.0.0/15\n", ["10.0.1.300"] + LINE3),
    "scenario-bad-peers": (
        [], GOOD_LINES + "steady name=b addr=10.9.0.2 flows=10 "
        "peers=198.18.0.0/40\n", ["198.18.0.0/40"] + LINE3),
    "scenario-duplicate-name": (
        [], GOOD_LINES + "steady name=a addr=10.9.0.3 flows=10 "
        "peers=198.18.0.0/15\n",
        ["duplicate", "unique", "twice", "already"] + LINE3),
    "scenario-flows-0": (
        [], GOOD_LINES + "steady name=b addr=10.9.0.3 flows=0 "
        "peers=198.18.0.0/15\n", LINE3),
    "scenario-flows-too-many": (
        [], GOOD_LINES + "steady name=b addr=10.9.0.3 flows=10000001 "
        "peers=198.18.0.0/15\n", ["10000001"] + LINE3),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_exits_2(flowsim_path, tmp_path, case):
    args, scenario_text, names = BAD_INPUTS[case]
    args = list(args)
    if scenario_text is not None:
        f = tmp_path / "bad.scn"
        f.write_text(scenario_text)
        args += ["--scenario", str(f)]
    pf = tmp_path / "port"
    errf = tmp_path / "stderr"
    with open(errf, "wb") as err:
        p = subprocess.Popen([str(flowsim_path), *args,
                              "--listen", "127.0.0.1:0",
                              "--port-file", str(pf)],
                             stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + 5
        while p.poll() is None and time.monotonic() < deadline \
                and not pf.exists():
            time.sleep(0.02)
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            pytest.fail(f"flowsim accepted {args} and kept running")
    stderr = errf.read_text(errors="replace")
    assert p.returncode == 2, \
        f"exit status {p.returncode}, want 2; stderr: {stderr!r}"
    low = stderr.lower()
    assert any(re.search(n, low) if n in LINE3 else n.lower() in low
               for n in names), \
        f"stderr does not name the problem (want one of {names}): {stderr!r}"


KINDS = {"steady", "heavy", "bursty", "scan", "flood"}


def parse_scenario_text(text):
    out = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        assert words[0] in KINDS, f"unknown kind in printed scenario: {line}"
        kv = {}
        for w in words[1:]:
            assert "=" in w, f"word without '=': {w!r} in {line}"
            k, v = w.split("=", 1)
            kv[k] = v
        assert "name" in kv, line
        out.append((words[0], kv))
    return out


def test_print_scenario_round_trip(sim, scen, flowsim_path, make_sim,
                                   tmp_path):
    p = subprocess.run([str(flowsim_path), "--print-scenario"],
                       capture_output=True, timeout=10, text=True)
    assert p.returncode == 0, p.stderr
    lines = parse_scenario_text(p.stdout)
    names = [kv["name"] for _, kv in lines]
    assert len(names) == len(set(names))
    assert {"steady", "heavy", "scan", "flood"} <= {k for k, _ in lines}
    assert sorted(names) == sorted(s["name"] for s in scen["streams"])
    f = tmp_path / "printed.scn"
    f.write_text(p.stdout)
    s2 = make_sim(*sim.args, "--scenario", str(f))
    assert s2.scenario() == scen
    assert scenario_digests(s2, scen) == scenario_digests(sim, scen)


def test_custom_scenario(make_sim, tmp_path):
    f = tmp_path / "custom.scn"
    f.write_text(
        "# custom\n"
        "steady name=s1 addr=10.77.0.1 flows=2000 peers=198.18.0.0/24 "
        "pool=100 groups=11\n"
        "\n"
        "scan   name=sc victim=10.77.0.1 attacker=203.0.113.9 day=-2 "
        "at=10:00:00 span=500 flows=3000   # a comment\n"
        "flood  name=fl victim=10.77.0.2 day=-2 at=03:17:00.250 flows=700\n"
        "steady name=s6 addr=2001:db8:77::1 flows=1000 "
        "peers=2001:db8:ff::/48 pool=50\n")
    s = make_sim("--now", NOW_ISO, "--scenario", str(f))
    sc = {x["name"]: x for x in s.scenario()["streams"]}
    assert sorted(sc) == ["fl", "s1", "s6", "sc"]
    assert sc["s1"]["kind"] == "steady" and sc["s1"]["addr"] == "10.77.0.1"
    assert net(sc["s1"]["peers"]) == net("198.18.0.0/24")
    scan_, flood = sc["sc"], sc["fl"]
    assert scan_["kind"] == "scan" and addr(scan_["addr"]) == addr("10.77.0.1")
    assert addr(scan_["attacker"]) == addr("203.0.113.9")
    assert scan_["start"] == YDAY0 - DAY + 10 * HOUR
    assert scan_["end"] == scan_["start"] + 500
    assert scan_["flows"] == 3000
    assert flood["start"] == YDAY0 - DAY + 3 * HOUR + 17 * MIN + 250
    assert flood["end"] == flood["start"] + 1
    assert count(s, "203.0.113.9", scan_["start"], scan_["end"]) == 3000
    assert count(s, "203.0.113.9", YDAY0 - 2 * DAY, TODAY0 + DAY) == 3000
    assert count(s, "10.77.0.1", scan_["start"], scan_["end"],
                 "203.0.113.9/32") == 3000
    assert count(s, "10.77.0.2", flood["start"], flood["end"]) == 700
    assert count(s, "10.77.0.2", YDAY0 - 3 * DAY, TODAY0 + DAY) == 700
    # the steady hosts: flows a day (+-10%), peers from their prefix and pool
    for name, pfx, pool, flows in (("s1", "198.18.0.0/24", 100, 2000),
                                   ("s6", "2001:db8:ff::/48", 50, 1000)):
        a = sc[name]["addr"]
        recs = s.flows(a, YDAY0, TODAY0)
        check_records(recs, YDAY0, TODAY0, ip=a, peer=pfx)
        n = count(s, a, YDAY0, TODAY0)
        assert len(recs) == n
        assert 0.89 * flows <= n <= 1.11 * flows, f"{name}: {n} flows a day"
        peers = set()
        for r in recs:
            for k, g in (("src", "src_groups"), ("dst", "dst_groups")):
                if addr(r[k]) == addr(a):
                    if name == "s1":
                        assert 11 in r.get(g, []), \
                            f"host side lacks group 11: {r}"
                else:
                    peers.add(addr(r[k]))
        assert 1 < len(peers) <= pool, f"{name}: {len(peers)} peers"


# ---- the default scenario ---------------------------------------------------

def test_default_steady_hosts(sim, scen):
    hosts = streams(scen, "steady")
    assert any(v4(h) for h in hosts)
    for h in hosts:
        n = count(sim, h["addr"], YDAY0, TODAY0, h["peers"])
        assert 0.89 * h["flows"] <= n <= 1.11 * h["flows"], \
            f"{h['name']}: {n} flows yesterday, scenario says {h['flows']}"


def test_default_heavy_host_2M(sim, heavy):
    counts = []
    for d in range(1, 7):
        n = count(sim, heavy["addr"], TODAY0 - d * DAY, TODAY0 - (d - 1) * DAY)
        counts.append(n)
        if n >= 2_000_000:
            break
    assert max(counts) >= 2_000_000, f"heavy host's full past days: {counts}"


def test_heavy_day_night_curve(heavy_hours):
    peak = max(range(24), key=lambda i: heavy_hours[i])
    assert peak in (13, 14), f"busiest hour {peak}: {heavy_hours}"
    ratio = heavy_hours[2] / heavy_hours[peak]
    assert 0.28 <= ratio <= 0.40, \
        f"02:00 hour / busiest hour = {ratio:.3f}, want about 1/3"
    assert min(range(24), key=lambda i: heavy_hours[i]) in (1, 2)


def test_default_scan(sim, scan):
    assert scan["end"] - scan["start"] <= 1000
    n = count(sim, scan["attacker"], scan["start"], scan["start"] + 1000,
              scan["addr"])
    assert n >= 10_000, f"scan holds {n} flows in one second"
    assert n == scan["flows"]
    # a slice: TCP SYNs from the attacker to the victim, distinct ports
    t = sim.truth(scan["attacker"], scan["start"], scan["start"] + 50,
                  list="records")
    recs = t["records"]
    assert len(recs) > 10
    ports = Counter()
    for r in recs:
        assert addr(r["src"]) == addr(scan["attacker"]), r
        assert addr(r["dst"]) == addr(scan["addr"]), r
        assert r.get("proto") == 6 and r.get("tcp_flags", 0) & 2, r
        ports[r["dport"]] += 1
    assert max(ports.values()) == 1, "scan ports repeat"


def test_default_flood(sim, scen, cap):
    floods = streams(scen, "flood")
    assert floods, "default scenario has no flood"
    f = floods[0]
    assert f["end"] - f["start"] == 1
    t = sim.truth(f["addr"], f["start"], f["start"] + 1, list="records")
    recs = [r for r in t["records"] if addr(r["dst"]) == addr(f["addr"])]
    assert len(recs) > max(cap, DEFAULT_MAX_RECORDS), \
        f"flood holds {len(recs)} flows in one ms"
    srcs = {addr(r["src"]) for r in recs}
    assert len(srcs) == len(recs), \
        f"{len(recs)} flood flows from only {len(srcs)} sources"
    got = sim.flows(f["addr"], f["start"], f["start"] + 1)
    assert len(got) == cap


def test_default_ipv6_host(sim, v6host):
    assert count(sim, v6host["addr"], YDAY0, TODAY0) > 0


def test_default_flows_cross_midnight(sim, scen):
    crossing = 0
    for M in (YDAY0, TODAY0):
        for h in streams(scen, "steady"):
            t = sim.truth(h["addr"], M - HOUR, M, list="records")
            crossing += sum(1 for r in t["records"] if r.get("end", 0) >= M)
    assert crossing > 0, "no steady flow crosses midnight"


def test_default_bursty(sim, scen):
    b = streams(scen, "bursty")
    if not b:
        pytest.skip("no bursty stream in the default scenario")
    b = b[0]
    buckets = [count(sim, b["addr"], YDAY0 + i * 10 * MIN,
                     YDAY0 + (i + 1) * 10 * MIN, b["peers"])
               for i in range(144)]
    total = sum(buckets)
    assert total > 0
    top = sum(sorted(buckets, reverse=True)[:10])
    assert top >= 0.8 * total, \
        f"the 10 busiest 10-minute buckets hold {top} of {total}"


# ---- the live edge and --days -----------------------------------------------

def test_live_edge(sim, heavy, make_sim):
    later = make_sim(*[a if a != NOW_ISO else "2026-11-29T12:30:00Z"
                       for a in sim.args])
    assert later.info()["now"] == NOW_MS + 30 * MIN
    h = heavy["addr"]
    delay = 120 * SEC
    # nothing from the future
    assert count(sim, h, NOW_MS + 1, NOW_MS + HOUR) == 0
    assert sim.flows(h, NOW_MS + 1, NOW_MS + HOUR) == []
    # older than the export delay: final, the same for both clocks
    a = sim.truth(h, NOW_MS - 10 * MIN, NOW_MS - delay)
    b = later.truth(h, NOW_MS - 10 * MIN, NOW_MS - delay)
    assert a["count"] > 0 and a == b
    # the last export delay: partly there, complete later
    edge_a = truth_ids(sim, h, NOW_MS - delay, NOW_MS + 1)
    edge_b = truth_ids(later, h, NOW_MS - delay, NOW_MS + 1)
    assert edge_a < edge_b, "flows inside the export delay all visible"
    assert len(edge_a) > 0, "no flow inside the export delay is visible yet"


def test_days_option(make_sim, steady):
    s = make_sim("--now", NOW_ISO, "--days", "2")
    sc = s.scenario()
    assert sc["days"] == 2 and sc["first_day"] == YDAY0
    assert count(s, steady["addr"], YDAY0 - DAY, YDAY0) == 0
    assert count(s, steady["addr"], YDAY0, TODAY0) > 0
    for days in ("1", "60", "400"):
        sc = make_sim("--now", NOW_ISO, "--days", days).scenario()
        assert sc["days"] == int(days)
        assert sc["first_day"] == TODAY0 - (int(days) - 1) * DAY
    # days older than 90 (past retention_days) hold flows with --days 120;
    # a day is the same whatever --days is (it depends on the date only)
    old = TODAY0 - 100 * DAY
    s120 = make_sim("--now", NOW_ISO, "--days", "120")
    s400 = make_sim("--now", NOW_ISO, "--days", "400")
    a = s120.truth(steady["addr"], old, old + DAY)
    assert a["count"] > 0 and a == s400.truth(steady["addr"], old, old + DAY)


# ---- the process ------------------------------------------------------------

def test_sigint_clean_exit(make_sim):
    s = make_sim("--now", NOW_ISO)
    assert s.get("/api/v1/info")[0] == 200
    rc = s.stop(check=False, sig=signal.SIGINT)
    assert rc == 0, f"exit status {rc} after SIGINT\n{s.stderr_text()[-2000:]}"
    assert s.stop_duration < 3


def test_log_one_line_a_request(make_sim):
    s = make_sim("--now", NOW_ISO, "--log")
    q = steady_query(s)
    before = s.stderr_text().count("/api/v1/")
    for path, params in (("/api/v1/info", None), ("/api/v1/flows", q),
                         ("/api/v1/flows", {"ip": "x"})):
        s.get(path, params)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        lines = [ln for ln in s.stderr_text().splitlines() if "/api/v1/" in ln]
        if len(lines) - before >= 3:
            break
        time.sleep(0.05)
    assert len(lines) - before == 3, f"log lines: {lines}"


def test_real_clock_by_default(make_sim):
    s = make_sim()
    now = time.time() * 1000
    info = s.info()
    assert abs(info["now"] - now) < 10_000, f"/info now {info['now']}, " \
                                            f"real clock {now:.0f}"
    sc = s.scenario()
    assert sc["first_day"] % DAY == 0
    assert sc["first_day"] + 6 * DAY <= info["now"] < sc["first_day"] + 7 * DAY
