"""oracle: the flows nfdump itself prints for a query, as Python dicts.

    flows(archive, subject, start_ms, end_ms, peer=None)

runs, with TZ=UTC,

    nfdump -R ARCHIVE -o json '(host|net SUBJECT) [and (host|net PEER)]'

and keeps the records whose first-seen is in [start_ms, end_ms) (UTC epoch
milliseconds).  It does not pass -t: nfdump 1.7.1's -t keeps only the flows
that lie entirely inside its window (docs/nfdump.md), which would drop a
long flow that started in the window and ended after it.  It reads the
whole archive (-R recurses into the -S subdirectories), which is what the
tests' small archives allow; the driver reads only the files that can hold
the window.

Each flow is a dict: proto (number), src, sport, dst, dport, first_ms,
last_ms, packets, bytes, flags (nfdump's spelling, '...AP.SF'; '........'
when not TCP), icmp_type and icmp_code (None when not ICMP), exporter
(the exporter's sysid, 0 for nfpcapd's own).  ICMP is keyed as nfdump's
csv output keys it: sport 0, dport type * 256 + code.  The 'received'
time nfdump reports is left out: it is when the collector wrote the record.

A failure (nfdump missing, a bad filter, an archive that is not one)
raises OracleError with nfdump's exit status and stderr.
"""

import calendar
import ipaddress
import json
import os
import subprocess
import time

NFDUMP_TIMEOUT_S = 60.0


class OracleError(RuntimeError):
    pass


def selection(subject, peer=None):
    """The nfdump filter for SUBJECT (an address or a prefix) and PEER."""
    def one(x):
        net = ipaddress.ip_network(x, strict=True)
        if net.num_addresses == 1:
            return "host %s" % net.network_address
        return "net %s" % net
    f = "(%s)" % one(subject)
    if peer is not None:
        f += " and (%s)" % one(peer)
    return f


def iso_ms(s):
    """nfdump's JSON time, '2026-11-24T10:02:30.001' in UTC, to epoch ms."""
    whole, _, frac = s.partition(".")
    secs = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))
    return secs * 1000 + int((frac + "000")[:3])


def record(r):
    """One of nfdump's JSON flow records as a flow dict."""
    proto = r["proto"]
    src = r.get("src4_addr") or r.get("src6_addr")
    dst = r.get("dst4_addr") or r.get("dst6_addr")
    if proto in (1, 58):
        t, c = r.get("icmp_type", 0), r.get("icmp_code", 0)
        sport, dport = 0, t * 256 + c
    else:
        t = c = None
        sport, dport = r.get("src_port", 0), r.get("dst_port", 0)
    return {
        "proto": proto, "src": src, "sport": sport, "dst": dst,
        "dport": dport, "first_ms": iso_ms(r["first"]),
        "last_ms": iso_ms(r["last"]), "packets": r["in_packets"],
        "bytes": r["in_bytes"], "flags": r.get("tcp_flags", "........"),
        "icmp_type": t, "icmp_code": c,
        "exporter": r.get("export_sysid", 0),
    }


def nfdump_json(args):
    """Runs nfdump -o json ARGS with TZ=UTC; returns its records (a list of
    dicts, those of type FLOW)."""
    env = dict(os.environ, TZ="UTC")
    cmd = ["nfdump", "-o", "json"] + list(args)
    try:
        p = subprocess.run(cmd, env=env, capture_output=True, text=True,
                           timeout=NFDUMP_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise OracleError("%s: %s" % (" ".join(cmd), e)) from e
    if p.returncode != 0:
        raise OracleError("%s: exit status %d: %s" % (
            " ".join(cmd), p.returncode, (p.stderr or p.stdout).strip()))
    out = p.stdout.strip()
    # 1.7.1 prints an empty answer as "[\nNo matching flows\n]", not JSON
    if out.replace("\n", "") in ("[No matching flows]", "No matching flows"):
        return []
    try:
        recs = json.loads(out)
    except ValueError as e:
        raise OracleError("%s: not JSON (%s): %.200r" % (" ".join(cmd), e,
                                                           out)) from e
    return [r for r in recs if r.get("type") == "FLOW"]


def flows(archive, subject, start_ms, end_ms, peer=None):
    """The flows of SUBJECT (and PEER) in ARCHIVE whose first-seen is in
    [START_MS, END_MS), in nfdump's order."""
    recs = nfdump_json(["-R", archive, selection(subject, peer)])
    out = []
    for r in recs:
        f = record(r)
        if start_ms <= f["first_ms"] < end_ms:
            out.append(f)
    return out


def five_tuple(f):
    return (f["proto"], f["src"], f["sport"], f["dst"], f["dport"])
