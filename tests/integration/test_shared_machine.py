"""Issue 12 (hardening), items 1, 3 and 4: flowfs and flowfetch on a
machine other users share, as README.md's section "Security" promises.

- The cache directory: one that another user owns, that group or others may
  write, or that is a symbolic link, is refused before any request, with a
  message that says how to fix it; a link planted in the place of the
  database or of flowfs.log is never followed; each mount's snapshot
  directory is made afresh (a directory left there is removed, a link is
  left alone), so renders never land anywhere else.
- The token file: one that group or others may read, or that another user
  owns, is refused as ssh refuses such a key; flowfs and flowfetch cannot
  be dumped or traced by the user's other processes (PR_SET_DUMPABLE 0,
  seen as /proc/PID owned by root for a process of another user).
- Credentials in the URL are refused, naming the token file option; a
  token sent over plain http:// to a host that is not loopback is warned
  about once.

The tests run as root: "another user" is uid 65534 (nobody), given the
file or directory with chown, or the process with setuid.
"""

import os
import re
import secrets
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import flowfetch, require_flowfetch, sim_args, url_of
from mount import MountError, mounted_at, require_flowfs

IP = "10.0.1.40"
DAY = "2026-11-26"
NOBODY = 65534


@pytest.fixture(scope="module")
def token():
    """Distinctive, so that a leak cannot hide in other text."""
    return "flowfs-SECRET-" + secrets.token_hex(20)


@pytest.fixture(scope="module")
def tsim(make_module_sim, token_file):
    return make_module_sim(*sim_args(token_file, "--max-records", "500"))


def api_requests(sim):
    """Every request the sim saw but those of the tests (/_sim/...)."""
    return sum(sum(v.values()) for k, v in
               sim.counters().get("endpoints", {}).items()
               if not k.startswith("/_sim"))


def fetch(sim, tmp, cache, token_file, out="flows.csv", url=None, extra=()):
    return flowfetch(url or url_of(sim), IP, DAY, DAY, tmp / out, cache=cache,
                     token_file=token_file, extra=extra)


def refused(mounts, **kw):
    """A mount that must be refused: flowfs's stderr."""
    m = mounts(start=False, **kw)
    with pytest.raises(MountError):
        m.start()
    assert m.returncode not in (None, 0), m.returncode
    assert not mounted_at(m.mnt), "mounted anyway"
    m.proc = None                    # nothing to check at teardown
    return m.stderr_text()


# ---- item 1: the cache directory -------------------------------------------------------

def group_writable(d):
    d.mkdir()
    d.chmod(0o770)


def others_writable(d):
    d.mkdir()
    d.chmod(0o1777)                 # like /tmp


def other_owner(d):
    d.mkdir(mode=0o700)
    os.chown(d, NOBODY, NOBODY)


def a_link(d):
    real = d.with_name("real-cache")
    real.mkdir(mode=0o700)
    d.symlink_to(real)


def chmod_700(d):
    d.chmod(0o700)


def chown_back(d):
    os.chown(d, os.geteuid(), os.getegid())


# case -> (make the directory, what the message says, the fix it names)
SHARED_DIRS = {
    "group-writable": (group_writable, r"writable by group or others \(mode "
                       r"0770\): chmod 700 \S+/cache", chmod_700),
    "others-writable": (others_writable, r"writable by group or others "
                        r"\(mode 1777\): chmod 700", chmod_700),
    "other-owner": (other_owner, r"belongs to uid 65534, not to you.*-o "
                    r"cache=DIR, --cache DIR", chown_back),
    "symbolic-link": (a_link, r"is a symbolic link: give the directory "
                      r"itself", None),
}


@pytest.mark.parametrize("case", SHARED_DIRS)
def test_shared_cache_directory_refused(case, tsim, mounts, token_file,
                                        tmp_path):
    """A cache directory another user could write (or owns, or a link to
    somewhere): flowfetch exits 1 and flowfs refuses to mount, both with a
    message that says how to fix it, before any request and without
    writing anything there; after the fix it says, both work."""
    make, says, fix = SHARED_DIRS[case]
    cache = tmp_path / "cache"
    make(cache)
    before = api_requests(tsim)
    f = fetch(tsim, tmp_path, cache, token_file)
    assert f.rc == 1 and re.search(says, f.stderr), f.describe()
    assert not (tmp_path / "flows.csv").exists()
    err = refused(mounts, url=url_of(tsim), cache=cache)
    assert re.search(says, err), err
    assert api_requests(tsim) == before, "a request before the refusal"
    assert not list(cache.iterdir()), list(cache.iterdir())
    if fix:
        fix(cache)
        fetch(tsim, tmp_path, cache, token_file).ok()
        m = mounts(url=url_of(tsim), cache=cache)
        assert m.path(IP, DAY, "flows.csv").read_bytes() == \
            (tmp_path / "flows.csv").read_bytes()


