#!/usr/bin/python3
"""Run the libFuzzer targets of a -Dfuzz=true build for a bounded time each.

    run.py BUILD [--seconds N] [--targets flows,path] [--jobs J] [--junit FILE]
           [--markdown] [--fresh]

Each target starts from its seed corpus (tests/fuzz/corpus/NAME, read only)
plus what earlier runs found (BUILD/fuzz-corpus/NAME, where new inputs are
written), with its dictionary when it has one, and runs for N seconds
(default: $FUZZ_SECONDS, else 18) under -rss_limit_mb and -timeout.  The
log of each run is BUILD/fuzz-logs/NAME.log.  A crash, a sanitizer report,
a failed property, a timeout or running out of memory fails the target: its
reproducer is left in BUILD/fuzz-artifacts/ and its path printed, with the
command that replays it.

--jobs runs J targets at once (default: 2, or 1 with --markdown, whose
figures compare runs of one process each).  --junit writes a JUnit report, one test case a target (tests/summarize.py
counts it); --markdown prints a table of the figures (bench/run fuzz);
--fresh forgets what earlier runs found.  Exit status 1 when a target failed.
"""
import argparse
import concurrent.futures
import os
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGETS = ["flows", "tables", "path", "prefix", "ivals", "nfdump", "flowmon"]
DICTS = {"flows": "json.dict", "flowmon": "flowmon.dict", "tables": "json.dict", "path": "path.dict", "prefix": "prefix.dict",
         "nfdump": "nfdump.dict"}
RSS_LIMIT_MB = 2048
UNIT_TIMEOUT_S = 10


def parse_stats(log):
    """The figures of a libFuzzer log: executions, exec/s, cov, ft, corpus."""
    st = {"execs": 0, "exec_s": 0, "cov": 0, "ft": 0, "corpus": 0, "corpus_bytes": 0, "rss_mb": 0}
    for m in re.finditer(r"^#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)/(\d+)(\w*)", log, re.M):
        st["execs"] = int(m.group(1))
        st["cov"], st["ft"], st["corpus"] = int(m.group(2)), int(m.group(3)), int(m.group(4))
        scale = {"b": 1, "Kb": 1024, "Mb": 1 << 20}.get(m.group(6), 1)
        st["corpus_bytes"] = int(m.group(5)) * scale
    for key, name in (("execs", "number_of_executed_units"), ("exec_s", "average_exec_per_sec"),
                      ("rss_mb", "peak_rss_mb")):
        m = re.search(rf"^stat::{name}:\s+(\d+)", log, re.M)
        if m:
            st[key] = int(m.group(1))
    return st


def cause(log):
    """The one line that says why a run failed."""
    for pat in (r"property failed: .*", r"SUMMARY: .*", r"ERROR: libFuzzer: .*", r"==\d+==ERROR: .*"):
        m = re.search(pat, log)
        if m:
            return m.group(0).strip()
    return "the fuzzer exited abnormally"


def run_target(build, name, seconds, fresh):
    exe = build / "tests" / "fuzz" / f"fuzz_{name}"
    work = build / "fuzz-corpus" / name
    artifacts = build / "fuzz-artifacts"
    logs = build / "fuzz-logs"
    if fresh and work.exists():
        shutil.rmtree(work)
    for d in (work, artifacts, logs):
        d.mkdir(parents=True, exist_ok=True)
    cmd = [str(exe), f"-max_total_time={seconds}", f"-rss_limit_mb={RSS_LIMIT_MB}",
           f"-timeout={UNIT_TIMEOUT_S}", "-print_final_stats=1",
           f"-artifact_prefix={artifacts}/{name}-"]
    if name in DICTS:
        cmd.append(f"-dict={HERE / DICTS[name]}")
    cmd += [str(work), str(HERE / "corpus" / name)]
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = "detect_leaks=1"
    env["UBSAN_OPTIONS"] = "halt_on_error=1:print_stacktrace=1"
    t0 = time.monotonic()
    log_path = logs / f"{name}.log"
    with open(log_path, "w") as log_file:
        try:
            rc = subprocess.run(cmd, stdout=log_file, stderr=subprocess.STDOUT, env=env,
                                timeout=seconds + 120).returncode
        except subprocess.TimeoutExpired:
            rc = -1
            log_file.write("\nrun.py: the fuzzer did not stop in time: killed\n")
    elapsed = time.monotonic() - t0
    log = log_path.read_text(errors="replace")
    st = parse_stats(log)
    st.update(name=name, rc=rc, seconds=elapsed, log=str(log_path), cmd=cmd)
    st["artifacts"] = re.findall(r"Test unit written to (\S+)", log)
    st["ok"] = rc == 0 and not st["artifacts"]
    st["cause"] = "" if st["ok"] else cause(log)
    return st


