"""archives: the test data of the nfdump tests, made once for a module.

    data = archives.build(tmp_dir)     # or pytest.skip when a tool is missing

writes the pcaps (mkpcap.build, seed 1, 120 exchanges a subject a day, a
burst of 3000 flows) and the archives (mkarchive.build) under tmp_dir,
and returns {"truth", "arch", "tmp", "made_ms"}: mkpcap's truth, the
archives' directories by name (pcapd-flat, pcapd-day, pcapd-export, v9,
ipfix), the directory, and the wall-clock milliseconds before and after
the archives were made.  Used by test_nfdump_data.py (the data) and
test_nfdump.py (the driver).
"""

import time
from pathlib import Path

import pytest

import mkarchive
import mkpcap

DAY_MS = 86400 * 1000
SUBJECTS = (mkpcap.SUBJECT4, mkpcap.SUBJECT6)


def ms(iso):
    """'2026-11-24T10:02:30' (UTC) as epoch milliseconds."""
    return mkpcap.utc_us(iso) // 1000


def build(tmp):
    """The pcaps and archives under tmp (a pathlib.Path); skips the test
    module, saying which, when the nfdump tools are missing."""
    gone = mkarchive.missing_tools()
    if gone:
        pytest.skip("nfdump tools missing: %s (apt-get install nfdump "
                    "softflowd)" % ", ".join(gone))
    tmp = Path(tmp)
    truth = mkpcap.build(str(tmp / "pcap"), seed=1, sessions=120,
                         nburst=3000)
    before = int(time.time() * 1000)
    arch = mkarchive.build(str(tmp / "pcap"), str(tmp / "archives"))
    after = int(time.time() * 1000)
    return {"truth": truth, "arch": arch, "tmp": tmp,
            "made_ms": (before, after)}