def test_planted_database_never_followed(tsim, mounts, token_file, tmp_path):
    """The database replaced by a link to a database elsewhere (flows and
    coverage someone else wrote): refused by flowfetch and flowfs, the
    file it points to untouched."""
    cache = tmp_path / "cache"
    fetch(tsim, tmp_path, cache, token_file).ok()
    planted = tmp_path / "planted"
    planted.mkdir()
    for p in cache.glob("*.db*"):
        os.rename(p, planted / p.name)
    db = planted / next(p.name for p in planted.iterdir()
                        if p.name.endswith(".db"))
    (cache / db.name).symlink_to(db)
    seen = {p.name: (p.stat().st_size, p.stat().st_mtime_ns)
            for p in planted.iterdir()}
    f = fetch(tsim, tmp_path, cache, token_file, out="again.csv")
    assert f.rc == 1 and re.search(r"\.db is a symbolic link: refused",
                                   f.stderr), f.describe()
    assert not (tmp_path / "again.csv").exists()
    err = refused(mounts, url=url_of(tsim), cache=cache)
    assert re.search(r"\.db is a symbolic link: refused", err), err
    assert {p.name: (p.stat().st_size, p.stat().st_mtime_ns)
            for p in planted.iterdir()} == seen


def test_planted_log_never_followed(tsim, mounts, tmp_path):
    """flowfs.log a link to another file: the mount is refused, saying so;
    the file is not written."""
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    victim = tmp_path / "victim"
    victim.write_text("victim\n")
    (cache / "flowfs.log").symlink_to(victim)
    err = refused(mounts, url=url_of(tsim), cache=cache)
    assert re.search(r"flowfs\.log: .*symbolic link", err), err
    assert victim.read_text() == "victim\n"


# The shell's pid is flowfs's after exec: the snapshot directory's name is
# known before flowfs starts.  $0 is the cache, $1 a directory elsewhere.
PLANT = {
    # a directory left there, open to all, with a file in it
    "directory": 'mkdir -m 777 "$0/snap-$$" && echo x > "$0/snap-$$/planted"',
    # a link to a directory elsewhere
    "link": 'ln -s "$1" "$0/snap-$$"',
}


