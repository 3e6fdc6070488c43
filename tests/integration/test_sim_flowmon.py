"""flowsim --dialect flowmon as a client sees it: the Flowmon REST API of
docs/flowsim.md ("The Flowmon dialect"), over plain HTTP, checked against
that page and the simulator's own truth (/_sim/flowmon/truth, /_sim/truth),
never against hard-coded answers.

Run:  /usr/bin/python3 -m pytest tests/integration/test_sim_flowmon.py -q
"""

import http.client
import json
import re
import time
import urllib.parse
from collections import Counter
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from conftest import Sim

NOW_ISO = "2026-11-29T12:00:00Z"
NOW_MS = 1795953600000
MIN = 60 * 1000
SLOT = 5 * MIN
HOUR = 60 * MIN
DAY = 24 * HOUR
TODAY0 = NOW_MS - 12 * HOUR
YDAY0 = TODAY0 - DAY
CHANNELS = ["p2055", "p4739", "p9995"]
ALL_COLS = ["ts", "te", "td", "pr", "sa", "da", "sp", "dp", "flg", "tos", "pkt",
            "byt", "fl", "in", "out", "sas", "das", "ra"]
KEYS = {"sa": "srcip", "da": "dstip", "sp": "srcport:p", "dp": "dstport:p"}
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$")
SCENARIO = """\
steady name=web addr=10.0.1.10 flows=20000 peers=198.18.0.0/15 pool=4000
bursty name=six addr=2001:db8::5 flows=4000 peers=2001:db8:1::/48 pool=300
flood  name=flood victim=10.0.1.40 day=-1 at=03:17:00.250 flows=15000
"""
FLOOD_MS = YDAY0 + (3 * 60 + 17) * MIN + 250


def local(ms, zone="UTC"):
    """ms as "YYYY-MM-DD HH:MM" of a zone (a listing's from/to)."""
    return datetime.fromtimestamp(ms / 1000, ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


def row_ms(text, zone="UTC"):
    """A row's "YYYY-MM-DD HH:MM:SS.mmm" of a zone to ms."""
    assert TIME_RE.match(text), f"bad row time {text!r}"
    dt = datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=ZoneInfo(zone))
    return round(dt.timestamp() * 1000)


def key(row):
    return tuple(sorted(row.items()))


def multipart(fields):
    boundary = "----flowsimTestBoundary7MA4YWxk"
    parts = []
    for name, value in fields.items():
        parts.append(f"--{boundary}\r\nContent-Disposition: form-data; "
                     f"name=\"{name}\"\r\n\r\n{value}\r\n")
    body = "".join(parts) + f"--{boundary}--\r\n"
    return body.encode(), f"multipart/form-data; boundary={boundary}"


