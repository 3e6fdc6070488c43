"""The nfdump dialect over ssh (issue 14: nfdump+ssh://), against a real sshd.

A private OpenSSH server runs on 127.0.0.1 (tests/nfdump/sshd.py: its own
host key, an authorized key generated for the test, no password, started
and stopped by its pid), over archives made by the real collector tools
(mkpcap.py and mkarchive.py, as test_nfdump_data.py).  nfdrun (tests/nfdump/
nfdrun.c) runs the dialect's core once: the window's files, the command,
its run and decoding, on the local archive or over ssh, and prints the
files, nfdump's output and the decoder's counts; its errors end in
`nfdrun: ERRNO: cause`.

What is shown: over ssh, the same files and byte for byte the same nfdump
output as locally, for days, windows across midnight and a peer, in both
layouts (and as many records as the oracle); a host whose key is unknown
is refused at once even with a terminal to ask on (BatchMode), a stranger's
key and an unknown user are refused, each with ssh's own message; a hung
sshd is abandoned at the deadline and ssh is killed; an archive whose path
holds quotes, ';', $(...) and backquotes is read, and nothing in its name
runs.  Skipped, saying so, without sshd or the nfdump tools.
"""

import fcntl
import os
import shutil
import subprocess
import sys
import termios
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "nfdump"))

import mkarchive  # noqa: E402
import mkpcap  # noqa: E402
import oracle  # noqa: E402
import sshd  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_S = 120
HOUR_MS = 3600 * 1000
DAY_MS = 24 * HOUR_MS


def ms(iso):
    return mkpcap.utc_us(iso) // 1000


def nfdrun_binary():
    b = Path(os.environ.get("NFDRUN") or REPO / "build/tests/nfdump/nfdrun")
    if not os.access(b, os.X_OK):
        pytest.fail(f"nfdrun not built: {b} (ninja -C build)", pytrace=False)
    return b


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    gone = mkarchive.missing_tools() + sshd.missing_tools()
    if gone:
        pytest.skip("tools missing: %s (apt-get install nfdump softflowd "
                    "openssh-server openssh-client)" % ", ".join(gone))
    tmp = tmp_path_factory.mktemp("nfssh")
    mkpcap.build(str(tmp / "pcap"), seed=1, sessions=40, nburst=300)
    arch = mkarchive.build(str(tmp / "pcap"), str(tmp / "archives"),
                           names=("pcapd-flat", "pcapd-day"))
    return {"arch": arch, "tmp": tmp}


@pytest.fixture(scope="module")
def server(data):
    s = sshd.Sshd(data["tmp"] / "sshd")
    s.start()
    try:
        yield s
    finally:
        s.stop()


def nfdrun(source, subject, start, end, *opts, tty=False):
    """Run nfdrun; (exit status, stdout, stderr).  tty: with a terminal of
    its own (a new session whose controlling terminal is a pty), where ssh
    could ask a question if it were allowed to."""
    cmd = [str(nfdrun_binary()), *opts, str(source), subject, str(start),
           str(end)]
    kw = {}
    master = slave = None
    if tty:
        master, slave = os.openpty()
        kw = {"stdin": slave, "start_new_session": True,
              "preexec_fn": lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0)}
    else:
        kw = {"stdin": subprocess.DEVNULL}
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=RUN_TIMEOUT_S, **kw)
    finally:
        for fd in (master, slave):
            if fd is not None:
                os.close(fd)
    return p.returncode, p.stdout.decode(errors="replace"), \
        p.stderr.decode(errors="replace")


def counts(out):
    last = out.rstrip("\n").rsplit("\n", 1)[-1].split()
    assert last[0] == "records", f"no counts line at the end: {out[-300:]!r}"
    return dict(zip(last[0::2], map(int, last[1::2])))


def ssh_opts(server):
    return ("--ssh-config", server.config)


def assert_same_over_ssh(server, archive, subject, start, end, *opts,
                         url=None, ssh=None):
    rc, local, err = nfdrun(archive, subject, start, end, *opts)
    assert rc == 0, f"local run failed: {err}"
    rc, remote, err = nfdrun(url or server.url(str(archive)), subject, start,
                             end, *(ssh or ssh_opts(server)), *opts)
    assert rc == 0, f"ssh run failed: {err}\nsshd log:\n" \
        f"{server.log_text()[-1500:]}"
    assert remote == local
    return counts(local), local


WINDOWS = [
    # a whole day of each subject
    ("pcapd-flat", mkpcap.SUBJECT4, "2026-11-24T00:00:00", DAY_MS, ()),
    ("pcapd-day", mkpcap.SUBJECT6, "2026-11-25T00:00:00", DAY_MS,
     ("--layout", "1")),
    # the long NTP flow across midnight (records in the next day's folder)
    ("pcapd-day", mkpcap.SUBJECT6, "2026-11-24T23:00:00", 2 * HOUR_MS,
     ("--layout", "1")),
    # the long SSH flow's hour, with a peer
    ("pcapd-flat", mkpcap.SUBJECT4, "2026-11-24T10:00:00", HOUR_MS,
     ("--peer", "198.51.100.7")),
]


@pytest.mark.parametrize("name,subject,frm,length,opts", WINDOWS,
                         ids=["v4-day", "v6-day-layout", "midnight",
                              "peer"])
