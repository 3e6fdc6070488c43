"""flowsim --dialect sna as a client sees it: the Secure Network Analytics
flow search API of docs/flowsim.md ("The SNA dialect"), checked against the
page and against the simulator's own truth (/_sim/truth, key=sna), never
against hard-coded answers.

Run:  /usr/bin/python3 -m pytest tests/integration/test_sim_sna.py -q
"""

import gzip
import http.client
import ipaddress
import json
import re
import time
from collections import Counter
from datetime import datetime, timezone

import pytest

from conftest import Sim
from test_sim_contract import digest_of

NOW_ISO = "2026-11-29T12:00:00Z"
NOW_MS = 1795953600000
SEC = 1000
MIN = 60 * SEC
HOUR = 60 * MIN
DAY = 24 * HOUR
TODAY0 = NOW_MS - 12 * HOUR
YDAY0 = TODAY0 - DAY
TENANT = 102
CAP = 2000                              # the module sim's --max-records
BASE = ["--dialect", "sna", "--now", NOW_ISO, "--seed", "1",
        "--export-delay", "120"]

JWT_RE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-"
                     r"[0-9a-f]{12}$")
QID_RE = re.compile(r"^[0-9a-f]{24}$")
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000\+0000$")
PROTO_NAMES = {1: "ICMP", 6: "TCP", 17: "UDP", 47: "GRE", 58: "IPV6-ICMP"}
SNA_ENDPOINTS = [
    "/token/v2/authenticate", "/token", "/sw-reporting/v1/tenants",
    "/sw-reporting/v2/tenants/{tenant}/flows/queries",
    "/sw-reporting/v2/tenants/{tenant}/flows/queries/{id}",
    "/sw-reporting/v2/tenants/{tenant}/flows/queries/{id}/results",
    "/smc-configuration/rest/v1/tenants/{tenant}/tags",
    "/sw-reporting/v1/tenants/{tenant}/internalHosts/tags",
]
EP_CREATE, EP_POLL, EP_RESULTS = SNA_ENDPOINTS[3:6]


# ---- a small SNA client -----------------------------------------------------

def iso(ms):
    """Whole seconds UTC with Z, as a request wants them."""
    return datetime.fromtimestamp(ms // 1000, timezone.utc) \
        .strftime("%Y-%m-%dT%H:%M:%SZ")


def sna_ms(text):
    """ms of '2026-11-28T10:00:09.000+0000'."""
    assert TIME_RE.match(text), f"bad SNA time {text!r}"
    return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.000+0000")
               .replace(tzinfo=timezone.utc).timestamp()) * 1000


def search_body(ip, S, E, peer=None, limit=None):
    body = {"startDateTime": iso(S), "endDateTime": iso(E),
            "subject": {"ipAddresses": {"includes": [ip]}}}
    if peer is not None:
        body["peer"] = {"ipAddresses": {"includes": [peer]}}
    if limit is not None:
        body["recordLimit"] = limit
    return body