def report_line(st):
    head = (f"fuzz {st['name']}: {st['execs']} runs in {st['seconds']:.0f} s "
            f"({st['exec_s']}/s), cov {st['cov']}, corpus {st['corpus']}")
    if st["ok"]:
        return head + ", no crash"
    lines = [head + f", FAILED: {st['cause']}", f"  log: {st['log']}"]
    exe = st["cmd"][0]
    for a in st["artifacts"]:
        lines.append(f"  reproducer: {a}")
        lines.append(f"  replay: {exe} {a}")
    return "\n".join(lines)


def write_junit(path, results):
    suite = ET.Element("testsuite", name="fuzz", tests=str(len(results)),
                       failures=str(sum(not r["ok"] for r in results)),
                       time=f"{sum(r['seconds'] for r in results):.1f}")
    for r in results:
        case = ET.SubElement(suite, "testcase", classname="fuzz", name=r["name"],
                             time=f"{r['seconds']:.1f}")
        if not r["ok"]:
            fail = ET.SubElement(case, "failure", message=r["cause"])
            fail.text = report_line(r)
        ET.SubElement(case, "system-out").text = report_line(r)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suite).write(path, encoding="unicode", xml_declaration=True)


def load():
    return Path("/proc/loadavg").read_text().split()[0]


def markdown(results, seconds, load_start):
    rows = [f"Each target run once for {seconds} s from its seed corpus "
            f"(`tests/fuzz/corpus/NAME`) with its dictionary, `-rss_limit_mb={RSS_LIMIT_MB} "
            f"-timeout={UNIT_TIMEOUT_S}`, clang with ASan and UBSan, one process at a time "
            f"(`tests/fuzz/run.py --fresh`); load average (1 min) {load_start} at the start, "
            f"{load()} at the end. cov and features are libFuzzer's counters "
            "(edges and features of the instrumented code: flowfs's own, not the "
            "system's cJSON or libc).",
            "",
            "| target | what | executions | exec/s | cov (edges) | features | corpus (inputs) "
            "| peak RSS | crashes |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    what = {"flows": "answers of flows, both dialects, whole and as samples",
            "tables": "`/info`, lookup tables, SNA tenants and tags",
            "path": "the path grammar (fs_path_parse), zones and clocks",
            "prefix": "prefix parsing and canonical text",
            "ivals": "interval sets against a model"}
    for r in results:
        crashes = "0" if r["ok"] else f"**{max(1, len(r['artifacts']))}**: {r['cause']}"
        rows.append(f"| {r['name']} | {what.get(r['name'], '')} | {r['execs']:,} | {r['exec_s']:,} "
                    f"| {r['cov']} | {r['ft']} | {r['corpus']} | {r['rss_mb']} MB | {crashes} |")
    rows.append("")
    rows.append(f"Total: {sum(r['execs'] for r in results):,} executions, "
                f"{sum(0 if r['ok'] else max(1, len(r['artifacts'])) for r in results)} crashes.")
    return "\n".join(rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("build", type=Path)
    ap.add_argument("--seconds", type=int, default=int(os.environ.get("FUZZ_SECONDS", "18")))
    ap.add_argument("--targets", default=",".join(TARGETS))
    ap.add_argument("--jobs", type=int)
    ap.add_argument("--junit", type=Path)
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--fresh", action="store_true")
    a = ap.parse_args()
    names = a.targets.split(",")
    for name in names:
        if name not in TARGETS:
            ap.error(f"unknown target {name} (targets: {', '.join(TARGETS)})")
    jobs = a.jobs or (1 if a.markdown else 2)
    load_start = load()
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(run_target, a.build.resolve(), name, a.seconds, a.fresh)
                   for name in names]
        results = []
        for f in futures:       # reported in the targets' order
            r = f.result()
            print(report_line(r), file=sys.stderr if a.markdown else sys.stdout, flush=True)
            results.append(r)
    if a.junit:
        write_junit(a.junit, results)
    if a.markdown:
        print(markdown(results, a.seconds, load_start))
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
