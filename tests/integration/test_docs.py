"""The code and the docs cite only files that are in the repository
(issue 15, item 10).

Every source file (*.c, *.h, *.py, meson.build, scripts) and every page
(*.md) is read for two kinds of citation:

- a page, `NAME.md`: it must be a path from the repository's root that
  exists (`docs/design.md`, `bench/REPORT.md`, `README.md`); a bare
  `design.md`, or a page of a brief that a clone does not have, fails;
- a place in a file, `FILE.c:NN` (also .h, .py): when FILE names one of
  ours (a path under one of the repository's top folders, or the bare name
  of one of its files), that file must exist and have line NN. Other
  projects' files cited by the research notes (nfdump's `src/...`, the
  SNA clients' scripts) name no file of ours and are left alone.

Nothing here needs a build: it reads the tree.
"""
import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Pages of other projects that the research notes cite by name; each is
# theirs, not ours.
EXTERNAL_PAGES = {
    "playbook-Query_Cisco_Stealthwatch_Flows_README.md",  # XSOAR's (docs/sna.md)
}

SCRIPTS = {"dev", "bench/run", ".ci/run"}
PAGE = re.compile(r"(?<![\w./+-])((?:\.{1,2}/)*[\w./+-]*\w\.md)(?![\w-])")
PLACE = re.compile(r"(?<![\w./+-])([\w./+-]*\w\.(?:c|h|py)):(\d+)(?![\w.])")


def repo_files():
    """The repository's files, relative to ROOT: git's list, else a walk
    that leaves build directories out (a tree unpacked without .git)."""
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"],
                             capture_output=True, check=True, timeout=60).stdout
        files = [f for f in out.decode().split("\0") if f]
        if files:
            return [f for f in files if (ROOT / f).exists()]
    except (OSError, subprocess.SubprocessError):
        pass
    files = []
    for d, dirs, names in os.walk(ROOT):
        dirs[:] = [x for x in dirs if not x.startswith(("build", "."))
                   or x == ".ci"]
        files += [os.path.relpath(os.path.join(d, n), ROOT) for n in names]
    return files


def is_read(f):
    return (f.endswith((".c", ".h", ".py", ".md")) or
            os.path.basename(f) == "meson.build" or f in SCRIPTS)


def c_comments(text):
    """C source with everything but its comments blanked (newlines kept, so
    line numbers hold): a citation is prose, and code such as `sink.md`
    (a struct member) is not one."""
    out, i, n = [], 0, len(text)
    while i < n:
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(text[i:j])
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(text[i:j])
            i = j
        elif text[i] in "\"'":
            q, j = text[i], i + 1
            while j < n and text[j] != q and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            out.append(re.sub(r"[^\n]", " ", text[i:j + 1]))
            i = j + 1
        else:
            out.append(text[i] if text[i] == "\n" else " ")
            i += 1
    return "".join(out)


def citations(files):
    """(file, line number, kind, cited, line cited or None) for every
    citation in the files read (in C sources, in their comments); words
    holding a URL are skipped."""
    me = os.path.relpath(__file__, ROOT)
    for f in files:
        if not is_read(f) or f == me:
            continue
        text = (ROOT / f).read_text(errors="replace")
        if f.endswith((".c", ".h")):
            text = c_comments(text)
        for n, line in enumerate(text.splitlines(), 1):
            words = " ".join(w for w in re.split(r"[\s`()<>\"']+", line)
                             if "://" not in w)
            for m in PAGE.finditer(words):
                yield f, n, "page", m.group(1), None
            for m in PLACE.finditer(words):
                yield f, n, "place", m.group(1), int(m.group(2))


def bad_citations():
    files = repo_files()
    have = set(files)
    tops = {f.split("/", 1)[0] for f in files if "/" in f}
    by_name = {}
    for f in files:
        by_name.setdefault(os.path.basename(f), []).append(f)
    bad = []
    for f, n, kind, cited, line in citations(files):
        where = f"{f}:{n}"
        if kind == "page":
            if cited in EXTERNAL_PAGES or cited in have:
                continue
            bad.append(f"{where}: {cited} is not a file of the repository "
                       "(cite pages by their path from the root)")
            continue
        if "/" in cited:
            if cited.split("/", 1)[0] not in tops:
                continue            # another project's tree (src/lib/...)
            targets = [cited] if cited in have else []
            if not targets:
                bad.append(f"{where}: {cited}:{line}: no such file")
                continue
        else:
            targets = by_name.get(cited)
            if not targets:
                continue            # another project's file (get_flows.py)
        lines = max(len((ROOT / t).read_text(errors="replace").splitlines())
                    for t in targets)
        if line > lines:
            bad.append(f"{where}: {cited}:{line}: {targets[0]} has {lines} lines")
    return bad


def test_docs_cite_only_files_in_the_repository():
    bad = bad_citations()
    assert not bad, "citations of files that are not here:\n  " + "\n  ".join(bad)


def test_no_reference_to_the_brief_outside_the_repository():
    """../shared/docs is the original brief's folder: a clone has none."""
    me = os.path.relpath(__file__, ROOT)
    hits = []
    for f in repo_files():
        if not is_read(f) or f == me:
            continue
        for n, line in enumerate((ROOT / f).read_text(errors="replace")
                                 .splitlines(), 1):
            if "shared/docs" in line:
                hits.append(f"{f}:{n}: {line.strip()}")
    assert not hits, "\n".join(hits)


def test_the_checker_finds_what_it_should():
    """The patterns on lines of the kinds this repository writes."""
    line = ("see engine-notes.md, `docs/design.md`, ../shared/docs/x.md, "
            "engine.c:12, fetch/plan.c:5, src/lib/flist.c:72 and "
            "https://example.org/a/README.md")
    words = " ".join(w for w in re.split(r"[\s`()<>\"']+", line)
                     if "://" not in w)
    pages = [m.group(1) for m in PAGE.finditer(words)]
    places = [m.group(1, 2) for m in PLACE.finditer(words)]
    assert pages == ["engine-notes.md", "docs/design.md", "../shared/docs/x.md"]
    assert places == [("engine.c", "12"), ("fetch/plan.c", "5"),
                      ("src/lib/flist.c", "72")]


def test_c_code_is_not_prose():
    """In a C source only comments are read: a struct member named md is
    no page, a comment's citation is (and its line number holds)."""
    src = ('\tsink.md = EVP_MD_CTX_new();\n'
           '\t/* see engine-notes.md */ x = "a.md";\n'
           '\t// docs/design.md\n')
    text = c_comments(src)
    assert text.count("\n") == src.count("\n")
    pages = [m.group(1) for m in PAGE.finditer(text)]
    assert pages == ["engine-notes.md", "docs/design.md"]
