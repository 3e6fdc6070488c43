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
import stat
import subprocess

import pytest

from conftest import fetch_cmd, run_fetch, sim_args, url_of
from mount import MountError, mounted_at

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
    return run_fetch(fetch_cmd(url or url_of(sim), IP, DAY, DAY, tmp / out,
                               cache=cache, token_file=token_file,
                               extra=extra), tmp)


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
