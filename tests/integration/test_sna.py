"""The SNA driver end to end: flowfetch and a real flowfs mount against
flowsim's SNA dialect (``--dialect sna``, docs/flowsim.md), compared with
the simulator's truth keyed the SNA way (``key=sna``: ids are
``<flowCollectorId>:<id>``, the text the driver stores).

Covers: exact truth for a steady host, the heavy host's busiest hour, the
scan and the flood days, a peer, an IPv6 host; every fault switch; session
expiry in the middle of a large query (the driver logs in again); a search
that fails on the Manager (asked again); several tenants; bad credentials;
and the mounted tree (flows.csv, SHA256SUMS, host group names from the
tags, query.json naming the driver).

Only the standard library and pytest; processes bound to 127.0.0.1 port 0;
every mount unmounted in a finally (mount.py).
"""
import csv
import hashlib
import io
import json
import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from conftest import NOW_MS, flowfetch
from mount import MountError, mounted_at, run

DAY = 86400000
HOUR = 3600000
TODAY = NOW_MS // DAY * DAY
USER, PASSWORD = "analyst", "s3cret:with,odd=chars&"
TIMEOUT_S = 240

CAP = 5000      # the Manager's cap in these tests, told to the driver
SNA_ARGS = ["--dialect", "sna", "--now", "2026-11-29T12:00:00Z", "--seed", "1",
            "--max-records", str(CAP), "--sna-user", USER, "--sna-query-ms", "30"]