class FM:
    """A Flowmon REST client: its bearer token."""

    def __init__(self, sim, user="admin", password="flowsim"):
        self.sim = sim
        self.token = None
        self.refresh = None
        if user is not None:
            st, doc = self.login(user, password)
            assert st == 200, f"login: {st} {doc}"

    def raw(self, method, path, params=None, body=None, ctype=None, auth=True,
            headers=None):
        hdrs = dict(headers or {})
        if auth and self.token:
            hdrs.setdefault("Authorization", f"bearer {self.token}")
        if body is not None and ctype:
            hdrs["Content-Type"] = ctype
        url = path + ("?" + urllib.parse.urlencode(params) if params else "")
        conn = http.client.HTTPConnection("127.0.0.1", self.sim.port, timeout=60)
        try:
            conn.request(method, url, body=body, headers=hdrs)
            resp = conn.getresponse()
            return resp.status, resp.headers, resp.read()
        finally:
            conn.close()

    def form(self, path, fields, auth=True):
        st, hdrs, data = self.raw("POST", path, body=urllib.parse.urlencode(fields),
                                  ctype="application/x-www-form-urlencoded", auth=auth)
        return st, hdrs, data

    def login(self, user, password, client="invea-tech"):
        st, _, data = self.form("/resources/oauth/token",
                                {"grant_type": "password", "client_id": client,
                                 "username": user, "password": password}, auth=False)
        doc = json.loads(data)
        if st == 200:
            self.token = doc["access_token"]
            self.refresh = doc["refresh_token"]
        return st, doc

    def refresh_grant(self, token=None):
        st, _, data = self.form("/resources/oauth/token",
                                {"grant_type": "refresh_token", "client_id": "invea-tech",
                                 "refresh_token": token or self.refresh}, auth=False)
        doc = json.loads(data)
        if st == 200:
            self.token = doc["access_token"]
            self.refresh = doc["refresh_token"]
        return st, doc

    def listing(self, search, showonly=10000, output=None, how="GET"):
        """(status, headers, doc) of a listing request."""
        fields = {"search": json.dumps(search)}
        if showonly is not None:
            fields["showonly"] = str(showonly)
        if output is not None:
            fields["output"] = json.dumps(output)
        path = "/rest/fmc/analysis/flows"
        if how == "GET":
            st, hdrs, data = self.raw("GET", path, params=fields)
        elif how == "form":
            st, hdrs, data = self.form(path, fields)
        else:
            body, ctype = multipart(fields)
            st, hdrs, data = self.raw("POST", path, body=body, ctype=ctype)
        return st, hdrs, json.loads(data) if data else None

    def result(self, rid):
        st, hdrs, data = self.raw("GET", f"/rest/fmc/analysis/results/{rid}")
        return st, hdrs, data

    def rows(self, search, showonly=10000, output=ALL_COLS, how="GET", polls=50):
        """The rows of a listing: polls past the 202s; [] on 204."""
        st, _, doc = self.listing(search, showonly, output, how)
        assert st == 200, f"listing: {st} {doc}"
        for _ in range(polls):
            st, _, data = self.result(doc["id"])
            if st == 202:
                continue
            if st == 204:
                assert data == b""
                return []
            assert st == 200, f"results: {st} {data[:300]!r}"
            rows = json.loads(data)
            assert isinstance(rows, list)
            return rows
        pytest.fail(f"result {doc['id']} still 202 after {polls} polls")


def search(frm, to, filt=None, channels=CHANNELS, zone="UTC", **more):
    s = {"from": local(frm, zone), "to": local(to, zone), "profile": "live",
         "channels": list(channels)}
    if filt is not None:
        s["filter"] = filt
    s.update(more)
    return s


def truth(sim, lo, hi, filt=None, channels=None, rows=True):
    params = {"from": lo, "to": hi}
    if filt is not None:
        params["filter"] = filt
    if channels is not None:
        params["channels"] = ",".join(channels)
    if not rows:
        params["list"] = "count"
    return sim.get_json("/_sim/flowmon/truth", params)


# ---- fixtures -------------------------------------------------------------------

@pytest.fixture(scope="module")
def scenario_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("fmscen") / "scenario"
    p.write_text(SCENARIO)
    return p


def start(tmp_path_factory, scenario_file, *extra):
    s = Sim(tmp_path_factory.mktemp("fmsim"),
            ["--dialect", "flowmon", "--now", NOW_ISO, "--days", "3", "--seed", "5",
             "--scenario", str(scenario_file), *extra])
    s.start()
    return s


@pytest.fixture(scope="module")
def fm(tmp_path_factory, scenario_file):
    s = start(tmp_path_factory, scenario_file)
    try:
        yield s
    finally:
        s.stop(check=True)


@pytest.fixture(scope="module")
def client(fm):
    return FM(fm)


@pytest.fixture
def make_fm(tmp_path_factory, scenario_file):
    started = []

    def make(*extra):
        started.append(start(tmp_path_factory, scenario_file, *extra))
        return started[-1]
    try:
        yield make
    finally:
        for s in started:
            s.stop(check=True)


