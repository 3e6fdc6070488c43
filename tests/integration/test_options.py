"""One option table per program, one policy for both fronts (issue 15).

- every option of a program's table is in its --help and its --man (the
  man page's OPTIONS entries are the table's, one .TP each);
- every flowfs -o option and flowfetch flag the README documents is in
  the program's table (the README is parsed);
- --version of each program;
- an engine option out of range is refused by flowfs and by flowfetch
  with the same words, and both show the same default and range;
- the default --help shows is the one used (max_records, which an SNA
  Manager does not state: collector/info.json says what the engine took);
- a range typed as a folder name and the same text given to flowfetch
  select the same flows.
"""
import json
import re
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import (NOW_ISO, NOW_MS, fetch_cmd, flowfetch, flowsim_binary,
                      parse_csv_bytes, run_fetch, sim_args, url_of)
from mount import require_flowfs, run

README = Path(__file__).resolve().parents[2] / "README.md"
HOUR = 3600 * 1000
DAY = 24 * HOUR


@pytest.fixture(scope="module")
def token():
    return "opt-test-token-0123456789"


@pytest.fixture(scope="module")
def fsim(make_module_sim, token_file):
    return make_module_sim(*sim_args(token_file))


def out_of(prog, *args):
    """PROG ARGS (--help, --man, --version): its exit status, stdout and
    stderr as text; flowfetch is run the tests' one way (run_fetch)."""
    if prog == "flowfetch":
        with tempfile.TemporaryDirectory() as tmp:
            f = run_fetch(fetch_cmd(None, extra=args), tmp, timeout=20)
        return subprocess.CompletedProcess(f.cmd, f.rc, f.stdout.decode(),
                                           f.stderr)
    binary = require_flowfs() if prog == "flowfs" else flowsim_binary()
    return subprocess.run([str(binary), *args], capture_output=True,
                          text=True, timeout=20)


def man_entries(man):
    """The spellings of the man page's OPTIONS entries (.TP, then .B)."""
    body = man.split(".SH OPTIONS\n", 1)[1].split("\n.SH ", 1)[0]
    out = re.findall(r"^\.TP\n\.B (.*)$", body, re.M)
    return [s.replace("\\-", "-").replace("\\e", "\\") for s in out]


@pytest.mark.parametrize("prog,section", [("flowfs", 8), ("flowfetch", 1),
                                          ("flowsim", 1)])
def test_man_and_help_from_one_table(prog, section):
    man = out_of(prog, "--man")
    assert man.returncode == 0, man.stderr
    assert man.stdout.startswith(f".TH {prog.upper()} {section} "), man.stdout[:80]
    for sh in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXAMPLES"):
        assert f"\n.SH {sh}\n" in man.stdout, f"{prog} --man has no {sh}"
    entries = man_entries(man.stdout)
    assert len(entries) > 5, entries
    hlp = out_of(prog, "--help")
    assert hlp.returncode == 0, hlp.stderr
    for e in entries:
        assert e in hlp.stdout, f"{prog}: {e!r} is in --man, not in --help"
    # and --help lists nothing the man page does not: its option lines
    lines = re.findall(r"^  (-\S.*?)(?:  +|\n)", hlp.stdout + "\n", re.M)
    for spelled in lines:
        assert spelled.strip() in entries, f"{prog}: {spelled!r} only in --help"
    for flag in ("--help", "--version", "--man"):
        assert flag in hlp.stdout


def test_fstab_and_flowfetch_examples_in_man():
    man = out_of("flowfs", "--man").stdout
    ex = man.split(".SH EXAMPLES\n", 1)[1].split("\n.SH ", 1)[0]
    assert "fuse.flowfs" in ex and "token_file=" in ex, ex
    assert "flowfetch" in ex
    assert ".SH FILES\n" in man and ".SH SEE ALSO\n" in man


def readme_section(text, title):
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_readme_options_are_in_the_tables():
    text = README.read_text()
    fs_help = out_of("flowfs", "--help").stdout
    ff_help = out_of("flowfetch", "--help").stdout
    # flowfs: every -o NAME= (or -o NAME) the README writes, anywhere
    fs_opts = set(re.findall(r"-o ([a-z][a-z_]+)(?==|[`\s,)])", text))
    fs_opts -= {"case",              # flowfetch's -o case-4711/...: a file
                "csv", "json"}       # nfdump's own -o csv, -o json
    assert {"token_file", "tz", "max_records", "retries"} <= fs_opts, fs_opts
    missing = sorted(o for o in fs_opts
                     if f"-o {o}=" not in fs_help and f"-o {o} " not in fs_help)
    assert not missing, f"README's flowfs options not in the table: {missing}"
    # flowfetch: every --flag of its section, and every one the README
    # pairs with a flowfs option elsewhere ("`-o files_tz=ZONE` (`--files-tz`")
    ff_text = re.sub(r"`flowsim\s[^`]*`", "",      # flowsim's, quoted there
                     readme_section(text, "flowfetch"))
    ff_flags = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", ff_text))
    ff_flags |= set(re.findall(r"`-o [a-z_]+(?:=[^`]*)?`,? \(`(--[a-z][a-z-]+)", text))
    assert {"--ip", "--from", "--retries", "--files-tz"} <= ff_flags, ff_flags
    missing = sorted(f for f in ff_flags
                     if not re.search(rf"{f}(?![\w-])", ff_help))
    assert not missing, f"README's flowfetch flags not in the table: {missing}"


