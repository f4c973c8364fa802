"""CPU threads for runs that share a machine: OpenMP threads that spin only briefly while they wait, and no more
threads than the CPUs the process may use.

torch's CPU kernels run on OpenMP (GNU libgomp in the PyPI wheels), with one thread per CPU of the affinity mask
unless ``OMP_NUM_THREADS`` says otherwise. Between two parallel regions libgomp's idle threads spin (300,000 turns of
a busy loop by default) before they sleep. Alone on the machine that saves a wake-up; beside another busy process
each spinning thread takes a core the other needs, and the threads of one region wait for a descheduled partner:
two LightGCN runs on 2 cores took 6 s an epoch each instead of 1.1 s (issue 37). ``GOMP_SPINCOUNT=1000`` keeps a
short spin (a thousand turns) and then sleeps. Measured by ``bench.contention`` on 2 cores (issue 37): no spin at all
(``OMP_WAIT_POLICY=PASSIVE``) also cures the collapse but costs a run alone 30-50% on ml-100k, where an epoch is many
tiny parallel regions; 3,000 turns or more brings the collapse back (two runs at once 2x a one-thread run's epoch or
worse). libgomp reads the variable once, when it is loaded, so it must be in the environment before torch is
imported: :func:`configure` runs from ``recbole_bet/__init__.py``, which any ``import recbole_bet...`` executes
first. Other OpenMP runtimes ignore it.

A container's CPU limit is usually a cgroup quota (``docker --cpus``, a Kubernetes limit), which the affinity mask
does not show: torch would start a thread per visible core, and the kernel would throttle them all together. The
threads are capped at ``floor(quota / period)`` (at least 1), read from cgroup v2's ``cpu.max`` or v1's
``cpu.cfs_quota_us`` and ``cpu.cfs_period_us``.

What the user set wins: where ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` is already in the environment the spin is
left alone, as is the thread count where ``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS`` is set; ``RECBOLE_BET_THREADS=off``
leaves torch's and OpenMP's defaults. Neither setting changes what a run computes for a given thread count (the spin
changes only how threads wait); the thread count a run used is in its result file (``threads``).
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Mapping, MutableMapping

OFF = "RECBOLE_BET_THREADS"
THREAD_KEYS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
WAIT_KEYS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
#: turns of libgomp's busy loop before an idle thread sleeps (its default: 300,000); chosen by bench.contention
SPIN_COUNT = "1000"


def quota_from_cpu_max(text: str) -> float | None:
    """CPUs' worth of time in a cgroup v2 ``cpu.max`` (``"<quota> <period>"``, or ``"max <period>"``: no limit)."""
    parts = text.split()
    if not parts or parts[0] == "max":
        return None
    period = int(parts[1]) if len(parts) > 1 else 100000
    return int(parts[0]) / period if period > 0 else None


def quota_from_cfs(quota: str, period: str) -> float | None:
    """CPUs' worth of time in cgroup v1's ``cpu.cfs_quota_us`` and ``cpu.cfs_period_us`` (quota -1: no limit)."""
    quota_us, period_us = int(quota.strip()), int(period.strip())
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None


def own_cgroup(proc_cgroup: str) -> str:
    """The cgroup v2 path of this process in ``/proc/self/cgroup``'s text (its ``0::<path>`` line), "/" without one."""
    for line in proc_cgroup.splitlines():
        if line.startswith("0::"):
            return line[3:].strip() or "/"
    return "/"


def cgroup_cpu_limit(root: str | Path = "/sys/fs/cgroup", proc_cgroup: str | Path = "/proc/self/cgroup") -> float | None:
    """The smallest CPU quota (in CPUs) over this process's cgroup and its ancestors, or None where none is set or none
    can be read (no cgroups, another OS).

    cgroup v2: ``<root>/<path>/cpu.max`` for the process's path and every parent up to ``<root>``; cgroup v1:
    ``<root>/cpu/`` or ``<root>/cpu,cpuacct/`` (a container sees its own cgroup there).
    """
    root = Path(root)
    limits = []
    try:
        path = own_cgroup(Path(proc_cgroup).read_text())
    except OSError:
        path = "/"
    folder = root / path.strip("/")
    for candidate in (folder, *folder.parents):
        file = candidate / "cpu.max"
        if file.is_file():
            limits.append(read_limit(lambda: quota_from_cpu_max(file.read_text())))
        if candidate == root:
            break
    for v1 in (root / "cpu", root / "cpu,cpuacct"):
        if (v1 / "cpu.cfs_quota_us").is_file():
            limits.append(read_limit(lambda: quota_from_cfs((v1 / "cpu.cfs_quota_us").read_text(), (v1 / "cpu.cfs_period_us").read_text())))
            break
    limits = [limit for limit in limits if limit is not None]
    return min(limits) if limits else None


def read_limit(read) -> float | None:
    """``read()``, or None where the file cannot be read or parsed."""
    try:
        return read()
    except (OSError, ValueError, IndexError):
        return None


def usable_cpus(affinity: int, quota: float | None) -> int:
    """CPUs the process can keep busy: its affinity mask's, capped at the whole CPUs of the quota (at least 1)."""
    return max(1, min(affinity, math.floor(quota))) if quota is not None else max(1, affinity)


def thread_settings(environ: Mapping[str, str], affinity: int, quota: float | None) -> dict[str, str]:
    """The environment variables to set before torch loads (none where the user set them, or turned this off).

    Args:
        environ: the environment as it is.
        affinity (int): CPUs in the process's affinity mask (torch's default thread count).
        quota (float | None): :func:`cgroup_cpu_limit`.

    Example::

        >>> thread_settings({}, affinity=16, quota=2.5)
        {'GOMP_SPINCOUNT': '1000', 'OMP_NUM_THREADS': '2'}
    """
    if environ.get(OFF, "").strip().lower() in ("off", "0", "false", "no"):
        return {}
    settings = {}
    if not any(key in environ for key in WAIT_KEYS):
        settings["GOMP_SPINCOUNT"] = SPIN_COUNT
    cpus = usable_cpus(affinity, quota)
    if cpus < affinity and not any(key in environ for key in THREAD_KEYS):
        settings["OMP_NUM_THREADS"] = str(cpus)
    return settings


def configure(environ: MutableMapping[str, str] = os.environ) -> dict[str, str]:
    """Put :func:`thread_settings` into the environment, where torch is not loaded yet (else libgomp has read its
    settings already, and nothing is changed). Returns what was set."""
    if "torch" in sys.modules:
        return {}
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    settings = thread_settings(environ, affinity, cgroup_cpu_limit())
    environ.update(settings)
    return settings
