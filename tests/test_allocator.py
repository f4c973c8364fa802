"""keep_freed_memory: glibc takes the settings, and freshly allocated large tensors stop page-faulting.

Measured in a child process: the setting is process-wide, and runs in this
process may already have made it.
"""

import json
import platform
import subprocess
import sys

import pytest

from conftest import ROOT

CHILD = """
import json, resource, torch
from recbole_bet.allocator import keep_freed_memory

x = torch.ones(64 << 20 >> 2)  # 64 MB: above glibc's largest dynamic mmap threshold (32 MB)

def faults():
    for _ in range(3):  # warm-up: the heap grows to its working size
        (x + 1).sum()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        (x + 1).sum()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

default = faults()
accepted = keep_freed_memory()
print(json.dumps({"default": default, "accepted": accepted, "tuned": faults()}))
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")
def test_large_tensors_reuse_freed_memory():
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True, timeout=120, cwd=ROOT)
    counts = json.loads(out.stdout.strip().splitlines()[-1])
    assert counts["accepted"] is True
    assert counts["default"] >= 10  # 10 fresh 64 MB tensors fault in (page by page, or by huge pages) ...
    assert counts["tuned"] < counts["default"] / 4  # ... and (nearly) no longer once freed memory stays mapped


def test_threshold_must_fit_a_c_int():
    from recbole_bet.allocator import keep_freed_memory

    for bad in (0, 2**31, 2**32):
        with pytest.raises(ValueError, match=f"threshold={bad}; allowed: 1 to 2147483647"):
            keep_freed_memory(bad)
