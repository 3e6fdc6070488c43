#!/usr/bin/python3
"""Replace (or add) one benchmark's section of bench/REPORT.md, read from stdin."""
import re
import sys
from pathlib import Path

path, name, machine, date = sys.argv[1:5]
body = sys.stdin.read().strip()
report = Path(path)
text = report.read_text() if report.exists() else (
    "# Benchmark report\n\nEach section is rewritten by `bench/run NAME`; "
    "figures are ratios against a baseline measured in the same run.\n")
section = (f"<!-- bench:{name} -->\n## {name}\n\n"
           f"Machine: {machine}. Date: {date}.\n\n{body}\n<!-- /bench:{name} -->")
pattern = re.compile(rf"<!-- bench:{re.escape(name)} -->.*?<!-- /bench:{re.escape(name)} -->", re.S)
text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section + "\n"
report.write_text(text)
