"""The nfdump driver over ssh through both fronts (issue 14:
nfdump+ssh://USER@HOST:PORT/DIR), against a private sshd on 127.0.0.1
(tests/nfdump/sshd.py: its own host key, an authorized key generated for
the test) over archives the real collector tools made (archives.py).

Shown: flowfetch -o FILE and flowfs mounted on
nfdump+ssh://root@127.0.0.1:PORT/DIR with the test's identity and
known_hosts (and -F /dev/null: nothing of the machine's ssh configuration)
serve a subject's day and a subject+peer range with exactly the oracle's
flows (`nfdump -R DIR` with the same selection), and flows.csv byte for
byte the local driver's for the same query; cp -r checks with sha256sum
-c, query.json says complete; /collector/info.json describes the remote
archive; a host whose key is unknown is refused at mount and at start
with ssh's reason, no password or token asked.  Skipped, saying so,
without sshd or the nfdump tools.
"""

import json
import os
import sys
from pathlib import Path

import pytest

import conftest
from mount import MountFactory, require_flowfs, require_fuse, run

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "nfdump"))

import archives  # noqa: E402
import sshd  # noqa: E402
from test_nfdump import (complete_and_copies, csv_flows, expected,  # noqa: E402
                         folder_of, same)

# (name, subject, peer, folder, from, to), as test_nfdump.QUERIES
QUERIES = [
    ("day", "10.0.1.5", None, "2026-11-24", "2026-11-24T00:00", None),
    ("day6", "2001:db8::5", None, "2026-11-25", "2026-11-25T00:00", None),
    # another day than "day"'s: not answered from its cached flows
    ("peer-range", "10.0.1.5", "198.51.100.0/24",
     "2026-11-26T06:00--2026-11-26T18:00", "2026-11-26T06:00",
     "2026-11-26T18:00"),
]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    gone = sshd.missing_tools()
    if gone:
        pytest.skip("tools missing: %s (apt-get install openssh-server "
                    "openssh-client)" % ", ".join(gone))
    return archives.build(tmp_path_factory.mktemp("nfremote"))


@pytest.fixture(scope="module")
def server(data):
    with sshd.Sshd(data["tmp"] / "sshd") as s:
        yield s


def logins(server):
    """The logins sshd has accepted so far (its log, one line each)."""
    return server.log_text().count("Accepted publickey for root")


def url(server, arch):
    return "nfdump+ssh://root@127.0.0.1:%d%s" % (server.port, arch)


def ssh_args(server, known_hosts=None):
    """flowfetch's ssh options: the test's key and known_hosts only."""
    return ["--ssh-config", "/dev/null", "--identity", server.identity,
            "--known-hosts", known_hosts or server.known_hosts]


def ssh_mount_opts(server, known_hosts=None):
    return ["ssh_config=/dev/null", "identity=" + server.identity,
            "known_hosts=" + (known_hosts or server.known_hosts),
            "files_tz=UTC"]


def flowfetch(source, q, out, cache, *extra):
    """flowfetch SOURCE, --quiet --files-tz UTC, for q of QUERIES: a
    conftest.Fetch."""
    _, subject, peer, _, frm, to = q
    return conftest.flowfetch(source, subject, frm, to or frm[:10], out,
                              cache=cache, peer=peer, timeout=300,
                              extra=["--quiet", "--files-tz", "UTC", *extra])


@pytest.mark.parametrize("q", QUERIES, ids=[q[0] for q in QUERIES])
def test_flowfetch_over_ssh(data, server, tmp_path, q):
    """flowfetch nfdump+ssh://root@127.0.0.1:PORT/DIR: exit 0, exactly
    nfdump's flows, and the same bytes as flowfetch nfdump:DIR."""
    arch = data["arch"]["pcapd-day"]
    want = expected(arch, q)
    assert want, "the oracle has no flow for %s" % q[0]
    remote, local = tmp_path / "remote.csv", tmp_path / "local.csv"
    before = logins(server)
    r = flowfetch(url(server, arch), q, remote, tmp_path / "c1",
                  *ssh_args(server))
    assert r.rc == 0, r.stderr + "\nsshd log:\n" + server.log_text()
    # over ssh, not here: the tree and nfdump -V at start, then for each
    # window (one or more) its listing and its nfdump
    assert logins(server) - before >= 4, server.log_text()[-2000:]
    same(csv_flows(remote.read_text()), want, "flowfetch over ssh " + q[0])
    r = flowfetch("nfdump:" + arch, q, local, tmp_path / "c2")
    assert r.rc == 0, r.stderr
    assert remote.read_bytes() == local.read_bytes()


def test_flowfetch_refuses_unknown_host_key(data, server, tmp_path):
    """A host key that is not in known_hosts: exit 1 at once with ssh's
    reason; nothing written, no token or password asked for."""
    arch = data["arch"]["pcapd-day"]
    out = tmp_path / "o.csv"
    r = flowfetch(url(server, arch), QUERIES[0], out, tmp_path / "c",
                  *ssh_args(server, server.empty_known_hosts))
    assert r.rc == 1, r.stderr
    assert "Host key verification failed" in r.stderr
    assert "token" not in r.stderr.lower()
    assert "password" not in r.stderr.lower()
    assert not out.exists()