# ---- login and tokens -----------------------------------------------------------

def test_login_answer_and_refusals(fm):
    c = FM(fm, user=None)
    st, doc = c.login("admin", "flowsim")
    assert st == 200
    assert set(doc) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert doc["token_type"] == "bearer" and doc["expires_in"] == 3600
    assert re.fullmatch(r"[0-9a-f]{64}", doc["access_token"])
    assert FM(fm, user=None).login("admin", "wrong")[1]["error"] == "invalid_grant"
    st, doc = FM(fm, user=None).login("admin", "flowsim", client="other")
    assert (st, doc["error"]) == (400, "invalid_client")
    # the path in another case (the guide's JavaScript), the form as multipart
    body, ctype = multipart({"grant_type": "password", "client_id": "invea-tech",
                             "username": "admin", "password": "flowsim"})
    st, _, data = c.raw("POST", "/resources/oAuth/token", body=body, ctype=ctype, auth=False)
    assert st == 200 and json.loads(data)["token_type"] == "bearer"


def test_bearer_required(fm, client):
    st, _, data = client.raw("GET", "/rest/fmc/profiles", auth=False)
    assert st == 401 and json.loads(data)["error"] == "invalid_token"
    st, _, _ = client.raw("GET", "/rest/fmc/profiles",
                          headers={"Authorization": "bearer " + "0" * 64})
    assert st == 401
    st, _, _ = client.raw("GET", "/rest/fmc/profiles",
                          headers={"Authorization": f"Bearer {client.token}"})
    assert st == 200
    st, _, _ = client.raw("GET", "/rest/fmc/profiles",
                          headers={"Authorization": f"Basic {client.token}"})
    assert st == 401


def test_tokens_expire_and_refresh(make_fm):
    sim = make_fm("--flowmon-token-ttl", "2")
    c = FM(sim)
    first = c.refresh
    st, doc = c.refresh_grant()                    # uses the login's refresh token
    assert st == 200 and doc["expires_in"] == 2
    assert c.raw("GET", "/rest/fmc/profiles")[0] == 200
    time.sleep(2.2)                                # past expires_in: a lower bound
    st, _, data = c.raw("GET", "/rest/fmc/profiles")
    assert st == 401 and "expired" in json.loads(data)["error_description"]
    assert c.refresh_grant()[0] == 200             # the refresh token outlives it
    assert c.raw("GET", "/rest/fmc/profiles")[0] == 200
    assert c.refresh_grant(first)[1]["error"] == "invalid_grant"   # used once
    # every live token expires at once on demand
    st, _, _ = sim.post("/_sim/sessions/expire")
    assert st == 200
    assert c.raw("GET", "/rest/fmc/profiles")[0] == 401
    assert sim.counters()["flowmon"]["expired_401"] >= 2


# ---- profiles, channels, columns ------------------------------------------------

def test_profiles_channels_columns(client):
    st, _, data = client.raw("GET", "/rest/fmc/profiles")
    prof = json.loads(data)
    assert st == 200 and [p["id"] for p in prof] == ["live"]
    assert [c["id"] for c in prof[0]["channels"]] == CHANNELS
    st, _, data = client.raw("GET", "/rest/fmc/profiles/channels",
                             params={"profileId": "live"})
    chans = json.loads(data)
    assert [c["id"].rsplit("/", 1)[1] for c in chans] == CHANNELS
    assert all(c["id"].startswith("live/") for c in chans)
    assert client.raw("GET", "/rest/fmc/profiles/channels",
                      params={"profileId": "nope"})[0] == 404
    st, _, data = client.raw("GET", "/rest/fmc/analysis/nfcolumns")
    cols = json.loads(data)
    assert [c["id"] for c in cols] == ALL_COLS
    assert cols[0] == {"id": "ts", "name": "Start Time - first seen",
                       "group": "Date and time", "aggregate": 0, "output": 1,
                       "typeHint": "Datetime"}