class Client:
    """One SNA user agent: its cookies, its XSRF token."""

    def __init__(self, sim, user="admin", password="flowsim"):
        self.sim = sim
        self.jwt = None
        self.xsrf = None
        if user is not None:
            st, hdrs, body = self.login(user, password)
            assert st == 200, f"login: {st} {body[:200]!r}"

    def raw(self, method, path, body=None, headers=None, cookie=True,
            xsrf=True, ctype="application/json"):
        """(status, headers, body bytes); bodies dicts are sent as JSON."""
        hdrs = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        if body is not None:
            hdrs.setdefault("Content-Type", ctype)
        if cookie and self.jwt:
            hdrs["Cookie"] = f"stealthwatch.jwt={self.jwt}; XSRF-TOKEN={self.xsrf}"
        if xsrf and self.xsrf and method != "GET":
            hdrs["X-XSRF-TOKEN"] = self.xsrf
        conn = http.client.HTTPConnection("127.0.0.1", self.sim.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
            if resp.headers.get("Content-Encoding", "").lower() == "gzip":
                data = gzip.decompress(data)
            return resp.status, resp.headers, data
        finally:
            conn.close()

    def login(self, user, password, form=None):
        import urllib.parse
        form = form if form is not None else urllib.parse.urlencode(
            {"username": user, "password": password})
        st, hdrs, body = self.raw("POST", "/token/v2/authenticate", form,
                                  cookie=False, xsrf=False,
                                  ctype="application/x-www-form-urlencoded")
        if st == 200:
            for c in hdrs.get_all("Set-Cookie") or []:
                name, _, rest = c.partition("=")
                value = rest.split(";")[0]
                if name == "stealthwatch.jwt":
                    self.jwt = value
                elif name == "XSRF-TOKEN":
                    self.xsrf = value
        return st, hdrs, body

    def json(self, method, path, body=None, expect=200, **kw):
        st, hdrs, data = self.raw(method, path, body, **kw)
        assert st == expect, f"{method} {path}: {st}, want {expect}: {data[:300]!r}"
        try:
            return json.loads(data)
        except ValueError:
            pytest.fail(f"{method} {path}: not JSON: {data[:300]!r}")

    # the search lifecycle
    def create(self, body, tenant=TENANT):
        doc = self.json("POST", f"/sw-reporting/v2/tenants/{tenant}/flows/queries",
                        body, expect=201)
        q = doc["data"]["query"]
        assert QID_RE.match(q["id"]), f"search id {q['id']!r}"
        assert q["status"] == "IN_PROGRESS" and q["percentComplete"] == 0, q
        assert q["domainId"] == str(tenant), q
        return q["id"]

    def poll(self, qid, tenant=TENANT):
        return self.json("GET", f"/sw-reporting/v2/tenants/{tenant}/flows/"
                         f"queries/{qid}")["data"]["query"]

    def results(self, qid, tenant=TENANT):
        doc = self.json("GET", f"/sw-reporting/v2/tenants/{tenant}/flows/"
                        f"queries/{qid}/results")
        assert isinstance(doc["data"]["flows"], list), doc
        return doc["data"]["flows"]

    def wait(self, qid, tenant=TENANT, deadline_s=10, running=("IN_PROGRESS",)):
        """Poll while the status is one of 'running'; the polled objects."""
        seen = []
        end = time.monotonic() + deadline_s
        while True:
            q = self.poll(qid, tenant)
            seen.append(q)
            if q["status"] not in running:
                return seen
            assert time.monotonic() < end, f"search still running: {seen[-3:]}"
            time.sleep(0.02)

    def search(self, ip, S, E, peer=None, limit=None, tenant=TENANT):
        qid = self.create(search_body(ip, S, E, peer, limit), tenant)
        assert self.wait(qid, tenant)[-1]["status"] == "COMPLETED"
        return self.results(qid, tenant)


def sna_error(st, hdrs, data, want):
    """An SNA error answer: {"errors":[{"code": str, "message": str}]}."""
    assert st == want, f"status {st}, want {want}: {data[:300]!r}"
    assert hdrs.get("Content-Type", "").startswith("application/json"), hdrs
    doc = json.loads(data)
    errs = doc.get("errors")
    assert isinstance(errs, list) and errs, doc
    assert isinstance(errs[0].get("code"), str) and errs[0]["code"], doc
    assert isinstance(errs[0].get("message"), str) and errs[0]["message"], doc
    return errs[0]["message"]


def truth(sim, ip, S, E, peer=None, list=None, key="sna"):
    params = {"ip": ip, "start": S, "end": E, "peer": peer, "list": list,
              "key": key}
    return sim.get_json("/_sim/truth", params)


def keys_of(recs):
    keys = [f"{r['flowCollectorId']}:{r['id']}" for r in recs]
    dups = [k for k, n in Counter(keys).items() if n > 1]
    assert not dups, f"duplicate (flowCollectorId, id) in one answer: {dups[:5]}"
    return keys


def counters(sim):
    return sim.get_json("/_sim/counters")


def ep_count(c, ep, status):
    return c["endpoints"].get(ep, {}).get(str(status), 0)


# ---- fixtures -----------------------------------------------------------------

@pytest.fixture(scope="module")
def sna(tmp_path_factory):
    s = Sim(tmp_path_factory.mktemp("snasim"),
            BASE + ["--max-records", str(CAP), "--sna-query-ms", "30",
                    "--sna-tenants", "2"])
    s.start()
    try:
        yield s
    finally:
        s.stop(check=True)


@pytest.fixture(scope="module")
def client(sna):
    return Client(sna)


@pytest.fixture(scope="module")
def scen(sna):
    return sna.get_json("/_sim/scenario")


def stream(scen, name):
    return [s for s in scen["streams"] if s["name"] == name][0]


# ---- login, cookies, XSRF, sessions ---------------------------------------------

def test_login_sets_the_cookies(sna):
    c = Client(sna, user=None)
    st, hdrs, body = c.login("admin", "flowsim")
    assert st == 200 and body == b""
    cookies = hdrs.get_all("Set-Cookie")
    assert len(cookies) == 2, cookies
    jwt = [x for x in cookies if x.startswith("stealthwatch.jwt=")][0]
    xs = [x for x in cookies if x.startswith("XSRF-TOKEN=")][0]
    attrs = [a.strip() for a in jwt.split(";")[1:]]
    assert "Path=/" in attrs and "HttpOnly" in attrs, jwt
    assert "Path=/" in [a.strip() for a in xs.split(";")[1:]], xs
    assert JWT_RE.match(c.jwt), c.jwt
    assert UUID_RE.match(c.xsrf), c.xsrf
    # a second login is a second session; both work
    d = Client(sna)
    assert (d.jwt, d.xsrf) != (c.jwt, c.xsrf)
    for x in (c, d):
        assert x.json("GET", "/sw-reporting/v1/tenants")["data"]


@pytest.mark.parametrize("form", [
    "username=admin&password=wrong", "username=root&password=flowsim",
    "username=admin", "password=flowsim", "", "username=admin&password=",
])
def test_login_refused(sna, form):
    c = Client(sna, user=None)
    st, hdrs, body = c.login(None, None, form=form)
    sna_error(st, hdrs, body, 401)
    assert not hdrs.get_all("Set-Cookie")


def test_credentials_from_options_and_file(make_sim, tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("s3cr&t p%ss+\nignored second line\n")
    s = make_sim(*BASE, "--sna-user", "jim", "--sna-password-file", str(pw))
    assert Client(s, "jim", "s3cr&t p%ss+").jwt
    st, hdrs, body = Client(s, user=None).login("jim", "s3cr&t p%ss")
    sna_error(st, hdrs, body, 401)


def test_requests_without_a_session_get_json_401(sna, client):
    anon = Client(sna, user=None)
    paths = [("GET", "/sw-reporting/v1/tenants"),
             ("GET", f"/smc-configuration/rest/v1/tenants/{TENANT}/tags/"),
             ("POST", f"/sw-reporting/v2/tenants/{TENANT}/flows/queries"),
             ("GET", f"/sw-reporting/v2/tenants/{TENANT}/flows/queries/"
                     f"{'0' * 24}"),
             ("DELETE", "/token")]
    for method, path in paths:
        sna_error(*anon.raw(method, path, {} if method == "POST" else None),
                  401)
    anon.jwt, anon.xsrf = client.jwt[:-2] + "xx", client.xsrf
    sna_error(*anon.raw("GET", "/sw-reporting/v1/tenants"), 401)


def test_xsrf_header_rules(sna):
    c = Client(sna)
    body = search_body("10.0.1.10", YDAY0, YDAY0 + MIN)
    path = f"/sw-reporting/v2/tenants/{TENANT}/flows/queries"
    before = counters(sna)["sna"]["created"]
    sna_error(*c.raw("POST", path, body, xsrf=False), 403)
    sna_error(*c.raw("POST", path, body, headers={"X-XSRF-TOKEN": "nope"},
                     xsrf=False), 403)
    assert counters(sna)["sna"]["created"] == before, "a refused POST searched"
    # GETs need no header; the right header makes the POST work
    assert c.json("GET", "/sw-reporting/v1/tenants", xsrf=False)
    c.create(body)
    # another session's XSRF token is not this session's
    other = Client(sna)
    sna_error(*c.raw("POST", path, body, headers={"X-XSRF-TOKEN": other.xsrf},
                     xsrf=False), 403)
    # logout is not a GET either; refused, the session lives on
    sna_error(*c.raw("DELETE", "/token", xsrf=False), 403)
    assert c.json("GET", "/sw-reporting/v1/tenants")


def test_xsrf_cookie_must_come_back(sna):
    """A Manager compares X-XSRF-TOKEN with the XSRF-TOKEN cookie of the
    same request (and the cookie must be the session's): a client that
    sends back only stealthwatch.jwt and the header is refused."""
    c, other = Client(sna), Client(sna)
    body = search_body("10.0.1.10", YDAY0, YDAY0 + MIN)
    path = f"/sw-reporting/v2/tenants/{TENANT}/flows/queries"
    n0 = counters(sna)["sna"]
    jwt = f"stealthwatch.jwt={c.jwt}"
    refused = [
        # the jwt and the header only: the old driver's way
        {"Cookie": jwt, "X-XSRF-TOKEN": c.xsrf},
        # a cookie that differs from the header
        {"Cookie": f"{jwt}; XSRF-TOKEN={other.xsrf}", "X-XSRF-TOKEN": c.xsrf},
        # the cookie and no header
        {"Cookie": f"{jwt}; XSRF-TOKEN={c.xsrf}"},
        # cookie and header agree, but they are another session's
        {"Cookie": f"{jwt}; XSRF-TOKEN={other.xsrf}", "X-XSRF-TOKEN": other.xsrf},
        {"Cookie": f"{jwt}; XSRF-TOKEN=x", "X-XSRF-TOKEN": "x"},
    ]
    for hdrs in refused:
        msg = sna_error(*c.raw("POST", path, body, headers=hdrs, cookie=False,
                               xsrf=False), 403)
        assert "XSRF" in msg, msg
    # logout is checked the same way: refused, and the session lives on
    sna_error(*c.raw("DELETE", "/token", headers=refused[0], cookie=False,
                     xsrf=False), 403)
    n1 = counters(sna)["sna"]
    assert n1["created"] == n0["created"], "a refused POST searched"
    assert n1["logouts"] == n0["logouts"], "a refused DELETE logged out"
    assert n1["xsrf_403"] - n0["xsrf_403"] == len(refused) + 1
    # GETs need neither; the cookie with the header in any order works
    assert c.json("GET", "/sw-reporting/v1/tenants", headers={"Cookie": jwt},
                  cookie=False)
    ok = {"Cookie": f"XSRF-TOKEN={c.xsrf}; {jwt}", "X-XSRF-TOKEN": c.xsrf}
    st, _, data = c.raw("POST", path, body, headers=ok, cookie=False, xsrf=False)
    assert st == 201, data[:300]
    c.create(body)


def test_xsrf_header_only_option(make_sim):
    """--sna-xsrf-header-only: the header alone, compared with the
    session's token (the dialect before this check was added)."""
    s = make_sim(*BASE, "--sna-xsrf-header-only", "--sna-query-ms", "0")
    c = Client(s)
    path = f"/sw-reporting/v2/tenants/{TENANT}/flows/queries"
    jwt = {"Cookie": f"stealthwatch.jwt={c.jwt}"}
    body = search_body("10.0.1.10", YDAY0, YDAY0 + MIN)
    st, _, data = c.raw("POST", path, body, cookie=False,
                        headers={**jwt, "X-XSRF-TOKEN": c.xsrf}, xsrf=False)
    assert st == 201, data[:300]
    sna_error(*c.raw("POST", path, body, cookie=False,
                     headers={**jwt, "X-XSRF-TOKEN": "x"}, xsrf=False), 403)
    st, _, _ = c.raw("DELETE", "/token", cookie=False,
                     headers={**jwt, "X-XSRF-TOKEN": c.xsrf}, xsrf=False)
    assert st == 204


def test_xsrf_token_goes_stale(make_sim):
    """--sna-xsrf-rotate-s N: N s after its login a session's XSRF token
    changes and nobody is told: a session that worked gets 403 on a POST
    (GETs still work) until the client logs in again."""
    s = make_sim(*BASE, "--sna-xsrf-rotate-s", "2", "--sna-query-ms", "0")
    body = search_body("10.0.1.10", YDAY0, YDAY0 + MIN)
    path = f"/sw-reporting/v2/tenants/{TENANT}/flows/queries"
    t_login = time.monotonic()
    c = Client(s)
    c.create(body)
    assert time.monotonic() - t_login < 1.5, "too slow to test the rotation"
    time.sleep(max(0, 2.3 - (time.monotonic() - t_login)))
    msg = sna_error(*c.raw("POST", path, body), 403)
    assert "XSRF" in msg, msg
    sna_error(*c.raw("DELETE", "/token"), 403)
    assert c.json("GET", "/sw-reporting/v1/tenants")
    assert counters(s)["sna"]["xsrf_403"] == 2
    # a new login: a new session and token, working
    d = Client(s)
    d.create(body)
    st, _, _ = d.raw("DELETE", "/token")
    assert st == 204


def test_logout(sna):
    """DELETE /token ends the session: 204, then 401 for it; counted in
    /_sim/counters as "logouts" (and logins as "logins"), so that a test
    can check a logout per login."""
    n0 = counters(sna)["sna"]
    c = Client(sna)
    st, hdrs, body = c.raw("DELETE", "/token")
    assert st == 204 and body == b"", (st, body)
    # both cookies are cleared, as a Manager's recorded logout does
    gone = sorted(x.split(";")[0] for x in hdrs.get_all("Set-Cookie"))
    assert gone == ['XSRF-TOKEN=""', 'stealthwatch.jwt=""'], gone
    sna_error(*c.raw("GET", "/sw-reporting/v1/tenants"), 401)
    sna_error(*c.raw("POST", f"/sw-reporting/v2/tenants/{TENANT}/flows/queries",
                     search_body("10.0.1.10", YDAY0, YDAY0 + MIN)), 401)
    # a second logout finds no session: 401, not counted
    sna_error(*c.raw("DELETE", "/token"), 401)
    # other sessions are untouched
    d = Client(sna)
    assert d.json("GET", "/sw-reporting/v1/tenants")
    n1 = counters(sna)["sna"]
    assert n1["logins"] - n0["logins"] == 2
    assert n1["logouts"] - n0["logouts"] == 1
    assert ep_count(counters(sna), "/token", 204) >= 1


def test_no_xsrf_option(make_sim):
    s = make_sim(*BASE, "--sna-no-xsrf", "--sna-query-ms", "0")
    c = Client(s)
    assert c.jwt and c.xsrf is None
    c.create(search_body("10.0.1.10", YDAY0, YDAY0 + MIN))
    st, _, _ = c.raw("DELETE", "/token")
    assert st == 204


def html_401(st, hdrs, data):
    assert st == 401, f"status {st}, want 401: {data[:200]!r}"
    assert hdrs.get("Content-Type", "").startswith("text/html"), hdrs
    assert data.lstrip().lower().startswith(b"<!doctype html"), data[:100]


def test_session_expires_absolutely(make_sim):
    s = make_sim(*BASE, "--sna-session-s", "1")
    c = Client(s)
    t_login = time.monotonic()
    # using the session does not extend it: by 1.3 s after the login
    # answer it must be over, however often it was used
    while time.monotonic() - t_login < 1.3:
        c.raw("GET", "/sw-reporting/v1/tenants")
        time.sleep(0.1)
    html_401(*c.raw("GET", "/sw-reporting/v1/tenants"))
    html_401(*c.raw("POST", f"/sw-reporting/v2/tenants/{TENANT}/flows/queries",
                    search_body("10.0.1.10", YDAY0, YDAY0 + MIN)))
    assert counters(s)["sna"]["expired_401"] >= 2
    # logging in again gives a new, working session
    d = Client(s)
    assert d.json("GET", "/sw-reporting/v1/tenants")


def test_sessions_expire_on_demand(make_sim):
    sna = make_sim(*BASE, "--sna-query-ms", "0")
    a, b = Client(sna), Client(sna)
    qid = a.create(search_body("10.0.1.10", YDAY0, YDAY0 + MIN))
    n0 = counters(sna)["sna"]["expired_401"]
    r = sna.post("/_sim/sessions/expire")
    assert r[0] == 200 and json.loads(r[2])["expired"] >= 2
    for x in (a, b):
        html_401(*x.raw("GET", "/sw-reporting/v1/tenants"))
    assert counters(sna)["sna"]["expired_401"] - n0 == 2
    assert counters(sna)["sna"]["sessions"] == 0
    # a new session still reaches a search made under the old one
    c = Client(sna)
    assert c.wait(qid)[-1]["status"] == "COMPLETED"


# ---- tenants and tags ---------------------------------------------------------

def test_tenants(sna, client):
    doc = client.json("GET", "/sw-reporting/v1/tenants")
    assert [t["id"] for t in doc["data"]] == [102, 103]
    assert all(isinstance(t["displayName"], str) and t["displayName"]
               for t in doc["data"])
    assert sna.get_json("/_sim/scenario")["tenants"] == [102, 103]
    assert client.json("GET", "/sw-reporting/v1/tenants/") == doc


# Accept headers that admit text/plain, the only type the tenants list is
# served as, and headers that do not (406)
ACCEPT_OK = [None, "", "*/*", "text/*", "text/plain", "TEXT/Plain", "*",
             "application/json, text/plain, */*",
             "text/plain; charset=utf-8", "application/json;q=1, */*;q=0.1",
             "text/html, image/gif, image/jpeg, *; q=.2, */*; q=.2",
             "text/plain;q=0.001", "application/json, bogus, text/*"]
ACCEPT_406 = ["application/json", "application/json, application/xml",
              "text/html", "text/plain;q=0", "text/plain;q=0, */*",
              "text/*;q=0, */*", "*/*;q=0", "*/*;q=0.0, application/json",
              "text/plain;q=2", "text/plain;q=x", "bogus", "text/plain/x",
              "*/plain"]


@pytest.mark.parametrize("accept", ACCEPT_OK)
def test_tenants_accept_lenient(client, accept):
    hdrs = {} if accept is None else {"Accept": accept}
    st, h, data = client.raw("GET", "/sw-reporting/v1/tenants", headers=hdrs)
    assert st == 200, f"Accept {accept!r}: {st} {data[:200]!r}"
    assert h["Content-Type"].startswith("text/plain"), h
    assert [t["id"] for t in json.loads(data)["data"]] == [102, 103]


@pytest.mark.parametrize("accept", ACCEPT_406)
def test_tenants_accept_strict(client, accept):
    msg = sna_error(*client.raw("GET", "/sw-reporting/v1/tenants",
                                headers={"Accept": accept}), 406)
    assert "text/plain" in msg, msg


def test_tenants_accept_order_and_option(sna, make_sim):
    # the session is checked first: no session, 401 whatever Accept says
    anon = Client(sna, user=None)
    sna_error(*anon.raw("GET", "/sw-reporting/v1/tenants",
                        headers={"Accept": "application/json"}), 401)
    # only the tenants list is text/plain: the other answers ignore Accept
    c = Client(sna)
    assert c.json("GET", f"/smc-configuration/rest/v1/tenants/{TENANT}/tags",
                  headers={"Accept": "application/json"})
    c0 = ep_count(counters(sna), "/sw-reporting/v1/tenants", 406)
    c.raw("GET", "/sw-reporting/v1/tenants", headers={"Accept": "application/json"})
    assert ep_count(counters(sna), "/sw-reporting/v1/tenants", 406) == c0 + 1
    # --sna-any-accept: served whatever Accept says
    s = make_sim(*BASE, "--sna-any-accept")
    st, h, data = Client(s).raw("GET", "/sw-reporting/v1/tenants",
                                headers={"Accept": "application/json"})
    assert st == 200 and h["Content-Type"].startswith("text/plain")


def test_tenants_as_text_and_single(make_sim):
    # --sna-tenants-text is the default now, and still accepted
    s = make_sim(*BASE, "--sna-tenants-text")
    c = Client(s)
    st, hdrs, data = c.raw("GET", "/sw-reporting/v1/tenants")
    assert st == 200 and hdrs["Content-Type"].startswith("text/plain"), hdrs
    assert [t["id"] for t in json.loads(data)["data"]] == [TENANT]
    sna_error(*c.raw("POST", "/sw-reporting/v2/tenants/103/flows/queries",
                     search_body("10.0.1.10", YDAY0, YDAY0 + MIN)), 404)


def test_second_tenant_is_empty(sna, client, scen):
    web = stream(scen, "web-1")["addr"]
    S, E = YDAY0 + 10 * HOUR, YDAY0 + 10 * HOUR + 10 * MIN
    assert truth(sna, web, S, E)["count"] > 0
    assert client.search(web, S, E, tenant=103) == []
    tags = client.json("GET", "/smc-configuration/rest/v1/tenants/103/tags")
    assert tags == client.json("GET", f"/smc-configuration/rest/v1/tenants/"
                                      f"{TENANT}/tags")


def test_unknown_tenant(client):
    for method, path, body in [
            ("POST", "/sw-reporting/v2/tenants/999/flows/queries",
             search_body("10.0.1.10", YDAY0, YDAY0 + MIN)),
            ("GET", "/smc-configuration/rest/v1/tenants/999/tags/", None),
            ("GET", "/smc-configuration/rest/v1/tenants/abc/tags/1", None)]:
        sna_error(*client.raw(method, path, body), 404)


def test_tags_name_the_reference_host_groups(sim, client, scen):
    """The tags are the reference dialect's host groups, hostile names
    included; list items carry "name" (not "displayName"); each detail
    names its parent, location and ranges."""
    ref = {g["id"]: g for g in sim.get_json("/api/v1/hostgroups")["hostgroups"]}
    tags = client.json("GET", f"/smc-configuration/rest/v1/tenants/{TENANT}"
                              f"/tags/")["data"]
    assert all(set(t) == {"id", "name"} for t in tags), tags[:3]
    assert {t["id"]: t["name"] for t in tags} == \
        {i: g["name"] for i, g in ref.items()}
    assert client.json("GET", f"/smc-configuration/rest/v1/tenants/{TENANT}"
                              f"/tags")["data"] == tags
    assert any("\n" in n or '"' in n or n.startswith("=")
               for n in (t["name"] for t in tags))
    for i, g in ref.items():
        d = client.json("GET", f"/smc-configuration/rest/v1/tenants/{TENANT}"
                               f"/tags/{i}")["data"]
        assert d["id"] == i and d["name"] == g["name"]
        assert d["parentId"] == g["parent"] and d["domainId"] == TENANT
        root = i
        while ref[root]["parent"]:
            root = ref[root]["parent"]
        assert d["location"] == ("OUTSIDE" if root == 20 else "INSIDE")
        assert isinstance(d["ranges"], list)
    # the ranges of group 11 hold the stream that lists it
    d11 = client.json("GET", f"/smc-configuration/rest/v1/tenants/{TENANT}"
                             f"/tags/11")["data"]
    assert stream(scen, "web-1")["addr"] in d11["ranges"]
    for bad in ("9999", "x", "11x"):
        sna_error(*client.raw("GET", f"/smc-configuration/rest/v1/tenants/"
                                     f"{TENANT}/tags/{bad}"), 404)


def test_internal_host_tags_carry_display_name(sna, client):
    """GET /sw-reporting/v1/tenants/{id}/internalHosts/tags: the same ids
    and names as the tag list, each item with "displayName"."""
    tags = client.json("GET", f"/smc-configuration/rest/v1/tenants/{TENANT}"
                              f"/tags")["data"]
    for suffix in ("", "/"):
        ih = client.json("GET", f"/sw-reporting/v1/tenants/{TENANT}/"
                                f"internalHosts/tags{suffix}")["data"]
        assert all(set(t) == {"id", "displayName"} for t in ih), ih[:3]
        assert [(t["id"], t["displayName"]) for t in ih] == \
            [(t["id"], t["name"]) for t in tags]
    assert client.json("GET", "/sw-reporting/v1/tenants/103/internalHosts/"
                              "tags")["data"] == ih
    sna_error(*client.raw("GET", "/sw-reporting/v1/tenants/999/internalHosts/"
                                 "tags"), 404)
    sna_error(*client.raw("POST", f"/sw-reporting/v1/tenants/{TENANT}/"
                                  f"internalHosts/tags"), 405)
    anon = Client(sna, user=None)
    sna_error(*anon.raw("GET", f"/sw-reporting/v1/tenants/{TENANT}/"
                               f"internalHosts/tags"), 401)
    n = ep_count(counters(sna), "/sw-reporting/v1/tenants/{tenant}/"
                                "internalHosts/tags", 200)
    assert n >= 3


def test_tags_display_name_option(make_sim):
    """--sna-tags-display-name: tag list items carry both names (for a
    client written against the old list)."""
    s = make_sim(*BASE, "--sna-tags-display-name")
    tags = Client(s).json("GET", f"/smc-configuration/rest/v1/tenants/"
                                 f"{TENANT}/tags/")["data"]
    assert tags and all(set(t) == {"id", "name", "displayName"} and
                        t["name"] == t["displayName"] for t in tags), tags[:3]


# ---- the search lifecycle -----------------------------------------------------

def test_lifecycle(make_sim, scen):
    s = make_sim(*BASE, "--sna-query-ms", "400")
    c = Client(s)
    web = stream(scen, "web-1")["addr"]
    S, E = YDAY0 + 10 * HOUR, YDAY0 + 10 * HOUR + 5 * MIN
    qid = c.create(search_body(web, S, E))
    seen = c.wait(qid)
    st = [q["status"] for q in seen]
    pct = [q["percentComplete"] for q in seen]
    assert st[-1] == "COMPLETED" and pct[-1] == 100
    assert set(st[:-1]) <= {"IN_PROGRESS"}
    assert all(isinstance(p, int) and 0 <= p <= 100 for p in pct)
    assert pct == sorted(pct), f"percentComplete went back: {pct}"
    assert all(q["id"] == qid and q["domainId"] == str(TENANT) for q in seen)
    # polls after completion keep saying so; results read twice agree
    assert c.poll(qid)["status"] == "COMPLETED"
    a, b = c.results(qid), c.results(qid)
    assert sorted(keys_of(a)) == sorted(keys_of(b))
    assert digest_of(keys_of(a)) == truth(s, web, S, E)["digest"]


def test_zero_delay_completes_at_once(make_sim):
    s = make_sim(*BASE, "--sna-query-ms", "0")
    c = Client(s)
    qid = c.create(search_body("10.0.1.10", YDAY0, YDAY0 + 5 * MIN))
    assert c.poll(qid)["status"] == "COMPLETED"


def test_reading_early_loses_records(make_sim, scen):
    """Before COMPLETED, results hold only a part: stop on the status."""
    s = make_sim(*BASE, "--sna-query-ms", "60000")
    c = Client(s)
    web = stream(scen, "web-1")["addr"]
    S, E = YDAY0 + 10 * HOUR, YDAY0 + 11 * HOUR
    want = truth(s, web, S, E, list="ids")
    qid = c.create(search_body(web, S, E))
    q = c.poll(qid)
    assert q["status"] == "IN_PROGRESS" and q["percentComplete"] < 100
    part = keys_of(c.results(qid))
    assert len(part) == want["count"] // 2 and set(part) < set(want["ids"])


@pytest.mark.parametrize("option,status", [("--sna-fail-query", "FAILED"),
                                           ("--sna-cancel-query", "CANCELED")])
def test_failed_and_canceled_searches(make_sim, option, status):
    s = make_sim(*BASE, "--sna-query-ms", "0", option, "1")
    c = Client(s)
    qid = c.create(search_body("10.0.1.10", YDAY0, YDAY0 + HOUR))
    assert c.wait(qid)[-1]["status"] == status
    assert c.results(qid) == []
    cnt = counters(s)["sna"]
    assert (cnt["failed"], cnt["canceled"]) == \
        ((1, 0) if status == "FAILED" else (0, 1))


def test_extra_statuses_before_in_progress(make_sim, scen):
    """--sna-status-extra PENDING,QUEUED: a search shows those statuses,
    in order, then IN_PROGRESS, then COMPLETED; its results are the same."""
    s = make_sim(*BASE, "--sna-query-ms", "900",
                 "--sna-status-extra", "PENDING,QUEUED")
    c = Client(s)
    web = stream(scen, "web-1")["addr"]
    S, E = YDAY0 + 10 * HOUR, YDAY0 + 10 * HOUR + 5 * MIN
    doc = c.json("POST", f"/sw-reporting/v2/tenants/{TENANT}/flows/queries",
                 search_body(web, S, E), expect=201)["data"]["query"]
    assert doc["status"] == "PENDING" and doc["percentComplete"] == 0, doc
    seen = c.wait(doc["id"], running=("PENDING", "QUEUED", "IN_PROGRESS"))
    order = []
    for q in seen:
        if not order or order[-1] != q["status"]:
            order.append(q["status"])
    assert order == ["PENDING", "QUEUED", "IN_PROGRESS", "COMPLETED"], order
    pct = [q["percentComplete"] for q in seen]
    assert pct == sorted(pct) and pct[-1] == 100
    assert digest_of(keys_of(c.results(doc["id"]))) == \
        truth(s, web, S, E)["digest"]


def test_failed_and_canceled_rates_together(make_sim):
    """Every search ends FAILED or CANCELED, counted as such."""
    s = make_sim(*BASE, "--sna-query-ms", "0", "--sna-fail-query", "0.5",
                 "--sna-cancel-query", "0.5")
    c = Client(s)
    ends = Counter(c.wait(c.create(search_body("10.0.1.10", YDAY0,
                                               YDAY0 + MIN)))[-1]["status"]
                   for _ in range(40))
    assert set(ends) == {"FAILED", "CANCELED"}, ends
    cnt = counters(s)["sna"]
    assert (cnt["failed"], cnt["canceled"]) == (ends["FAILED"], ends["CANCELED"])


def test_unknown_and_foreign_search_ids(client):
    qid = client.create(search_body("10.0.1.10", YDAY0, YDAY0 + MIN))
    client.wait(qid)
    bad = [("0" * 24), qid[:-1] + ("0" if qid[-1] != "0" else "1"), "xyz",
           qid + "0"]
    for b in bad:
        for suffix in ("", "/results"):
            sna_error(*client.raw("GET", f"/sw-reporting/v2/tenants/{TENANT}/"
                                         f"flows/queries/{b}{suffix}"), 404)
    # the search belongs to its tenant
    sna_error(*client.raw("GET", f"/sw-reporting/v2/tenants/103/flows/queries/"
                                 f"{qid}"), 404)


def test_searches_expire_and_are_bounded(make_sim):
    s = make_sim(*BASE, "--sna-query-ms", "0", "--sna-query-ttl-s", "1",
                 "--sna-max-queries", "2")
    c = Client(s)
    body = search_body("10.0.1.10", YDAY0, YDAY0 + MIN)
    q1, q2, q3 = c.create(body), c.create(body), c.create(body)
    t_made = time.monotonic()
    sna_error(*c.raw("GET", f"/sw-reporting/v2/tenants/{TENANT}/flows/queries/"
                            f"{q1}"), 404)
    cnt = counters(s)["sna"]
    assert cnt["dropped"] == 1 and cnt["created"] == 3
    # kept searches live at most their ttl after completion
    time.sleep(max(0, 1.2 - (time.monotonic() - t_made)))
    for q in (q2, q3):
        sna_error(*c.raw("GET", f"/sw-reporting/v2/tenants/{TENANT}/flows/"
                                f"queries/{q}/results"), 404)
    assert counters(s)["sna"]["queries"] == 0


# ---- request bodies -----------------------------------------------------------

def good_body():
    return search_body("10.0.1.10", YDAY0, YDAY0 + HOUR)


def with_(**kw):
    b = good_body()
    for k, v in kw.items():
        if v is None:
            b.pop(k, None)
        else:
            b[k] = v
    return b


@pytest.mark.parametrize("body,field", [
    ("not json", "JSON"),
    ([1, 2], "JSON"),
    (with_(startDateTime=None), "startDateTime"),
    (with_(startDateTime="2026-11-28T00:00:00.000Z"), "startDateTime"),
    (with_(startDateTime="2026-11-28T00:00:00+00:00"), "startDateTime"),
    (with_(startDateTime="2026-11-28 00:00:00Z"), "startDateTime"),
    (with_(startDateTime="2026-02-30T00:00:00Z"), "startDateTime"),
    (with_(startDateTime=1795900000), "startDateTime"),
    (with_(endDateTime="yesterday"), "endDateTime"),
    (with_(endDateTime=iso(YDAY0)), "before"),
    (with_(endDateTime=iso(YDAY0 - HOUR)), "before"),
    (with_(startDateTime=iso(YDAY0 - 32 * DAY)), "31 days"),
    (with_(recordLimit=0), "recordLimit"),
    (with_(recordLimit=-5), "recordLimit"),
    (with_(recordLimit=1.5), "recordLimit"),
    (with_(recordLimit="10"), "recordLimit"),
    (with_(subject=None), "subject"),
    (with_(subject={"ipAddresses": {"includes": []}}), "subject"),
    (with_(subject={"ipAddresses": {"includes": ["10.0.1.10", "10.0.1.11"]}}),
     "subject"),
    (with_(subject={"ipAddresses": {"includes": ["10.0.1.300"]}}), "subject"),
    (with_(subject={"ipAddresses": {"includes": [42]}}), "subject"),
    (with_(subject={"ipAddresses": ["10.0.1.10"]}), "subject"),
    (with_(subject="10.0.1.10"), "subject"),
    (with_(peer={"ipAddresses": {"includes": [f"1.2.3.{i}" for i in range(65)]}}),
     "peer"),
    (with_(peer={"ipAddresses": {"includes": ["1.2.3.4", "nope"]}}), "peer"),
    (with_(peer={"ipAddresses": {"includes": ["nope"]}}), "peer"),
])
def test_bad_bodies(sna, client, body, field):
    before = counters(sna)["sna"]["created"]
    st, hdrs, data = client.raw(
        "POST", f"/sw-reporting/v2/tenants/{TENANT}/flows/queries",
        body if not isinstance(body, str) else body)
    msg = sna_error(st, hdrs, data, 400)
    assert field.lower() in msg.lower(), f"message {msg!r} does not name {field}"
    assert counters(sna)["sna"]["created"] == before


def test_body_too_large(client):
    b = good_body()
    b["padding"] = "x" * (70 * 1024)
    sna_error(*client.raw("POST", f"/sw-reporting/v2/tenants/{TENANT}/flows/"
                                  f"queries", b), 400)


def test_ignored_filters_and_empty_peer(client, sna):
    """The full body of Cisco's sample (empty excludes, hostGroups, flow)
    is accepted; an empty peer list means no peer."""
    S, E = YDAY0 + 9 * HOUR, YDAY0 + 9 * HOUR + 10 * MIN
    b = search_body("10.0.1.10", S, E)
    b["subject"]["ipAddresses"]["excludes"] = []
    b["subject"]["hostGroups"] = {"includes": [], "excludes": []}
    b["peer"] = {"ipAddresses": {"includes": [], "excludes": []}}
    b["flow"] = {"flowDirection": "BOTH", "protocol": []}
    qid = client.create(b)
    client.wait(qid)
    assert digest_of(keys_of(client.results(qid))) == \
        truth(sna, "10.0.1.10", S, E)["digest"]


# ---- limits, subsets, shuffling -------------------------------------------------

def test_record_limit_subsets_and_order(sna, client, scen):
    db = stream(scen, "db-1")["addr"]
    S, E = YDAY0 + 12 * HOUR, YDAY0 + 16 * HOUR
    t = truth(sna, db, S, E, list="ids")
    allk = set(t["ids"])
    assert t["count"] > CAP, f"precondition: {t['count']} flows, want > {CAP}"
    qid = client.create(search_body(db, S, E))
    client.wait(qid)
    a, b = keys_of(client.results(qid)), keys_of(client.results(qid))
    assert len(a) == CAP and set(a) <= allk
    assert set(a) == set(b), "re-reading a search changed its records"
    assert a != b, "re-reading a search kept the order"
    # a new search picks a new subset
    c = keys_of(client.search(db, S, E))
    assert len(c) == CAP and set(c) <= allk and set(c) != set(a)
    # recordLimit below the cap is the limit; above it is cut to the cap
    assert len(client.search(db, S, E, limit=100)) == 100
    assert len(client.search(db, S, E, limit=10 ** 9)) == CAP


def test_unsaturated_search_is_the_truth(sna, client, scen):
    for name in ("web-1", "v6-1", "burst-1"):
        ip = stream(scen, name)["addr"]
        S, E = YDAY0 + 14 * HOUR, YDAY0 + 14 * HOUR + 20 * MIN
        t = truth(sna, ip, S, E)
        assert 0 < t["count"] < CAP, f"precondition {name}: {t['count']}"
        recs = client.search(ip, S, E)
        assert digest_of(keys_of(recs)) == t["digest"], name
        assert len(recs) == t["count"]


def test_window_is_whole_seconds(sna, client, scen):
    """[start, end) in seconds selects the flows whose start (ms) lies in
    [start*1000, end*1000): firstActiveTime in [start, end)."""
    web = stream(scen, "heavy-1")["addr"]
    S = YDAY0 + 14 * HOUR + 7 * SEC
    for width in (1, 3, 20):
        E = S + width * SEC
        recs = client.search(web, S, E)
        assert digest_of(keys_of(recs)) == truth(sna, web, S, E)["digest"]
        for r in recs:
            assert S <= sna_ms(r["statistics"]["firstActiveTime"]) < E, r


def test_day_older_than_90_days(make_sim, scen):
    """--days 120: a day 100 days before the clock holds flows, and a
    search over it gives the truth."""
    s = make_sim(*BASE, "--days", "120", "--sna-query-ms", "0")
    assert s.get_json("/_sim/scenario")["days"] == 120
    web = stream(scen, "web-1")["addr"]
    old0 = TODAY0 - 100 * DAY
    S, E = old0 + 10 * HOUR, old0 + 12 * HOUR
    want = truth(s, web, S, E)
    assert want["count"] > 0 and truth(s, web, old0, old0 + DAY)["count"] > 0
    c = Client(s)
    assert digest_of(keys_of(c.search(web, S, E))) == want["digest"]


def test_overlap_mode(make_sim, scen):
    s = make_sim(*BASE, "--match", "overlap", "--sna-query-ms", "0")
    c = Client(s)
    web = stream(scen, "web-1")["addr"]
    S, E = YDAY0 + 23 * HOUR + 59 * MIN, YDAY0 + DAY
    recs = c.search(web, S, E)
    assert digest_of(keys_of(recs)) == truth(s, web, S, E)["digest"]
    assert any(sna_ms(r["statistics"]["firstActiveTime"]) < S for r in recs), \
        "no flow began before the window: the overlap case is not exercised"
    for r in recs:
        st = r["statistics"]
        assert sna_ms(st["firstActiveTime"]) < E
        assert sna_ms(st["lastActiveTime"]) >= S


# ---- records --------------------------------------------------------------------

def check_mapping(rec, ref, ip, peer=None):
    """One SNA record against its reference record, per the page's table."""
    ipn = ipaddress.ip_network(ip, strict=False)
    pn = ipaddress.ip_network(peer, strict=False) if peer else None
    src, dst = ipaddress.ip_address(ref["src"]), ipaddress.ip_address(ref["dst"])

    def inside(a, n):
        return n is None or (a.version == n.version and a in n)
    subject_src = inside(src, ipn) and inside(dst, pn)
    sub, per = rec["subject"], rec["peer"]
    s_side, d_side = (sub, per) if subject_src else (per, sub)
    assert s_side["orientation"] == "client" and d_side["orientation"] == "server"
    assert ipaddress.ip_address(s_side["ipAddress"]) == src
    assert ipaddress.ip_address(d_side["ipAddress"]) == dst
    assert s_side["ipAddress"] == ref["src"] and d_side["ipAddress"] == ref["dst"]
    assert inside(ipaddress.ip_address(sub["ipAddress"]), ipn)
    assert rec["flowCollectorId"] == ref["exporter"]
    assert rec["tenantId"] == TENANT
    name = PROTO_NAMES.get(ref["proto"], str(ref["proto"]))
    assert rec["protocol"] == name
    assert s_side["portProtocol"]["protocol"] == name == \
        d_side["portProtocol"]["protocol"]
    ports = ref["proto"] in (6, 17)
    assert s_side["portProtocol"]["port"] == (ref["sport"] if ports else 0)
    assert d_side["portProtocol"]["port"] == (ref["dport"] if ports else 0)
    assert rec["applicationId"] == ref.get("app", -1)
    assert rec["serviceId"] == (1000 + ref["dport"]
                                if ports and ref["dport"] < 1024 else -1)
    st = rec["statistics"]
    first, last = sna_ms(st["firstActiveTime"]), sna_ms(st["lastActiveTime"])
    assert first == ref["start"] // 1000 * 1000
    assert last == ref["end"] // 1000 * 1000
    assert st["activeDuration"] == last - first
    assert st["byteCount"] == ref["bytes"] and st["packetCount"] == ref["pkts"]
    assert (s_side["bytes"], s_side["packets"]) == (ref["bytes"], ref["pkts"])
    assert (d_side["bytes"], d_side["packets"]) == (0, 0)
    assert s_side["hostGroupIds"] == ref.get("src_groups", [])
    assert d_side["hostGroupIds"] == ref.get("dst_groups", [])
    fl = ref["tcp_flags"] if ref["proto"] == 6 else 0
    syn, ack = bool(fl & 2), bool(fl & 16)
    assert s_side["finPackets"] == int(bool(fl & 1))
    assert s_side["rstPackets"] == int(bool(fl & 4))
    assert s_side["synPackets"] == int(syn and not ack)
    assert s_side["synAckPackets"] == int(syn and ack)
    for k in ("finPackets", "rstPackets", "synPackets", "synAckPackets"):
        assert d_side[k] == 0
    for k in ("vlanId", "mplsLabel"):
        assert rec[k] == -1
    assert isinstance(rec["id"], int) and 1 <= rec["id"] <= 2 ** 47


def mapped(sna, client, ip, S, E, peer=None):
    t = truth(sna, ip, S, E, peer, list="records")
    by_key = {r["sna_key"]: r for r in t["records"]}
    assert len(by_key) == t["count"] > 0
    recs = client.search(ip, S, E, peer)
    keys = keys_of(recs)
    assert set(keys) == set(by_key), "SNA records != truth"
    for k, r in zip(keys, recs):
        check_mapping(r, by_key[k], ip, peer)
    return recs, t["records"]


def test_records_map_from_the_reference(sna, client, scen):
    recs, refs = mapped(sna, client, stream(scen, "web-1")["addr"],
                        YDAY0 + 14 * HOUR, YDAY0 + 14 * HOUR + 15 * MIN)
    sides = Counter(r["subject"]["orientation"] for r in recs)
    assert sides["client"] and sides["server"], sides
    protos = {r["protocol"] for r in recs}
    assert {"TCP", "UDP"} <= protos, protos
    v6, _ = mapped(sna, client, stream(scen, "v6-1")["addr"],
                   YDAY0 + 14 * HOUR, YDAY0 + 14 * HOUR + 30 * MIN)
    assert "IPV6-ICMP" in {r["protocol"] for r in v6}


SMALL_SCAN = """\
steady name=web-1  addr=10.0.1.10 flows=5000 peers=198.18.0.0/15 pool=4000 groups=11,12
scan   name=scan-1 victim=10.0.1.10 attacker=203.0.113.66 day=-1 at=13:05:00 span=1000 flows=300
"""


def test_records_when_the_subject_is_the_peer_side(make_sim, tmp_path, sna,
                                                   client, scen):
    """Searching a peer prefix makes the far side the subject; with a peer
    filter the subject is the side the subject prefix matched."""
    f = tmp_path / "scan.txt"
    f.write_text(SMALL_SCAN)
    small = make_sim(*BASE, "--scenario", str(f), "--sna-query-ms", "0")
    sc = Client(small)
    st = stream(small.get_json("/_sim/scenario"), "scan-1")
    S = st["start"] // 1000 * 1000
    recs, _ = mapped(small, sc, st["attacker"], S, S + 2 * SEC, peer=st["addr"])
    assert recs and all(r["subject"]["orientation"] == "client" for r in recs)
    recs, _ = mapped(small, sc, st["addr"], S, S + 2 * SEC,
                     peer=st["attacker"] + "/32")
    assert all(r["subject"]["orientation"] == "server" for r in recs)
    assert all(r["peer"]["synPackets"] == 1 for r in recs)
    peers = stream(scen, "web-1")["peers"]
    recs, _ = mapped(sna, client, peers, YDAY0 + 3 * HOUR,
                     YDAY0 + 3 * HOUR + 2 * MIN, peer="10.0.1.10")
    assert all(r["subject"]["ipAddress"] != "10.0.1.10" for r in recs)


def test_peer_list_matches_any_of_its_prefixes(sna, client, scen):
    """peer.ipAddresses.includes is a list: a flow matches when its peer
    lies in any of the prefixes, so the answer is the union of the single
    prefixes' answers (the SNA driver asks light peer parts together)."""
    web = stream(scen, "web-1")["addr"]
    S, E = YDAY0 + 14 * HOUR, YDAY0 + 14 * HOUR + 10 * MIN
    prefixes = ["198.18.0.0/18", "198.18.128.0/17", "198.19.200.0/24"]
    union = set()
    for p in prefixes:
        union |= set(truth(sna, web, S, E, p, list="ids")["ids"])
    whole = truth(sna, web, S, E)["count"]
    assert 0 < len(union) < whole
    body = search_body(web, S, E)
    body["peer"] = {"ipAddresses": {"includes": prefixes}}
    qid = client.create(body)
    assert client.wait(qid)[-1]["status"] == "COMPLETED"
    assert set(keys_of(client.results(qid))) == union


def test_ids_are_stable_and_unique(make_sim, sna, client, scen):
    heavy = stream(scen, "heavy-1")["addr"]
    S = YDAY0 + 14 * HOUR
    E = S + 20 * SEC
    t = truth(sna, heavy, S, E)
    assert 0 < t["count"] < CAP
    recs = client.search(heavy, S, E)
    ids = [r["id"] for r in recs]
    assert len(set(ids)) == len(ids)
    other = Client(make_sim(*BASE, "--sna-query-ms", "0"))
    assert sorted(keys_of(other.search(heavy, S, E))) == sorted(keys_of(recs))


# ---- truth, counters, faults, paths ---------------------------------------------

def test_truth_keys(sna, scen):
    web = stream(scen, "web-1")["addr"]
    S, E = YDAY0 + 8 * HOUR, YDAY0 + 9 * HOUR
    ref = truth(sna, web, S, E, list="ids", key="ref")
    by_sna = truth(sna, web, S, E, list="ids")
    assert ref["count"] == by_sna["count"] == len(by_sna["ids"])
    assert all(re.match(r"^[0-9a-f]{16}$", i) for i in ref["ids"])
    assert all(re.match(r"^[123]:\d+$", k) for k in by_sna["ids"])
    assert by_sna["ids"] == sorted(by_sna["ids"])
    assert by_sna["digest"] == digest_of(by_sna["ids"])
    assert ref["digest"] != by_sna["digest"]
    assert sna.get("/_sim/truth", {"ip": web, "start": S, "end": E,
                                   "key": "bogus"})[0] == 400


def test_counters(sna, client):
    c0 = counters(sna)
    assert list(c0["endpoints"]) == SNA_ENDPOINTS + ["/_sim", "other"]
    qid = client.create(search_body("10.0.1.10", YDAY0, YDAY0 + MIN))
    client.wait(qid)
    client.results(qid)
    client.raw("POST", f"/sw-reporting/v2/tenants/{TENANT}/flows/queries",
               good_body(), xsrf=False)
    c1 = counters(sna)
    assert ep_count(c1, EP_CREATE, 201) - ep_count(c0, EP_CREATE, 201) == 1
    assert ep_count(c1, EP_CREATE, 403) - ep_count(c0, EP_CREATE, 403) == 1
    assert ep_count(c1, EP_RESULTS, 200) - ep_count(c0, EP_RESULTS, 200) == 1
    assert ep_count(c1, EP_POLL, 200) > ep_count(c0, EP_POLL, 200)
    sna.reset_counters()
    c2 = counters(sna)
    assert ep_count(c2, EP_CREATE, 201) == 0 and c2["sna"]["created"] == 0
    assert c2["sna"]["sessions"] >= 1, "a reset ended the sessions"


def test_reference_paths_and_methods(sna, client):
    for path in ("/api/v1/flows", "/api/v1/info", "/token/v1/authenticate",
                 f"/sw-reporting/v2/tenants/{TENANT}/flows/queries/x/y"):
        sna_error(*client.raw("GET", path), 404)
    for method, path in [("GET", "/token/v2/authenticate"), ("GET", "/token"),
                         ("POST", "/sw-reporting/v1/tenants"),
                         ("GET", f"/sw-reporting/v2/tenants/{TENANT}/flows/"
                                 f"queries"),
                         ("DELETE", f"/smc-configuration/rest/v1/tenants/"
                                    f"{TENANT}/tags/")]:
        sna_error(*client.raw(method, path), 405)


def test_faults_hit_the_search_endpoints(make_sim):
    s = make_sim(*BASE, "--fault-seed", "1", "--sna-query-ms", "0")
    c = Client(s)
    good = c.create(good_body())
    s.set_faults(fail_500=1)
    # scope flows: login and tenants are spared, the search endpoints not
    assert Client(s).jwt
    assert c.json("GET", "/sw-reporting/v1/tenants")
    n0 = counters(s)["sna"]["created"]
    sna_error(*c.raw("POST", f"/sw-reporting/v2/tenants/{TENANT}/flows/"
                             f"queries", good_body()), 500)
    assert counters(s)["sna"]["created"] == n0, "a faulted create searched"
    sna_error(*c.raw("GET", f"/sw-reporting/v2/tenants/{TENANT}/flows/queries/"
                            f"{good}"), 500)
    s.set_faults(fail_500=0, fail_429=1)
    st, hdrs, data = c.raw("GET", f"/sw-reporting/v2/tenants/{TENANT}/flows/"
                                  f"queries/{good}/results")
    sna_error(st, hdrs, data, 429)
    assert hdrs.get("Retry-After") == "1"
    s.set_faults(fail_429=0, html=1)
    st, hdrs, data = c.raw("GET", f"/sw-reporting/v2/tenants/{TENANT}/flows/"
                                  f"queries/{good}/results")
    assert st == 200 and hdrs["Content-Type"].startswith("text/html")
    s.set_faults(html=0)
    assert isinstance(c.results(good), list)
    f = counters(s)["faults"]
    assert f["500"] == 2 and f["429"] == 1 and f["html"] == 1


def test_fault_foreign_in_results(make_sim):
    """--foreign in the SNA dialect: a results read holds 1 to 5 records
    the search does not select (well-formed SNA records) besides the whole
    of a non-full answer; create and poll are not changed by it; with the
    rate back to 0 the same search reads as the truth."""
    s = make_sim(*BASE, "--fault-seed", "1", "--sna-query-ms", "0",
                 "--max-records", "500")
    c = Client(s)
    web = stream(s.get_json("/_sim/scenario"), "web-1")["addr"]
    S, E = YDAY0 + 10 * HOUR, YDAY0 + 11 * HOUR
    want = set(truth(s, web, S, E, list="ids")["ids"])
    assert 0 < len(want) < 495
    s.set_faults(foreign=1)
    qid = c.create(search_body(web, S, E))
    assert c.wait(qid)[-1]["status"] == "COMPLETED"
    for _ in range(2):
        recs = c.results(qid)
        keys = set(keys_of(recs))
        assert want <= keys, f"{len(want - keys)} true records missing"
        assert 1 <= len(keys - want) <= 5, f"{len(keys - want)} foreign"
        for r in recs:
            st = r["statistics"]
            assert sna_ms(st["firstActiveTime"]) <= sna_ms(st["lastActiveTime"])
            assert {r["subject"]["orientation"], r["peer"]["orientation"]} \
                == {"client", "server"}, r
            ipaddress.ip_address(r["subject"]["ipAddress"])
            ipaddress.ip_address(r["peer"]["ipAddress"])
    s.set_faults(foreign=0)
    assert set(keys_of(c.results(qid))) == want
    f = counters(s)["faults"]
    assert f["foreign"] >= 4     # the create, its polls, two reads


def test_fault_scope_all_hits_login(make_sim):
    s = make_sim(*BASE, "--fault-seed", "1", "--fail-503", "1",
                 "--fault-scope", "all")
    c = Client(s, user=None)
    st, hdrs, body = c.login("admin", "flowsim")
    sna_error(st, hdrs, body, 503)
    assert not hdrs.get_all("Set-Cookie")
    s.set_faults(fail_503=0)
    assert Client(s).jwt


def test_bad_options_exit_2(flowsim_path, tmp_path):
    import subprocess
    for args in (["--dialect", "snmp"], ["--sna-session-s", "0"],
                 ["--sna-tenants", "3"], ["--sna-fail-query", "1.5"],
                 ["--sna-max-queries", "0"], ["--sna-user", ""],
                 ["--sna-password-file", str(tmp_path / "missing")],
                 ["--sna-cancel-query", "2"],
                 ["--sna-fail-query", "0.6", "--sna-cancel-query", "0.6"],
                 ["--sna-xsrf-rotate-s", "-1"],
                 ["--sna-status-extra", ""], ["--sna-status-extra", "COMPLETED"],
                 ["--sna-status-extra", "QUEUED,IN_PROGRESS"],
                 ["--sna-status-extra", "queued"],
                 ["--sna-status-extra", "A,,B"], ["--sna-status-extra", "A,"],
                 ["--sna-status-extra", "A,B,C,D,E"], ["--days", "401"]):
        p = subprocess.run([str(flowsim_path), "--dialect", "sna", *args,
                            "--listen", "127.0.0.1:0"],
                           capture_output=True, timeout=10)
        assert p.returncode == 2, f"{args}: status {p.returncode}"
        assert p.stderr, args