@pytest.fixture(scope="module")
def mounts(data, server, tmp_path_factory):
    """flowfs on the same archive over ssh and locally."""
    require_fuse()
    require_flowfs()
    f = MountFactory(tmp_path_factory.mktemp("flowfs-ssh"))
    try:
        arch = data["arch"]["pcapd-day"]
        remote = f(url=url(server, arch), name="remote",
                   opts=ssh_mount_opts(server))
        local = f(url="nfdump:" + arch, name="local", opts=["files_tz=UTC"])
        yield remote, local
    finally:
        f.finish()


@pytest.mark.parametrize("q", QUERIES, ids=[q[0] for q in QUERIES])
def test_flowfs_over_ssh(data, server, mounts, tmp_path, q):
    """flowfs on nfdump+ssh://: flows.csv (cat) is exactly nfdump's flows
    and byte for byte the local mount's, query.json says complete, and a
    copy checks with sha256sum -c."""
    remote, local = mounts
    arch = data["arch"]["pcapd-day"]
    folder = folder_of(remote, q)
    before = logins(server)
    r = run(["cat", str(folder / "flows.csv")], text=True)
    assert r.returncode == 0, r.stderr + remote.stderr_text()[-2000:]
    # each window's listing and nfdump ran on the collector
    assert logins(server) - before >= 2, server.log_text()[-2000:]
    same(csv_flows(r.stdout), expected(arch, q), "flowfs over ssh " + q[0])
    assert (folder / "flows.csv").read_bytes() == \
        (folder_of(local, q) / "flows.csv").read_bytes()
    complete_and_copies(folder, tmp_path)


def test_flowfs_info_over_ssh(data, server, mounts):
    """/collector/info.json over ssh: the collector's nfdump version, the
    archive's path there and the ssh account, its layout, first and last
    file, as the local mount says them."""
    remote, local = mounts
    ri = json.loads(remote.path("collector", "info.json").read_text())
    li = json.loads(local.path("collector", "info.json").read_text())
    assert ri["product"] == "nfdump archive"
    assert ri["driver"] == "nfdump"
    assert ri["ssh"] == "root@127.0.0.1:%d" % server.port
    for k in ("version", "archive", "layout", "files", "first_file",
              "first_file_time", "last_file", "last_file_time", "files_tz"):
        assert ri[k] == li[k], k
    assert ri["layout"] == "%Y/%m/%d"
    assert ri["first_file"] == "2026/11/24/nfcapd.202611240000"
    assert sorted(os.listdir(remote.path("10.0.1.5")))[0] == "2026-11-24"


def test_flowfs_refuses_unknown_host_key(data, server, tmp_path):
    """flowfs does not mount when ssh does not know the host key, and says
    ssh's reason; no token or password is asked for."""
    require_fuse()
    mp = tmp_path / "mnt"
    mp.mkdir()
    opts = ssh_mount_opts(server, server.empty_known_hosts) + [
        "cache=" + str(tmp_path / "c")]
    r = run([str(require_flowfs()), "-f", "-o", ",".join(opts),
             url(server, data["arch"]["pcapd-day"]), str(mp)], timeout=60,
            text=True)
    assert r.returncode != 0
    assert "Host key verification failed" in r.stderr
    assert "token" not in r.stderr.lower()
    assert "password" not in r.stderr.lower()
    assert not os.path.ismount(mp)


def test_flowfs_flat_over_ssh(data, server, tmp_path):
    """An archive whose layout is nfcapd's flat one, read over ssh: the
    open's tree finds its files as locally (info.json's layout and files)."""
    require_fuse()
    f = MountFactory(tmp_path)
    try:
        arch = data["arch"]["pcapd-flat"]
        m = f(url=url(server, arch), opts=ssh_mount_opts(server))
        info = json.loads(m.path("collector", "info.json").read_text())
        assert info["layout"] == "flat"
        assert info["files"] == len(list(Path(arch).glob("nfcapd.*")))
    finally:
        f.finish()


def test_symlinks_over_ssh(data, server, tmp_path):
    """An archive whose year directory is a symbolic link (a volume moved
    elsewhere, an nfsen channel linked in): read over ssh as it is read
    here, exactly nfdump's flows and the same bytes as the local driver."""
    real = data["arch"]["pcapd-day"]
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "2026").symlink_to(Path(real) / "2026")
    q = QUERIES[0]
    want = expected(real, q)
    remote, local = tmp_path / "remote.csv", tmp_path / "local.csv"
    r = flowfetch(url(server, str(linked)), q, remote, tmp_path / "c1",
                  *ssh_args(server))
    assert r.rc == 0, r.stderr
    same(csv_flows(remote.read_text()), want, "flowfetch over ssh, linked")
    r = flowfetch("nfdump:" + str(linked), q, local, tmp_path / "c2")
    assert r.rc == 0, r.stderr
    assert remote.read_bytes() == local.read_bytes()