# ---- results: 202, 200, 204 -------------------------------------------------------

def test_202_then_200(make_fm):
    sim = make_fm("--flowmon-pending", "3")
    c = FM(sim)
    st, _, doc = c.listing(search(TODAY0 + 9 * HOUR, TODAY0 + 9 * HOUR))
    assert st == 200 and set(doc) == {"id"} and isinstance(doc["id"], int)
    for _ in range(3):
        st, hdrs, data = c.result(doc["id"])
        assert st == 202
        assert json.loads(data) == {
            "code": 202, "status": "error",
            "message": "{_\"Requested result is not available yet.\"}"}
    st, _, data = c.result(doc["id"])
    assert st == 200 and len(json.loads(data)) > 0
    assert sim.counters()["flowmon"]["pending_202"] == 3


def test_forgotten_and_empty_204(make_fm):
    sim = make_fm("--flowmon-result-ttl", "1", "--flowmon-pending", "0")
    c = FM(sim)
    st, _, doc = c.listing(search(TODAY0 + 9 * HOUR, TODAY0 + 9 * HOUR))
    assert c.result(doc["id"])[0] == 200
    time.sleep(1.2)                                # past the result's lifetime
    st, hdrs, data = c.result(doc["id"])
    assert st == 204 and data == b""
    assert c.result(99999)[0] == 204               # never made
    # no flow matches: 204 too (counted apart)
    st, _, doc = c.listing(search(TODAY0 + 9 * HOUR, TODAY0 + 9 * HOUR,
                                  "proto tcp and proto udp"))
    assert c.result(doc["id"])[0] == 204
    f = sim.counters()["flowmon"]
    assert f["gone_204"] == 2 and f["empty_204"] == 1


# ---- rows ---------------------------------------------------------------------------

def test_rows_are_strings_with_internal_keys(fm, client):
    lo = TODAY0 + 9 * HOUR
    rows = client.rows(search(lo, lo + SLOT),
                       output=["ts", "te", "td", "pr", "sa", "sp", "da", "dp", "flg",
                               "pkt", "byt", "fl"])
    assert len(rows) > 10
    for r in rows:
        assert set(r) == {"ts", "te", "td", "pr", "srcip", "srcport:p", "dstip",
                          "dstport:p", "flg", "pkt", "byt", "fl"}
        assert all(isinstance(v, str) for v in r.values())
        assert TIME_RE.match(r["ts"]) and TIME_RE.match(r["te"])
        assert re.fullmatch(r"\d+\.\d{3}", r["td"])
        assert r["fl"] == "1" and re.fullmatch(r"[UAPRSF.]{6}", r["flg"])
        assert r["pr"] in {"TCP", "UDP", "ICMP", "ICMP6", "GRE"} or r["pr"].isdigit()
    # the same rows as the truth, which has every column
    want = {key(t) for t in truth(fm, lo, lo + 2 * SLOT)["rows"]}
    for r in client.rows(search(lo, lo + SLOT)):
        assert key(r) in want


def test_keys_by_column_ids_and_scaling(make_fm):
    sim = make_fm("--flowmon-keys", "ids", "--flowmon-scale-min", "1000")
    c = FM(sim)
    lo = TODAY0 + 9 * HOUR
    rows = c.rows(search(lo, lo), output=["sa", "dp", "byt"])
    assert rows and all(set(r) == {"sa", "dp", "byt"} for r in rows)
    scaled = [r["byt"] for r in rows if not r["byt"].isdigit()]
    assert scaled and all(re.fullmatch(r"\d+\.\d [KMGT]", v) for v in scaled)


def test_output_default_is_the_guides(client):
    rows = client.rows(search(TODAY0 + 9 * HOUR, TODAY0 + 9 * HOUR), output=None)
    want = {"ts", "td", "pr", "srcip", "srcport:p", "dstip", "dstport:p", "flg", "tos",
            "pkt", "byt", "fl"}
    assert rows and all(set(r) == want for r in rows)