def test_same_records_as_local(data, server, name, subject, frm, length,
                               opts):
    archive = data["arch"][name]
    start = ms(frm)
    c, out = assert_same_over_ssh(server, archive, subject, start,
                                  start + length, *opts)
    peer = opts[1] if opts and opts[0] == "--peer" else None
    want = oracle.flows(archive, subject, start, start + length, peer)
    assert c["kept"] == len(want) > 0
    assert c["rejected"] == 0
    # the files were listed on the collector: a window's, not the archive's
    files = [ln for ln in out.splitlines() if ln.startswith("file ")]
    assert 0 < len(files) < sum(len(f) for _, _, f in os.walk(archive))


def test_url_with_user_and_port(data, server):
    """user@127.0.0.1:PORT in the URL, key and known_hosts as options, no
    config file (-F /dev/null)."""
    archive = data["arch"]["pcapd-flat"]
    start = ms("2026-11-26T00:00:00")
    url = f"nfdump+ssh://root@127.0.0.1:{server.port}{archive}"
    c, _ = assert_same_over_ssh(
        server, archive, mkpcap.SUBJECT4, start, start + DAY_MS, url=url,
        ssh=("--ssh-config", "/dev/null", "--identity", server.identity,
             "--known-hosts", server.known_hosts))
    assert c["kept"] > 0


def run_refused(server, archive, *opts, tty=False):
    start = ms("2026-11-24T00:00:00")
    url = f"nfdump+ssh://root@127.0.0.1:{server.port}{archive}"
    rc, out, err = nfdrun(url, mkpcap.SUBJECT4, start, start + HOUR_MS,
                          "--ssh-config", "/dev/null", "--deadline-ms",
                          "30000", *opts, tty=tty)
    assert rc == 2, f"not refused: {out[-300:]}"
    assert "file " not in out
    return err


def test_unknown_host_key_is_refused_without_asking(data, server):
    """An empty known_hosts: ssh must not ask (BatchMode), though it has a
    terminal to ask on; it fails at once with its message."""
    err = run_refused(server, data["arch"]["pcapd-flat"], "--identity",
                      server.identity, "--known-hosts",
                      server.empty_known_hosts, tty=True)
    assert "nfdrun: EACCES: ssh exited with status 255" in err
    assert "Host key verification failed" in err


def test_wrong_key_and_user_are_refused(data, server):
    archive = data["arch"]["pcapd-flat"]
    err = run_refused(server, archive, "--identity", server.other_identity,
                      "--known-hosts", server.known_hosts)
    assert "nfdrun: EACCES: ssh exited with status 255" in err
    assert "Permission denied (publickey)" in err
    start = ms("2026-11-24T00:00:00")
    url = f"nfdump+ssh://h14-no-such-user@127.0.0.1:{server.port}{archive}"
    rc, _, err = nfdrun(url, mkpcap.SUBJECT4, start, start + HOUR_MS,
                        "--ssh-config", "/dev/null", "--identity",
                        server.identity, "--known-hosts", server.known_hosts)
    assert rc == 2
    assert "nfdrun: EACCES:" in err and "Permission denied" in err


def test_nothing_listening_is_unreachable(data, server):
    port = sshd.free_port()
    start = ms("2026-11-24T00:00:00")
    url = f"nfdump+ssh://root@127.0.0.1:{port}{data['arch']['pcapd-flat']}"
    rc, _, err = nfdrun(url, mkpcap.SUBJECT4, start, start + HOUR_MS,
                        "--ssh-config", "/dev/null")
    assert rc == 2
    assert "nfdrun: EHOSTUNREACH:" in err and "Connection refused" in err


def ssh_pids(marker):
    """Processes whose command line holds marker (our ssh's config path)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                if marker.encode() in f.read():
                    out.append(int(d))
        except OSError:
            pass
    return out


def test_deadline_kills_a_hung_ssh(data, tmp_path):
    """sshd stopped (SIGSTOP): the TCP connection is made, no banner comes.
    ConnectTimeout is 60 s; the run's deadline, 1.5 s, ends it, and no ssh
    is left behind."""
    s = sshd.Sshd(tmp_path / "hung")
    s.start()
    try:
        s.pause()
        start = ms("2026-11-24T00:00:00")
        rc, out, err = nfdrun(s.url(str(data["arch"]["pcapd-flat"])),
                              mkpcap.SUBJECT4, start, start + HOUR_MS,
                              "--ssh-config", s.config, "--connect-timeout",
                              "60", "--deadline-ms", "1500")
        assert rc == 2, out[-300:]
        assert "nfdrun: ETIMEDOUT: ssh did not finish before its deadline" \
            in err
        assert ssh_pids(s.config) == []
    finally:
        s.stop()


HOSTILE = {
    # what a shell would run even between double quotes
    "subst": "x'; touch {0}; echo ' $(touch {1}) `touch {2}`",
    # a double quote and the other metacharacters
    "meta": "\" ; touch {0} ; \" & touch {1} | > * ~ \\ ${{IFS}}",
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_path_runs_nothing(data, server, tmp_path, kind):
    """The archive under a directory whose name would run commands in a
    shell: read over ssh like locally, and no marker file is made."""
    marks = [tmp_path / f"mark{i}" for i in range(3)]
    archive = tmp_path / HOSTILE[kind].format(*marks) / "arch"
    shutil.copytree(data["arch"]["pcapd-flat"], archive)
    start = ms("2026-11-24T00:00:00")
    try:
        c, _ = assert_same_over_ssh(server, archive, mkpcap.SUBJECT4, start,
                                    start + DAY_MS)
    finally:
        assert [m.name for m in marks if m.exists()] == []
    assert c["kept"] > 0