def day_text(ms):
    return time.strftime("%Y-%m-%d", time.gmtime(ms // 1000))


def iso(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + "Z"


def digest_of(ids):
    return hashlib.sha256("".join(i + "\n" for i in sorted(ids)).encode()).hexdigest()


def csv_ids(data):
    rows = list(csv.DictReader(io.StringIO(data.decode())))
    return [r["flowId"] for r in rows], rows


def truth(sim, ip, start, end, peer=None):
    params = {"ip": ip, "start": start, "end": end, "key": "sna"}
    if peer:
        params["peer"] = peer
    return sim.get_json("/_sim/truth", params)


def full_ids(sim, ip, start, end):
    doc = sim.get_json("/_sim/truth", {"ip": ip, "start": start, "end": end, "key": "sna",
                                       "list": "ids"})
    return doc["ids"]


def counters(sim):
    return sim.get_json("/_sim/counters")


def endpoint(c, name, status=None):
    e = c.get("endpoints", {}).get(name, {})
    return sum(v for k, v in e.items() if status is None or k == str(status))


def assert_truth(ids, t, what):
    assert len(ids) == len(set(ids)), f"{what}: duplicate ids"
    assert len(ids) == t["count"], f"{what}: {len(ids)} flows, the truth has {t['count']}"
    assert digest_of(ids) == t["digest"], f"{what}: the ids differ from the truth"


@pytest.fixture(scope="module")
def cred_file(tmp_path_factory):
    d = tmp_path_factory.mktemp("sna-cred")
    pw = d / "password"
    pw.write_text(PASSWORD + "\n")
    tok = d / "token"
    tok.write_text(f"{USER}:{PASSWORD}\n")
    os.chmod(tok, 0o600)
    return pw, tok


@pytest.fixture(scope="module")
def snasim(make_module_sim, cred_file):
    return make_module_sim(*SNA_ARGS, "--sna-password-file", str(cred_file[0]))


def sna_url(sim):
    return f"sna+http://127.0.0.1:{sim.port}"


def fetch(sim, tok, ip, frm, to, tmp, cache=None, peer=None, extra=(), timeout=TIMEOUT_S,
          cap=CAP, suffix=".csv"):
    """flowfetch on the SNA sim, --quiet, told the cap unless cap=None:
    (its Fetch, the output's bytes, b"" when none)."""
    out = Path(tmp) / f"out-{time.monotonic_ns()}{suffix}"
    f = flowfetch(sna_url(sim), ip, frm, to, out, cache=cache or Path(tmp) / "cache",
                  token_file=tok, peer=peer, timeout=timeout,
                  extra=["--quiet", *extra, *(["--max-records", str(cap)] if cap else [])])
    return f, out.read_bytes() if out.exists() else b""


# ---- flowfetch: exact truth ---------------------------------------------------

CASES = [
    ("steady day", "10.0.1.11", TODAY - DAY, TODAY, None),
    ("heavy half hour", "10.0.1.20", TODAY - DAY + 14 * HOUR, TODAY - DAY + 14 * HOUR + HOUR // 2,
     None),
    ("flood day", "10.0.1.40", TODAY - DAY, TODAY, None),
    ("peer prefix", "10.0.1.10", TODAY - 3 * DAY, TODAY - 2 * DAY, "198.18.0.0/16"),
    ("ipv6 host", "2001:db8:10:0:0:0:0:5", TODAY - DAY, TODAY, None),
]


@pytest.mark.parametrize("what,ip,start,end,peer", CASES, ids=[c[0] for c in CASES])
def test_flowfetch_equals_truth(snasim, cred_file, tmp_path, what, ip, start, end, peer):
    r, data = fetch(snasim, cred_file[1], ip, iso(start), iso(end), tmp_path, peer=peer)
    assert r.rc == 0, r.stderr
    ids, rows = csv_ids(data)
    assert_truth(ids, truth(snasim, ip, start, end, peer), what)
    for row in rows[:200]:
        assert row["firstSeen"].endswith(".000Z"), "SNA times are whole seconds"


def test_sqlite_keeps_sna_fields(snasim, cred_file, tmp_path):
    """flows.sqlite keeps what an SNA record says that flows.csv has no
    column for, as JSON in its column extra: the client side (the CSV's
    source) carries the flow's bytes and packets (flowsim puts the whole
    flow on the source side), its TCP counters agree with the CSV's flags,
    and the service id follows the destination port (docs/flowsim.md)."""
    ip, s, e = "10.0.1.10", TODAY - DAY + 10 * HOUR, TODAY - DAY + 12 * HOUR
    cache = tmp_path / "cache"
    r, data = fetch(snasim, cred_file[1], ip, iso(s), iso(e), tmp_path, cache=cache)
    assert r.rc == 0, r.stderr
    ids, rows = csv_ids(data)
    assert_truth(ids, truth(snasim, ip, s, e), "two hours of web-1")
    r, db_bytes = fetch(snasim, cred_file[1], ip, iso(s), iso(e), tmp_path, cache=cache,
                        suffix=".sqlite")
    assert r.rc == 0, r.stderr
    db_path = tmp_path / "flows.sqlite"
    db_path.write_bytes(db_bytes)
    con = sqlite3.connect(db_path)
    try:
        extra = dict(con.execute("SELECT flowId, extra FROM flows"))
    finally:
        con.close()
    assert sorted(extra) == sorted(ids)
    sides = set()
    for row in rows:
        text = extra[row["flowId"]]
        assert text is not None, row["flowId"]
        x = json.loads(text)
        client, server = x["client"], x["server"]
        assert client["bytes"] == int(row["bytes"]), (row, x)
        assert client["packets"] == int(row["packets"]), (row, x)
        assert server["bytes"] == 0 and server["packets"] == 0, (row, x)
        port = int(row["dstPort"]) if row["dstPort"] else -1
        if row["proto"] in ("TCP", "UDP") and port < 1024:
            assert x["serviceId"] == 1000 + port, (row, x)
        else:
            assert "serviceId" not in x, (row, x)
        if row["proto"] == "TCP":
            f = row["flags"]
            assert ("S" in f) == bool(client["syn"] or client["synAck"]), (row, x)
            assert ("A" in f) == bool(client["synAck"]), (row, x)
            assert ("F" in f) == bool(client["fin"]), (row, x)
            assert ("R" in f) == bool(client["rst"]), (row, x)
        # flowsim's records say "NONE": a no-value marker, not kept (issue 11)
        assert "tlsVersion" not in x, (row, x)
        sides.add("src" if row["srcAddr"] == ip else "dst")
    assert sides == {"src", "dst"}, "the subject was never on both sides: orientation untested"


def test_scan_second_is_a_reported_gap(snasim, cred_file, tmp_path):
    """30,000 flows from one attacker inside one second: SNA's searches take
    whole seconds and a peer, not ports, so that second cannot be split
    under the cap. It is a gap, reported (exit 3) with what was seen;
    every flow outside it is there, exactly, for a few searches."""
    ip, s, e = "10.0.1.10", TODAY - 2 * DAY, TODAY - DAY
    scan_at = s + 13 * HOUR + 5 * 60000
    snasim.reset_counters()
    r, data = fetch(snasim, cred_file[1], ip, iso(s), iso(e), tmp_path)
    assert r.rc == 3, r.stderr
    # the attacker's /32 is isolated with the light sibling prefixes of the
    # way down asked as one peer list: 7 searches (37 one prefix at a time)
    searches = endpoint(counters(snasim), "/sw-reporting/v2/tenants/{tenant}/flows/queries")
    assert searches <= 10, f"{searches} searches for the scan day"
    err = r.stderr
    assert "gap" in err and "203.0.113.66" in err, err
    ids = set(csv_ids(data)[0])
    outside = [truth(snasim, ip, s, scan_at), truth(snasim, ip, scan_at + 1000, e)]
    inside = truth(snasim, ip, scan_at, scan_at + 1000)
    in_scan = set(full_ids(snasim, ip, scan_at, scan_at + 1000))
    got_outside = [i for i in ids if i not in in_scan]
    assert len(got_outside) == outside[0]["count"] + outside[1]["count"]
    assert digest_of(got_outside) == digest_of(full_ids(snasim, ip, s, scan_at) +
                                               full_ids(snasim, ip, scan_at + 1000, e))
    assert inside["count"] > CAP
    assert len(ids) - len(got_outside) == CAP, "the gap's sample is kept"


def test_cap_guessed_too_high_still_exact(snasim, cred_file, tmp_path):
    """The Manager does not publish its cap: without --max-records the driver
    assumes 10,000, above this Manager's 2,000. An answer that may have met
    a lower cap is split like a full one: more searches, no flow lost."""
    ip, s, e = "10.0.1.11", TODAY - 3 * DAY, TODAY - 2 * DAY
    snasim.reset_counters()
    r, data = fetch(snasim, cred_file[1], ip, iso(s), iso(e), tmp_path, cap=None)
    assert r.rc == 0, r.stderr
    assert_truth(csv_ids(data)[0], truth(snasim, ip, s, e), "cap guessed 10,000")
    guessed = endpoint(counters(snasim), "/sw-reporting/v2/tenants/{tenant}/flows/queries")
    snasim.reset_counters()
    r, data = fetch(snasim, cred_file[1], ip, iso(s), iso(e), tmp_path / "told")
    assert r.rc == 0, r.stderr
    told = endpoint(counters(snasim), "/sw-reporting/v2/tenants/{tenant}/flows/queries")
    assert told <= guessed, (told, guessed)


def test_warm_cache_sends_no_search(snasim, cred_file, tmp_path):
    ip, s, e = "10.0.1.30", TODAY - 3 * DAY, TODAY - 2 * DAY
    r, first = fetch(snasim, cred_file[1], ip, iso(s), iso(e), tmp_path)
    assert r.rc == 0, r.stderr
    snasim.reset_counters()
    r, second = fetch(snasim, cred_file[1], ip, iso(s), iso(e), tmp_path)
    assert r.rc == 0, r.stderr
    assert second == first
    c = counters(snasim)
    assert endpoint(c, "/sw-reporting/v2/tenants/{tenant}/flows/queries") == 0


def test_session_expiry_mid_query(snasim, cred_file, tmp_path):
    """Every session is expired (HTML 401) while a large query runs: the
    driver logs in again and the result is still exact."""
    ip, s, e = "10.0.1.20", TODAY - 2 * DAY + 13 * HOUR, TODAY - 2 * DAY + 14 * HOUR
    snasim.reset_counters()
    stop = threading.Event()
    expired = []

    def expire():
        while not stop.wait(0.5):
            st, _, body = snasim.post("/_sim/sessions/expire")
            if st == 200:
                expired.append(json.loads(body)["expired"])

    t = threading.Thread(target=expire)
    t.start()
    try:
        r, data = fetch(snasim, cred_file[1], ip, iso(s), iso(e), tmp_path)
    finally:
        stop.set()
        t.join()
    assert r.rc == 0, r.stderr
    ids, _ = csv_ids(data)
    assert_truth(ids, truth(snasim, ip, s, e), "heavy hours across expiries")
    c = counters(snasim)
    logins = endpoint(c, "/token/v2/authenticate", 200)
    assert sum(expired) >= 1, "no session was expired: the test proved nothing"
    assert logins >= 2, f"{logins} logins for {sum(expired)} expiries"
    assert c["sna"]["expired_401"] >= 1


@pytest.mark.parametrize("fault", ["fail-500", "fail-503", "fail-429", "reset", "cut",
                                   "malformed", "html", "slow", "sna-fail-query"])
def test_faults_end_exact(make_sim, cred_file, tmp_path, fault):
    rate = "0.2" if fault != "slow" else "0.3"
    sim = make_sim(*SNA_ARGS, "--sna-password-file", str(cred_file[0]), f"--{fault}", rate,
                   "--retry-after", "1", "--slow-ms", "200", "--fault-seed", "7")
    ip, s, e = "10.0.1.11", TODAY - 4 * DAY, TODAY - 3 * DAY
    r, data = fetch(sim, cred_file[1], ip, iso(s), iso(e), tmp_path, extra=["--retries", "10"])
    assert r.rc == 0, f"{fault}: {r.stderr}"
    ids, _ = csv_ids(data)
    assert_truth(ids, truth(sim, ip, s, e), fault)


def test_stalled_search_fails_with_deadline(make_sim, cred_file, tmp_path):
    sim = make_sim(*SNA_ARGS, "--sna-password-file", str(cred_file[0]), "--stall", "1",
                   "--stall-s", "30")
    r, _ = fetch(sim, cred_file[1], "10.0.1.11", iso(TODAY - DAY), iso(TODAY), tmp_path,
                 extra=["--stall-timeout", "1", "--retries", "1"], timeout=60)
    assert r.rc == 1
    assert "timed out" in r.stderr or "stall" in r.stderr, r.stderr


def test_wrong_password_refused(snasim, tmp_path):
    tok = tmp_path / "tok"
    bad = f"not-it-{os.getpid()}"
    tok.write_text(f"{USER}:{bad}\n")
    tok.chmod(0o600)                   # a token file must be private
    r, _ = fetch(snasim, tok, "10.0.1.11", iso(TODAY - DAY), iso(TODAY), tmp_path)
    assert r.rc == 1
    err = r.stderr
    assert "credentials" in err and "401" in err, err
    assert bad not in err


def test_token_without_user_refused(snasim, tmp_path):
    tok = tmp_path / "tok"
    tok.write_text("justatoken\n")
    tok.chmod(0o600)                   # a token file must be private
    r, _ = fetch(snasim, tok, "10.0.1.11", iso(TODAY - DAY), iso(TODAY), tmp_path)
    assert r.rc == 1
    assert "user:password" in r.stderr, r.stderr


def test_tenants(make_sim, cred_file, tmp_path):
    sim = make_sim(*SNA_ARGS, "--sna-password-file", str(cred_file[0]), "--sna-tenants", "2",
                   "--sna-tenants-text")
    ip, s, e = "10.0.1.11", TODAY - DAY, TODAY
    r, _ = fetch(sim, cred_file[1], ip, iso(s), iso(e), tmp_path)
    assert r.rc == 1
    assert "tenant" in r.stderr and "102" in r.stderr and "103" in r.stderr, r.stderr
    r, data = fetch(sim, cred_file[1], ip, iso(s), iso(e), tmp_path,
                    extra=["--tenant", "102"])
    assert r.rc == 0, r.stderr
    assert_truth(csv_ids(data)[0], truth(sim, ip, s, e), "tenant 102")
    r, data = fetch(sim, cred_file[1], ip, iso(s), iso(e), tmp_path / "t103",
                    extra=["--tenant", "103"])
    assert r.rc == 0, r.stderr
    assert csv_ids(data)[0] == []
    r, _ = fetch(sim, cred_file[1], ip, iso(s), iso(e), tmp_path, extra=["--tenant", "999"])
    assert r.rc == 1 and "no tenant 999" in r.stderr, r.stderr


# ---- the mount ----------------------------------------------------------------

def test_mount_equals_truth(snasim, cred_file, mounts, tmp_path):
    m = mounts(url=sna_url(snasim), token_file=cred_file[1], opts=[f"max_records={CAP}"])
    ip, s = "10.0.1.40", TODAY - DAY
    folder = m.mnt / ip / day_text(s)
    data = (folder / "flows.csv").read_bytes()
    ids, rows = csv_ids(data)
    assert_truth(ids, truth(snasim, ip, s, s + DAY), "flood day through the mount")
    # host group names come from the tags, hostile ones included
    names = {g for r in rows for g in (r["srcGroups"], r["dstGroups"]) if g}
    assert any("=cmd|" in n for n in names), names
    q = json.loads((folder / "query.json").read_text())
    assert q.get("driver") == "sna", q
    copy = tmp_path / "evidence"
    r = run(["cp", "-r", str(folder), str(copy)])
    assert r.returncode == 0, r.stderr
    r = run(["sha256sum", "-c", "SHA256SUMS"], cwd=copy)
    assert r.returncode == 0, r.stdout + r.stderr
    groups = (m.mnt / "collector" / "hostgroups.csv").read_text()
    assert "NAT gateways" in groups


def test_mount_refused_with_wrong_password(snasim, mounts, tmp_path):
    tok = tmp_path / "tok"
    tok.write_text(f"{USER}:nope-{os.getpid()}\n")
    os.chmod(tok, 0o600)
    m = mounts(url=sna_url(snasim), token_file=tok, start=False)
    with pytest.raises(MountError):
        m.start()
    assert m.returncode not in (None, 0)
    assert not mounted_at(m.mnt)
    m.proc = None                    # nothing to check at teardown
    err = m.stderr_text()
    assert "credentials" in err, err
    assert f"nope-{os.getpid()}" not in err


# ---- issue 11: as strict as a real Manager ----------------------------------------

# sessions that expire every 3 s, an XSRF token that changes 1 s after each
# login (a 403 on a session that worked), faults, and 120 days of data
HARD = ["--sna-session-s", "3", "--sna-xsrf-rotate-s", "1", "--fail-503", "0.1",
        "--reset", "0.05", "--fault-seed", "11", "--days", "120"]
OLD_DAY = TODAY - 100 * DAY     # older than the 90 days once assumed


def group_names(rows):
    return {g for r in rows for k in ("srcGroups", "dstGroups") for g in r[k].split(";") if g}


def test_strict_manager_both_fronts(make_sim, cred_file, mounts, tmp_path):
    """Against the strict dialect (406 to a strict Accept, the XSRF cookie
    checked, tags by "name"), with sessions expiring, the XSRF token going
    stale and faults on: days exact through flowfetch and the mount, a day
    100 days old served, and host groups named, not numbered."""
    sim = make_sim(*SNA_ARGS, "--sna-password-file", str(cred_file[0]), *HARD)
    retries = ["--retries", "12"]
    for ip, s in [("10.0.1.11", TODAY - DAY), ("10.0.1.10", OLD_DAY)]:
        r, data = fetch(sim, cred_file[1], ip, day_text(s), day_text(s), tmp_path / ip,
                        extra=retries)
        assert r.rc == 0, r.stderr
        ids, rows = csv_ids(data)
        t = truth(sim, ip, s, s + DAY)
        assert t["count"] > 1000, f"{day_text(s)} holds {t['count']} flows"
        assert_truth(ids, t, f"{ip} {day_text(s)}")
        names = group_names(rows)
        assert names and not any(n.isdigit() for n in names), sorted(names)[:10]
    # whether a session expires or its token goes stale during these runs
    # depends on timing: test_session_expiry_mid_query and the next test
    # make each certain
    m = mounts(url=sna_url(sim), token_file=cred_file[1],
               opts=[f"max_records={CAP}", "retries=12"])
    for ip, s in [("10.0.1.40", TODAY - DAY), ("10.0.1.11", OLD_DAY)]:
        folder = m.mnt / ip / day_text(s)
        ids, rows = csv_ids((folder / "flows.csv").read_bytes())
        assert_truth(ids, truth(sim, ip, s, s + DAY), f"{ip} {day_text(s)} through the mount")
        assert not any(n.isdigit() for n in group_names(rows))
        assert json.loads((folder / "query.json").read_text())["complete"] is True
    # the Manager states no clock: the mount's today is this machine's
    today = int(time.time() * 1000) // DAY * DAY
    listed = sorted(d for d in os.listdir(m.mnt / "10.0.1.11") if "--" not in d)
    assert listed[0] == day_text(today - 90 * DAY) and listed[-1] == day_text(today), \
        f"the listing shows retention_days (90) days when the Manager does not say: {listed}"


def test_stale_xsrf_token_relogin(make_sim, cred_file, tmp_path):
    """A 403 on a session that worked (its XSRF token went stale) is taken
    like a 401: log in again, send again.  Searches take 1.5 s and the token
    goes stale 1 s after each login, so the windows sent after the first
    ones meet it for sure; the day is still exact."""
    sim = make_sim(*SNA_ARGS, "--sna-password-file", str(cred_file[0]),
                   "--sna-xsrf-rotate-s", "1", "--sna-query-ms", "1500")
    ip, s = "10.0.1.11", TODAY - DAY
    r, data = fetch(sim, cred_file[1], ip, day_text(s), day_text(s), tmp_path,
                    extra=["--max-inflight", "2"])
    assert r.rc == 0, r.stderr
    assert_truth(csv_ids(data)[0], truth(sim, ip, s, s + DAY), "the day")
    c = counters(sim)["sna"]
    assert c["xsrf_403"] > 0 and c["logins"] > 1, c


def test_a_logout_per_login(make_sim, cred_file, mounts, tmp_path):
    """Every session flowfetch or flowfs opens is closed (DELETE /token):
    after a flowfetch run, and after an unmount, flowsim counts a logout
    for every login."""
    sim = make_sim(*SNA_ARGS, "--sna-password-file", str(cred_file[0]))
    ip, s = "10.0.1.11", TODAY - DAY
    r, _ = fetch(sim, cred_file[1], ip, day_text(s), day_text(s), tmp_path)
    assert r.rc == 0, r.stderr
    c = counters(sim)["sna"]
    assert c["logins"] >= 1 and c["logouts"] == c["logins"], c
    m = mounts(url=sna_url(sim), token_file=cred_file[1], opts=[f"max_records={CAP}"])
    (m.mnt / ip / day_text(s) / "flows.csv").read_bytes()
    m.stop()
    c2 = counters(sim)["sna"]
    assert c2["logins"] > c["logins"] and c2["logouts"] == c2["logins"], c2


def test_interfaces_from_interface_data(snasim, cred_file, tmp_path):
    """Searches ask includeInterfaceData: the records' interfaces give
    inIf and outIf, equal to the truth's (flowsim puts them on the client
    side, in the recorded shape: docs/sna.md)."""
    ip, s, e = "10.0.1.10", TODAY - DAY + 10 * HOUR, TODAY - DAY + 11 * HOUR
    r, data = fetch(snasim, cred_file[1], ip, iso(s), iso(e), tmp_path)
    assert r.rc == 0, r.stderr
    ids, rows = csv_ids(data)
    t = snasim.get_json("/_sim/truth", {"ip": ip, "start": s, "end": e, "key": "sna",
                                        "list": "records"})
    want = {x["sna_key"]: (x.get("in_if", 0), x.get("out_if", 0)) for x in t["records"]}
    assert len(rows) == len(want) > 100
    for row in rows:
        i, o = want[row["flowId"]]
        assert (row["inIf"], row["outIf"]) == (str(i) if i else "", str(o) if o else ""), row