@pytest.mark.parametrize("case", PLANT)
def test_snapshot_directory_made_afresh(case, tsim, mounts, tmp_path):
    """snap-PID is there before flowfs starts: a directory (left by a
    killed flowfs with that pid) is removed and made again, 0700 and empty;
    a link is left alone, never followed, and flowfs renders into
    snap-PID-1.  Either way the files are served, and nothing is written
    outside the cache."""
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep").write_text("keep\n")
    m = mounts(start=False, url=url_of(tsim), cache=cache)
    cmd = m.cmdline()
    m.cmdline = lambda: ["sh", "-c", PLANT[case] + ' && shift && exec "$@"',
                         str(cache), str(elsewhere), *cmd]
    m.start()
    pid = m.proc.pid
    data = m.path(IP, DAY, "flows.csv").read_bytes()
    assert data.count(b"\n") > 100
    snap = cache / f"snap-{pid}"
    if case == "directory":
        st = os.lstat(snap)
        assert stat.S_ISDIR(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == 0o700, oct(st.st_mode)
        assert not list(snap.iterdir())
        log = (cache / "flowfs.log").read_text()
        assert f"removed {snap}, left by a flowfs that was killed" in log, log
    else:
        assert snap.is_symlink()
        st = os.lstat(cache / f"snap-{pid}-1")
        assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700
    assert sorted(p.name for p in elsewhere.iterdir()) == ["keep"]
    m.stop()
    assert not (cache / f"snap-{pid}-1").exists()


# ---- item 3: the token file; no dumps -----------------------------------------------

def token_mode(mode):
    def make(p):
        p.chmod(mode)
    return make


def token_owner(p):
    os.chown(p, NOBODY, NOBODY)


# case -> (spoil the file, what the message says, the URL's prefix)
LOOSE_TOKENS = {
    "0644": (token_mode(0o644), r"open to group or others \(mode 0644\): "
             r"chmod 600 \S+/token", ""),
    "0640": (token_mode(0o640), r"\(mode 0640\): chmod 600", ""),
    "0602": (token_mode(0o602), r"\(mode 0602\): chmod 600", ""),
    "other-owner": (token_owner, r"belongs to uid 65534, not to you", ""),
    "sna-password": (token_mode(0o644), r"\(mode 0644\): chmod 600", "sna+"),
}


@pytest.mark.parametrize("case", LOOSE_TOKENS)
def test_token_file_must_be_private(case, tsim, token, mounts, tmp_path):
    """A token file (an SNA Manager's user:password file too) that group or
    others may read, or that another user owns: flowfetch exits 2 and flowfs
    refuses to mount, saying what to run, before any request; the token is
    not shown."""
    spoil, says, prefix = LOOSE_TOKENS[case]
    tf = tmp_path / "token"
    tf.write_text(token + "\n")
    tf.chmod(0o600)
    spoil(tf)
    url = prefix + url_of(tsim)
    before = api_requests(tsim)
    f = fetch(tsim, tmp_path, tmp_path / "cache", tf, url=url)
    assert f.rc == 2 and re.search(says, f.stderr), f.describe()
    assert token not in f.stderr
    err = refused(mounts, url=url, token_file=tf)
    assert re.search(says, err) and token not in err, err
    assert api_requests(tsim) == before, "a request with a token not private"


def test_private_token_file_accepted(tsim, token, mounts, tmp_path):
    """0600 and 0400 are private: both fronts take them."""
    tf = tmp_path / "token"
    tf.write_text(token + "\n")
    tf.chmod(0o400)
    fetch(tsim, tmp_path, tmp_path / "cache", tf).ok()
    m = mounts(url=url_of(tsim), token_file=tf)
    assert m.path(IP, DAY, "flows.csv").read_bytes() == \
        (tmp_path / "flows.csv").read_bytes()


@pytest.fixture
def nobody_dir():
    """A directory of uid 65534 in /tmp (pytest's are root's, 0700)."""
    d = Path(tempfile.mkdtemp(prefix="flowfs-nobody-"))
    os.chown(d, NOBODY, NOBODY)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def silent_collector():
    """A socket on 127.0.0.1 that takes connections and never answers."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    s.settimeout(20)
    try:
        yield s
    finally:
        s.close()


def mine(path, uid):
    """Make path (a file or directory) uid's, private."""
    os.chown(path, uid, uid)
    path.chmod(0o700 if path.is_dir() else 0o600)


@pytest.mark.parametrize("front", ["flowfetch", "flowfs"])
def test_not_dumpable(front, token, nobody_dir, silent_collector):
    """flowfetch and flowfs, run by uid 65534, have made themselves
    undumpable by the time they send the token (the collector's accept):
    the kernel then shows their /proc/PID files as root's, so the user's
    other processes cannot read their memory or environment, trace them, or
    get a core dump."""
    tf = nobody_dir / "token"
    tf.write_text(token + "\n")
    mine(tf, NOBODY)
    cache = nobody_dir / "cache"
    cache.mkdir()
    mine(cache, NOBODY)
    url = "http://127.0.0.1:%d" % silent_collector.getsockname()[1]
    # a copy that uid 65534 can run: the build directory may sit below a
    # directory only root may enter (CI's clone is in a mktemp -d, 0700)
    binary = nobody_dir / front
    shutil.copy2(require_flowfetch() if front == "flowfetch" else require_flowfs(), binary)
    binary.chmod(0o755)
    if front == "flowfetch":
        cmd = [str(binary), url, "--ip", IP, "--from", DAY,
               "--to", DAY, "--token-file", str(tf), "--cache", str(cache),
               "-o", str(nobody_dir / "flows.csv")]
    else:
        mnt = nobody_dir / "mnt"
        mnt.mkdir()
        mine(mnt, NOBODY)
        cmd = [str(binary), "-f", "-o",
               f"token_file={tf},cache={cache}", url, str(mnt)]
    env = {k: v for k, v in os.environ.items() if k != "FLOWFS_TOKEN"}
    env["HOME"] = str(nobody_dir)
    p = subprocess.Popen(cmd, user=NOBODY, group=NOBODY, extra_groups=[],
                         env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        try:
            conn, _ = silent_collector.accept()
        except OSError as e:
            p.kill()
            pytest.fail(f"{front} never connected ({e}): "
                        f"{p.communicate()[1].decode(errors='replace')}")
        owners = {n: os.stat(f"/proc/{p.pid}/{n}").st_uid
                  for n in ("status", "environ", "mem")}
        conn.close()
        assert owners == {"status": 0, "environ": 0, "mem": 0}, \
            f"{front}'s /proc/{p.pid} files belong to {owners}: it is dumpable"
    finally:
        if p.poll() is None:
            p.kill()
        p.communicate(timeout=10)


# ---- item 4: credentials in the URL; tokens in clear text ---------------------------

# the URL's user information -> the URL (the collector's host:port after @)
CRED_URLS = {
    "user-password": "http://flowfs-reader:{secret}@{hp}",
    "token-as-user": "http://{secret}@{hp}/",
    "sna-user": "sna+http://{secret}@{hp}",
    "sna-https": "sna+https://flowfs-reader:{secret}@{hp}/",
}


@pytest.mark.parametrize("case", CRED_URLS)
def test_credentials_in_url_refused(case, tsim, token, token_file, mounts,
                                    tmp_path):
    """A URL with user information: flowfetch exits 2 and flowfs refuses
    to mount, both naming their token file option, without showing the
    secret, before any request; nothing is mounted, so /proc/mounts does
    not hold it either."""
    hp = url_of(tsim).split("://", 1)[1]
    url = CRED_URLS[case].format(secret=token, hp=hp)
    before = api_requests(tsim)
    f = fetch(tsim, tmp_path, tmp_path / "cache", token_file, url=url)
    assert f.rc == 2 and "user name or password" in f.stderr and \
        "--token-file" in f.stderr, f.describe()
    assert token not in f.stderr
    err = refused(mounts, url=url)
    assert "user name or password" in err and "-o token_file=" in err, err
    assert token not in err
    assert api_requests(tsim) == before
    assert token not in open("/proc/mounts").read()


# The collector's port at 0.0.0.0, which Linux connects to this machine:
# a host that is not 127.x, ::1 or localhost, reaching the sim.
def off_loopback(sim):
    return f"http://0.0.0.0:{sim.port}"


WARNING = re.compile(r"warning: the token is sent over plain http:// to "
                     r"0\.0\.0\.0:\d+, which is not this machine")


def test_plain_http_warned_once_flowfetch(tsim, token, token_file, tmp_path):
    """flowfetch warns once on stderr when it sends the token over plain
    http:// to a host that is not loopback; not to 127.0.0.1, not without
    a token, not over https://."""
    f = fetch(tsim, tmp_path, tmp_path / "cache", token_file,
              url=off_loopback(tsim)).ok()
    assert len(WARNING.findall(f.stderr)) == 1, f.stderr
    assert token not in f.stderr
    f = fetch(tsim, tmp_path, tmp_path / "cache", token_file, out="b.csv")
    assert "plain http" not in f.ok().stderr, f.stderr
    f = fetch(tsim, tmp_path, tmp_path / "cache", None, out="c.csv",
              url=off_loopback(tsim))
    assert f.rc == 1 and "plain http" not in f.stderr, f.describe()
    f = fetch(tsim, tmp_path, tmp_path / "cache", token_file, out="d.csv",
              url=f"https://0.0.0.0:{tsim.port}",
              extra=["--connect-timeout", "2", "--retries", "1"])
    assert f.rc == 1 and "plain http" not in f.stderr, f.describe()


def test_plain_http_warned_once_flowfs(tsim, token, mounts, tmp_path):
    """flowfs warns once, in flowfs.log and on stderr (a mount in the
    background too, whose stderr is the terminal until it detaches), when
    it will send the token over plain http:// to a host that is not
    loopback; not to 127.0.0.1."""
    m = mounts(url=off_loopback(tsim))
    assert m.path(IP, DAY, "flows.csv").read_bytes().count(b"\n") > 100
    m.stop()
    log = (m.cache / "flowfs.log").read_text()
    assert len(WARNING.findall(log)) == 1, log
    assert len(WARNING.findall(m.stderr_text())) == 1, m.stderr_text()
    # in the background: the warning on the terminal before it detaches
    mnt, cache = tmp_path / "bg", tmp_path / "bg-cache"
    mnt.mkdir()
    r = subprocess.run([str(require_flowfs()), "-o",
                        f"token_file={m.token_file},cache={cache}",
                        off_loopback(tsim), str(mnt)],
                       capture_output=True, text=True, timeout=30)
    try:
        assert r.returncode == 0, r.stderr
        assert len(WARNING.findall(r.stderr)) == 1, r.stderr
    finally:
        subprocess.run(["fusermount3", "-u", "-z", str(mnt)],
                       capture_output=True, timeout=10)
        # the daemon (its pid from its log) ends on the unmount
        pids = re.findall(r"flowfs\[(\d+)\]: mounted", (cache / "flowfs.log")
                          .read_text()) if (cache / "flowfs.log").exists() else []
        deadline = time.monotonic() + 10
        while pids and os.path.exists(f"/proc/{pids[-1]}") and \
                time.monotonic() < deadline:
            time.sleep(0.05)
        assert not pids or not os.path.exists(f"/proc/{pids[-1]}"), \
            "the background flowfs did not end on the unmount"
    m2 = mounts(url=url_of(tsim))
    m2.stop()
    assert "plain http" not in (m2.cache / "flowfs.log").read_text()
    assert "plain http" not in m2.stderr_text()
