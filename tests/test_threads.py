"""recbole_bet.threads: the wait policy and the thread count set before torch loads, from cgroup files in a temporary
folder, and in a fresh interpreter."""

import json
import os
import subprocess
import sys

import pytest

from recbole_bet.threads import cgroup_cpu_limit, configure, quota_from_cfs, quota_from_cpu_max, thread_settings, usable_cpus

from conftest import ROOT


def cgroup(tmp_path, files: dict, own: str = "0::/") -> tuple:
    """A fake ``/sys/fs/cgroup`` holding ``files`` (relative path: text), and a ``/proc/self/cgroup`` naming ``own``."""
    root = tmp_path / "cgroup"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    root.mkdir(exist_ok=True)
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text(f"4:memory:/x\n{own}\n")
    return root, proc


def test_quota_files_parse_to_cpus():
    assert quota_from_cpu_max("200000 100000\n") == 2.0 and quota_from_cpu_max("150000 100000") == 1.5
    assert quota_from_cpu_max("max 100000") is None and quota_from_cpu_max("") is None
    assert quota_from_cfs("50000\n", "100000\n") == 0.5 and quota_from_cfs("-1", "100000") is None


@pytest.mark.parametrize("files, own, expected", [
    ({}, "0::/", None),  # no cgroup files: no limit
    ({"cpu.max": "max 100000"}, "0::/", None),
    ({"cpu.max": "250000 100000"}, "0::/", 2.5),  # cgroup v2, a container's own root
    # v2 on a host: the process's cgroup and its parents; the tightest counts
    ({"a/b/cpu.max": "max 100000", "a/cpu.max": "300000 100000", "cpu.max": "max 100000"}, "0::/a/b", 3.0),
    ({"a/b/cpu.max": "100000 100000", "a/cpu.max": "300000 100000"}, "0::/a/b", 1.0),
    ({"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"}, "", None),  # cgroup v1, no quota
    ({"cpu,cpuacct/cpu.cfs_quota_us": "150000", "cpu,cpuacct/cpu.cfs_period_us": "100000"}, "", 1.5),
    ({"cpu.max": "garbage here"}, "0::/", None),  # unreadable: as no limit, never an error
])
def test_cgroup_cpu_limit_reads_v2_and_v1(files, own, expected, tmp_path):
    root, proc = cgroup(tmp_path, files, own)
    assert cgroup_cpu_limit(root, proc) == expected


def test_threads_fit_the_affinity_mask_and_the_whole_cpus_of_the_quota():
    assert usable_cpus(16, None) == 16 and usable_cpus(16, 2.5) == 2 and usable_cpus(2, 8.0) == 2
    assert usable_cpus(16, 0.5) == 1  # at least one thread


@pytest.mark.parametrize("environ, affinity, quota, expected", [
    ({}, 2, None, {"GOMP_SPINCOUNT": "1000"}),  # no quota: torch's own count, the affinity mask's
    ({}, 16, 2.5, {"GOMP_SPINCOUNT": "1000", "OMP_NUM_THREADS": "2"}),
    ({"OMP_WAIT_POLICY": "ACTIVE"}, 16, 4.0, {"OMP_NUM_THREADS": "4"}),  # the user's policy wins
    ({"GOMP_SPINCOUNT": "50"}, 16, 4.0, {"OMP_NUM_THREADS": "4"}),  # and the user's spin count
    ({"OMP_NUM_THREADS": "8"}, 16, 4.0, {"GOMP_SPINCOUNT": "1000"}),  # and the user's thread count
    ({"MKL_NUM_THREADS": "8"}, 16, 4.0, {"GOMP_SPINCOUNT": "1000"}),
    ({"RECBOLE_BET_THREADS": "off"}, 16, 2.0, {}),  # torch's and OpenMP's defaults
])
def test_thread_settings_leave_what_the_user_set(environ, affinity, quota, expected):
    assert thread_settings(environ, affinity, quota) == expected


def test_configure_changes_nothing_once_torch_is_loaded():
    import torch  # libgomp has read its environment

    assert torch.get_num_threads() >= 1

    environ = {}
    assert configure(environ) == {} and environ == {}


PROBE = "import os, recbole_bet.errors, torch; print(os.environ.get('GOMP_SPINCOUNT'), torch.get_num_threads())"


@pytest.mark.parametrize("extra, set_here, spins", [
    ({}, "1000", "1000"),
    ({"OMP_WAIT_POLICY": "ACTIVE"}, None, "30000000000"),  # the user's policy wins
    ({"OMP_WAIT_POLICY": "PASSIVE"}, None, "0"),
    ({"GOMP_SPINCOUNT": "77"}, "77", "77"),  # and the user's count
    ({"RECBOLE_BET_THREADS": "off"}, None, "300000"),  # libgomp's default
])
@pytest.mark.slow
def test_any_import_of_the_package_sets_the_spin_before_torch_loads(extra, set_here, spins):
    """Importing any module of the package first reaches libgomp: OMP_DISPLAY_ENV makes it print the spin count it
    read (1000: ours; 0: the passive policy's; 300,000 is its default, 30 billion the active policy's)."""
    environ = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "RECBOLE_BET_THREADS")}
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=ROOT,
                          env=dict(environ, OMP_DISPLAY_ENV="verbose", **extra), timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[0] == str(set_here)
    assert f"GOMP_SPINCOUNT = '{spins}'" in done.stderr, done.stderr[-2000:]


@pytest.mark.slow
def test_the_wait_policy_does_not_change_a_result(tmp_path):
    """The same run with our short spin and with OpenMP's default: the same thread count, the same result."""
    results = []
    for extra in ({}, {"RECBOLE_BET_THREADS": "off"}):
        out = tmp_path / f"result{len(results)}.json"
        environ = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "RECBOLE_BET_THREADS")}
        done = subprocess.run([sys.executable, str(ROOT / "run_recbole_bet.py"), "--method=es", "--epochs=2", "--show_progress=False",
                               f"--checkpoint_dir={tmp_path / 'saved'}", f"--result_file={out}"],
                              capture_output=True, text=True, cwd=tmp_path, env=dict(environ, **extra), timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        results.append(json.loads(out.read_text()))
    first, second = results
    assert first["threads"] == second["threads"] >= 1
    assert (first["test"], first["valid"], first["curve"]) == (second["test"], second["valid"], second["curve"])