def test_showonly_default_is_10(client):
    rows = client.rows(search(TODAY0 + 9 * HOUR, TODAY0 + 9 * HOUR), showonly=None)
    assert len(rows) == 10


# ---- the cap: a random subset, no order ------------------------------------------------

def test_cap_is_a_random_subset_in_no_order(fm, client):
    lo = YDAY0 + 14 * HOUR
    whole = truth(fm, lo, lo + HOUR)
    n = whole["count"]
    assert n > 300
    everything = Counter(key(r) for r in whole["rows"])
    st, _, doc = client.listing(search(lo, lo + HOUR - SLOT), showonly=100,
                                output=ALL_COLS)
    reads = []
    for _ in range(6):
        st, _, data = client.result(doc["id"])
        if st == 200:
            reads.append(json.loads(data))
    assert len(reads) >= 2
    first, second = reads[0], reads[1]
    assert len(first) == 100 and len(second) == 100
    assert not Counter(key(r) for r in first) - everything     # all real rows
    # the same id: the same subset, in another order
    assert Counter(map(key, first)) == Counter(map(key, second))
    assert [key(r) for r in first] != [key(r) for r in second]
    # another listing of the same slot: another subset
    other = client.rows(search(lo, lo + HOUR - SLOT), showonly=100)
    assert Counter(map(key, other)) != Counter(map(key, first))
    # not in the truth's (sorted) order, nor by start time
    keys = [key(r) for r in first]
    assert keys != sorted(keys)
    ts = [r["ts"] for r in first]
    assert ts != sorted(ts)
    # below the cap: the whole slot, each row once
    full = client.rows(search(lo, lo + HOUR - SLOT))
    assert Counter(map(key, full)) == everything


# ---- slots by export time ------------------------------------------------------------

def test_slots_hold_flows_by_export_time(fm, client):
    S = TODAY0 + 10 * HOUR
    E = S + HOUR
    doc = fm.get_json("/_sim/truth", {"ip": "10.0.1.10", "start": S - HOUR,
                                      "end": E + HOUR, "list": "records"})
    recs = doc["records"]
    # listing the slots [S, E - 5 min] of host 10.0.1.10: every flow whose
    # export time lies in [S, E), wherever it started
    rows = client.rows(search(S, E - SLOT, "host 10.0.1.10"),
                       output=["ts", "sa", "sp", "da", "dp"])

    def rkey(src, sport, dst, dport, ts):
        return (src, str(sport), dst, str(dport), ts)
    got = Counter(rkey(r["srcip"], r["srcport:p"], r["dstip"], r["dstport:p"],
                       row_ms(r["ts"])) for r in rows)
    # ICMP: the destination port is written TYPE.CODE
    want = Counter(rkey(x["src"], x["sport"], x["dst"],
                        f"{x['icmp_type']}.{x['icmp_code']}" if x["proto"] in (1, 58)
                        else x["dport"], x["start"])
                   for x in recs if S <= x["fm_export"] < E)
    assert got == want
    # which is not "flows that started in [S, E)": some of those were
    # exported after E, and some that started before S are in
    started = [x for x in recs if S <= x["start"] < E]
    assert any(x["fm_export"] >= E for x in started)
    assert any(x["start"] < S and x["fm_export"] >= S for x in recs)
    # every export lies between the end and the active timeout after it
    assert all(x["end"] <= x["fm_export"] <= x["end"] + 300 * 1000 for x in recs)


def test_to_is_inclusive_and_adjacent_windows_add_up(fm, client):
    S = TODAY0 + 8 * HOUR
    one = client.rows(search(S, S))                # from == to: one slot
    assert Counter(map(key, one)) == Counter(key(r) for r in truth(fm, S, S + SLOT)["rows"])
    a = client.rows(search(S, S + 2 * SLOT))
    b = client.rows(search(S + 3 * SLOT, S + 5 * SLOT))
    ab = client.rows(search(S, S + 5 * SLOT))
    assert Counter(map(key, a)) + Counter(map(key, b)) == Counter(map(key, ab))