@pytest.mark.parametrize("prog", ["flowfs", "flowfetch", "flowsim"])
def test_version(prog):
    p = out_of(prog, "--version")
    assert p.returncode == 0, p.stderr
    first = p.stdout.splitlines()[0]
    assert re.fullmatch(rf"{prog} \d+\.\d+\.\d+", first), first
    if prog != "flowsim":
        assert re.search(r"libcurl \d", p.stdout) and re.search(r"SQLite \d", p.stdout)
    if prog == "flowfs":
        assert re.search(r"libfuse \d", p.stdout), p.stdout


def help_facts(help_text, spelled):
    """The '(default D; LO to HI)' an option's --help entry ends with."""
    i = help_text.index(spelled)
    nxt = re.search(r"\n  -", help_text[i + 1:])
    entry = help_text[i:i + 1 + nxt.start()] if nxt else help_text[i:]
    m = re.search(r"\(default (\d+); (\d+) to (\d+)\)", " ".join(entry.split()))
    assert m, entry
    return tuple(int(x) for x in m.groups())


SHARED = ["max_inflight", "live_ttl", "stall_timeout", "request_timeout",
          "connect_timeout", "retries", "max_records", "active_timeout"]


@pytest.mark.parametrize("name", SHARED)
def test_same_default_and_range_in_both_helps(name):
    fs = help_facts(out_of("flowfs", "--help").stdout, f"-o {name}=")
    ff = help_facts(out_of("flowfetch", "--help").stdout,
                    "--" + name.replace("_", "-") + " ")
    assert fs == ff, f"{name}: flowfs says {fs}, flowfetch {ff}"


@pytest.mark.parametrize("name,value", [
    ("retries", "0"), ("retries", "101"), ("max_inflight", "65"),
    ("connect_timeout", "601"), ("stall_timeout", "abc"),
    ("max_records", "99"), ("live_ttl", "-1"), ("active_timeout", "86401"),
])
def test_out_of_range_refused_alike(mounts, fsim, tmp_path, token_file, name,
                                    value):
    """flowfs -o NAME=V and flowfetch --NAME V: refused with one message."""
    m = mounts(start=False, url=url_of(fsim), opts=[f"{name}={value}"])
    with pytest.raises(Exception):
        m.start()
    fs_err = m.stderr_text()
    m.proc = None
    f = flowfetch(url_of(fsim), "10.0.1.11", "2026-11-28", "2026-11-28",
                  tmp_path / "x.csv", cache=tmp_path / "c",
                  token_file=token_file,
                  extra=["--" + name.replace("_", "-"), value])
    assert f.rc == 2, f.describe()
    # each names the option as its user typed it, the rest alike
    flag = "--" + name.replace("_", "-")
    fs_msg = [l[len("flowfs: "):] for l in fs_err.splitlines()
              if l.startswith("flowfs: ")]
    ff_msg = [l[len("flowfetch: "):] for l in f.stderr.splitlines()
              if l.startswith("flowfetch: ")]
    assert ff_msg and ff_msg[0].startswith(f"{flag} {value} is "), ff_msg
    ff_msg = [l.replace(f"{flag} {value}", f"{name}={value}").replace(flag, name)
              for l in ff_msg]
    assert fs_msg and fs_msg == ff_msg, (fs_err, f.stderr)
    assert fs_msg[0].startswith(f"{name}={value} is "), fs_msg
    assert not (tmp_path / "x.csv").exists()


def test_default_max_records_is_the_one_used(make_module_sim, mounts, tmp_path):
    """An SNA Manager states no cap: the engine takes max_records' default,
    and info.json shows the cap it took; it is the one --help shows."""
    cred = tmp_path / "cred"
    cred.write_text("admin:flowsim\n")
    cred.chmod(0o600)
    s = make_module_sim("--now", NOW_ISO, "--dialect", "sna")
    want = help_facts(out_of("flowfs", "--help").stdout, "-o max_records=")[0]
    m = mounts(url="sna+" + url_of(s), token_file=cred)
    info = json.loads((m.mnt / "collector" / "info.json").read_text())
    assert info["max_records"] == want, info


def test_folder_range_and_flowfetch_select_the_same_flows(mounts, fsim, tmp_path,
                                                          token_file):
    """The range 2026-11-28T10:00:30.5--2026-11-28T11:15 typed as a folder
    name, and its two ends given to flowfetch: the same flows, one parser."""
    frm, to = "2026-11-28T10:00:30.500", "2026-11-28T11:15"
    m = mounts(url=url_of(fsim))
    folder = m.mnt / "10.0.1.11" / f"{frm}--{to}"
    r = run(["cat", str(folder / "flows.csv")], timeout=120)
    assert r.returncode == 0, r.stderr
    fs_rows = parse_csv_bytes(r.stdout)
    f = flowfetch(url_of(fsim), "10.0.1.11", frm, to, tmp_path / "ff.csv",
                  cache=tmp_path / "c2", token_file=token_file).ok()
    ff_rows = parse_csv_bytes(f.out.read_bytes())
    fs_ids = sorted(x["flowId"] for x in fs_rows)
    ff_ids = sorted(x["flowId"] for x in ff_rows)
    assert fs_ids and fs_ids == ff_ids
    # and the truth: flows that start in [from, to)
    t = fsim.truth("10.0.1.11", NOW_MS - DAY - 2 * HOUR + 30500,
                   NOW_MS - DAY - 45 * 60 * 1000)
    assert len(fs_ids) == t["count"], t
