"""The zone of an nfdump archive's file names (issue 14): an archive that
nfpcapd made under TZ=Europe/Prague (its file names in Prague's local
time, +01:00 in November) read through both fronts.

- Without files_tz, in a process whose zone is UTC, the open runs
  `nfdump -I` on the newest file, sees that its flows fit names in +01:00
  and refuses, naming the file, the offset and the option (flowfetch exit
  1, flowfs does not mount); with the mount's zone Europe/Prague it agrees
  and mounts, info.json saying what was checked.
- files_tz=Europe/Prague (an IANA zone other than the process's, read from
  its zone file): each day of 10.0.1.5 is exactly nfdump's flows (the
  oracle, tests/nfdump/oracle.py), through flowfetch and flowfs.
- A wrong files_tz (Asia/Kolkata, +05:30) is refused at open, naming both.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import flowfetch_binary
from mount import MountFactory, require_fuse, require_flowfs, run

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "nfdump"))

import mkarchive  # noqa: E402
import mkpcap  # noqa: E402
from test_nfdump import csv_flows, expected, same  # noqa: E402

DAYS = ("2026-11-24", "2026-11-25", "2026-11-26")
SUBJECT = "10.0.1.5"


@pytest.fixture(scope="module")
def prague(tmp_path_factory):
    """traffic.pcap through `TZ=Europe/Prague nfpcapd -S 1`."""
    gone = mkarchive.missing_tools()
    if gone:
        pytest.skip("nfdump tools missing: %s" % ", ".join(gone))
    tmp = tmp_path_factory.mktemp("nfdump-tz")
    mkpcap.build(str(tmp / "pcap"), seed=1, sessions=120, nburst=3000)
    arch = tmp / "prague"
    arch.mkdir()
    env = dict(mkarchive.tool_env(), TZ="Europe/Prague")
    subprocess.run(["nfpcapd", "-r", str(tmp / "pcap" / "traffic.pcap"),
                    "-w", str(arch), "-S", "1"], env=env, check=True,
                   capture_output=True, timeout=60)
    # names in Prague's time: the first packet of 00:00 UTC is 01:00 there
    assert (arch / "2026/11/24/nfcapd.202611240100").exists()
    return str(arch)


def flowfetch(arch, day, out, cache, *extra, tz="UTC"):
    cmd = [str(flowfetch_binary()), "nfdump:" + arch, "--ip", SUBJECT,
           "--from", day + "T00:00", "--to", day, "--cache", str(cache),
           "-o", str(out), "--quiet"] + list(extra)
    env = {k: v for k, v in os.environ.items() if k != "FLOWFS_TOKEN"}
    env["TZ"] = tz
    return run(cmd, env=env, text=True)


def day_query(day):
    return ("d", SUBJECT, None, day, day + "T00:00", None)


def test_flowfetch_without_files_tz_refused(prague, tmp_path):
    """No files_tz and a UTC process: exit 1, no output, the message names
    the newest file, the offset seen and the option."""
    out = tmp_path / "o.csv"
    r = flowfetch(prague, DAYS[1], out, tmp_path / "c")
    assert r.returncode == 1, r.stderr
    assert "2026/11/27/nfcapd.202611270055" in r.stderr, r.stderr
    assert "UTC+01:00" in r.stderr and "files_tz=+01:00" in r.stderr, r.stderr
    assert not out.exists()


@pytest.mark.parametrize("day", DAYS)
def test_flowfetch_files_tz_exact(prague, tmp_path, day):
    """--files-tz Europe/Prague: the day is exactly nfdump's flows."""
    out = tmp_path / "o.csv"
    r = flowfetch(prague, day, out, tmp_path / "c", "--files-tz",
                  "Europe/Prague")
    assert r.returncode == 0, r.stderr
    want = expected(prague, day_query(day))
    assert want
    same(csv_flows(out.read_text()), want, "flowfetch " + day)


def test_flowfetch_wrong_files_tz_refused(prague, tmp_path):
    """--files-tz Asia/Kolkata (+05:30): refused, naming both offsets."""
    out = tmp_path / "o.csv"
    r = flowfetch(prague, DAYS[0], out, tmp_path / "c", "--files-tz",
                  "Asia/Kolkata")
    assert r.returncode == 1, r.stderr
    assert "files_tz Asia/Kolkata (+05:30" in r.stderr, r.stderr
    assert "UTC+01:00" in r.stderr, r.stderr
    assert not out.exists()


def mount_refused(prague, tmp_path, *opts):
    mp = tmp_path / "mnt"
    mp.mkdir(parents=True)
    cmd = [str(require_flowfs()), "-f", "nfdump:" + prague, str(mp), "-o",
           "cache=" + str(tmp_path / "c")]
    for o in opts:
        cmd += ["-o", o]
    try:
        r = run(cmd, timeout=60, text=True)
        assert r.returncode != 0
        assert not os.path.ismount(mp)
        return r.stderr
    finally:
        if os.path.ismount(mp):     # mounted after all (a broken check)
            subprocess.run(["fusermount3", "-u", "-z", str(mp)], timeout=30)


def test_flowfs_refuses_without_and_with_wrong_files_tz(prague, tmp_path):
    """flowfs does not mount without files_tz (its zone UTC) nor with a
    wrong one, and says why."""
    require_fuse()
    err = mount_refused(prague, tmp_path / "a")
    assert "files_tz=+01:00" in err and "nfcapd.202611270055" in err, err
    err = mount_refused(prague, tmp_path / "b", "files_tz=Asia/Kolkata")
    assert "files_tz Asia/Kolkata" in err and "UTC+01:00" in err, err


def test_flowfs_files_tz_exact(prague, tmp_path):
    """files_tz=Europe/Prague: each day's flows.csv is exactly nfdump's;
    info.json says what the newest file showed; and with the mount's own
    zone Europe/Prague and no files_tz, the check agrees."""
    require_fuse()
    require_flowfs()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    f = MountFactory(tmp_path / "a")
    try:
        m = f(url="nfdump:" + prague, opts=["files_tz=Europe/Prague"])
        for day in DAYS:
            text = m.path(SUBJECT, day, "flows.csv").read_text()
            same(csv_flows(text), expected(prague, day_query(day)),
                 "flowfs " + day)
        info = json.loads(m.path("collector", "info.json").read_text())
        assert info["files_tz"] == "Europe/Prague"
        assert info["files_tz_checked"] == {
            "file": "2026/11/27/nfcapd.202611270055",
            "offset_seen": "+01:00", "result": "agrees"}
        assert info["first_file_time"] == "2026-11-24T00:00:00.000Z"
    finally:
        f.finish()
    f = MountFactory(tmp_path / "b")
    try:
        m = f(url="nfdump:" + prague, opts=["tz=Europe/Prague"])
        info = json.loads(m.path("collector", "info.json").read_text())
        assert info["files_tz_checked"]["result"] == "agrees"
        assert info["files_tz_checked"]["offset_seen"] == "+01:00"
    finally:
        f.finish()