def test_to_exclusive_option(make_fm):
    sim = make_fm("--flowmon-to-exclusive")
    c = FM(sim)
    S = TODAY0 + 8 * HOUR
    st, _, doc = c.listing(search(S, S))
    assert st == 405 and doc["validationResults"][0]["field"] == "search.to"
    rows = c.rows(search(S, S + SLOT))
    assert Counter(map(key, rows)) == Counter(key(r) for r in truth(sim, S, S + SLOT)["rows"])


def test_open_slot_is_not_served(make_fm):
    # the clock 2.5 minutes into the slot of 12:00: flows were exported in
    # it, but its file is not closed
    sim = make_fm("--now", "2026-11-29T12:02:30Z")
    c = FM(sim)
    now_slot = NOW_MS
    recs = sim.get_json("/_sim/truth", {"ip": "10.0.1.10", "start": NOW_MS - HOUR,
                                        "end": NOW_MS + SLOT // 2,
                                        "list": "records"})["records"]
    assert any(now_slot <= x["fm_export"] < now_slot + SLOT // 2 for x in recs)
    assert c.rows(search(now_slot, now_slot)) == []
    assert c.rows(search(now_slot - SLOT, now_slot - SLOT)) != []


def test_collector_zone(make_fm):
    zone = "America/New_York"
    sim = make_fm("--flowmon-tz", zone)
    c = FM(sim)
    S = YDAY0 + 15 * HOUR                          # 10:00 in New York (EST)
    s = search(S, S, zone=zone)
    assert s["from"].endswith(" 10:00")
    rows = c.rows(s)
    want = truth(sim, S, S + SLOT)["rows"]
    assert rows and Counter(map(key, rows)) == Counter(map(key, want))
    # row times are New York's: within the active timeout and longest flow
    # before the slot, never after its end
    for r in rows:
        assert row_ms(r["te"], zone) < S + SLOT
        assert row_ms(r["te"], zone) >= S - 300 * 1000


# ---- the filter ----------------------------------------------------------------------

FILTER_SPLITS = [
    ["proto tcp", "proto udp", "not (proto tcp or proto udp)"],
    ["ipv4", "ipv6"],
    ["src net 198.18.0.0/16", "not src net 198.18.0.0/16"],
    ["dst port <= 1023", "dst port >= 1024 and dst port <= 5000", "dst port > 5000"],
    ["port in [ 53 443 ]", "not port in [ 53 443 ]"],
]


def test_filter_parts_add_up(fm, client):
    S = YDAY0 + 13 * HOUR
    whole = Counter(map(key, client.rows(search(S, S + 2 * SLOT))))
    assert sum(whole.values()) == truth(fm, S, S + 3 * SLOT, rows=False)["count"]
    for parts in FILTER_SPLITS:
        total = Counter()
        for f in parts:
            got = Counter(map(key, client.rows(search(S, S + 2 * SLOT, f))))
            assert got, f"{f}: no rows"
            assert not (total & got), f"{f} overlaps an earlier part"
            total += got
        assert total == whole, parts


def test_flood_slot_split_by_filters(fm, client):
    """The flood (15,000 flows inside 1 ms) fills its slots past the cap;
    disjoint filters on the peer's prefix split it into parts below it."""
    S = FLOOD_MS - FLOOD_MS % SLOT
    n = truth(fm, S, S + 3 * SLOT, "host 10.0.1.40", rows=False)["count"]
    assert n == 15000
    capped = client.rows(search(S, S + 2 * SLOT, "host 10.0.1.40"))
    assert len(capped) == 10000
    total = 0
    for half in ["src net 0.0.0.0/1", "not src net 0.0.0.0/1"]:
        part = client.rows(search(S, S + 2 * SLOT, f"host 10.0.1.40 and {half}"))
        assert 0 < len(part) < 10000
        total += len(part)
    assert total == n


def test_get_and_post_forms_agree(client):
    S = TODAY0 + 9 * HOUR
    s = search(S, S, "proto udp")
    got = [Counter(map(key, client.rows(s, how=how))) for how in ("GET", "form", "multipart")]
    assert got[0] and got[0] == got[1] == got[2]


def test_channels_partition(fm, client):
    S = TODAY0 + 9 * HOUR
    whole = Counter(map(key, client.rows(search(S, S))))
    parts = [Counter(map(key, client.rows(search(S, S, channels=[ch])))) for ch in CHANNELS]
    assert all(parts) and sum(parts, Counter()) == whole
    routers = {r["ra"] for r in client.rows(search(S, S, channels=["p2055"]))}
    assert routers == {"192.0.2.1"}


# ---- 405 ---------------------------------------------------------------------------------

BAD_LISTINGS = [
    ("search.from", {"from": "2026-11-28 10:01"}),
    ("search.from", {"from": "2026-11-28 10:00:00"}),
    ("search.from", {"from": "2026-11-28T10:00"}),
    ("search.to", {"to": "2026-11-28 09:55"}),
    ("search.to", {"to": "2026-12-31 10:00"}),
    ("search.profile", {"profile": "mail"}),
    ("search.channels", {"channels": []}),
    ("search.channels", {"channels": ["live/p2055"]}),
    ("search.channels", {"channels": ["p1"]}),
    ("search.filter", {"filter": "proto tcp and"}),
    ("search.filter", {"filter": "flags S"}),
    ("search.filter", {"filter": "port != 80"}),
    ("search.listing.aggregateBy", {"listing": {"aggregateBy": ["srcip"]}}),
]


@pytest.mark.parametrize("field,change", BAD_LISTINGS,
                         ids=[f"{f}-{i}" for i, (f, _) in enumerate(BAD_LISTINGS)])
def test_405_names_the_field(client, field, change):
    s = search(TODAY0 + 10 * HOUR, TODAY0 + 10 * HOUR)
    s.update(change)
    st, hdrs, doc = client.listing(s)
    assert st == 405
    assert hdrs.get("X-FM-Message") == "Validation failed"
    assert doc["validationResults"][0]["field"] == field
    assert doc["validationResults"][0]["message"]


@pytest.mark.parametrize("showonly", ["10001", "0", "-1", "ten"])
def test_405_on_showonly(client, showonly):
    st, _, doc = client.listing(search(TODAY0 + 10 * HOUR, TODAY0 + 10 * HOUR),
                                showonly=showonly)
    assert st == 405 and doc["validationResults"][0]["field"] == "showonly"


def test_405_on_output_and_missing_search(client):
    st, _, doc = client.listing(search(TODAY0, TODAY0), output=["ts", "nope"])
    assert st == 405 and doc["validationResults"][0]["field"] == "output"
    st, _, data = client.raw("GET", "/rest/fmc/analysis/flows", params={"showonly": "10"})
    assert st == 405 and json.loads(data)["validationResults"][0]["field"] == "search"
    s = search(TODAY0, TODAY0)
    del s["channels"]
    st, _, doc = client.listing(s)
    assert st == 405 and doc["validationResults"][0]["field"] == "search.channels"


def test_counters_name_the_endpoints(fm, client):
    doc = fm.counters()
    assert list(doc["endpoints"])[:6] == [
        "/resources/oauth/token", "/rest/fmc/profiles", "/rest/fmc/profiles/channels",
        "/rest/fmc/analysis/nfcolumns", "/rest/fmc/analysis/flows",
        "/rest/fmc/analysis/results/{id}"]
    assert doc["flowmon"]["listings"] > 0
    scen = fm.scenario()
    assert scen["dialect"] == "flowmon" and scen["channels"] == CHANNELS
    assert scen["to_inclusive"] is True and scen["active_timeout_s"] == 300
