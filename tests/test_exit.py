"""The command's fast exit: everything a normal exit runs first, then no module teardown."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

SCRIPT = """
import atexit, sys, threading, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from mlbench._exit import exit_now

out = Path(sys.argv[1])

def late(name):
    time.sleep(0.3)
    (out / name).write_text("done")

class Teardown:  # its __del__ runs only when the interpreter tears modules down
    def __del__(self):
        print("teardown", file=sys.stderr)

keep = Teardown()
threading.Thread(target=late, args=("thread",)).start()  # non-daemon: waited for
ThreadPoolExecutor(1).submit(late, "pool")  # a pool's pending work: waited for
atexit.register(lambda: (out / "atexit").write_text("ran"))
sys.stdout.write("x" * 100000)  # buffered on a pipe: flushed before leaving
exit_now(3)
"""


@pytest.mark.parametrize("full", [False, True])
def test_the_exit_waits_for_threads_runs_atexit_flushes_and_skips_teardown(tmp_path, full):
    env = {**os.environ, "PYTHONPATH": str(REPO), "MLBENCH_FULL_EXIT": "1" if full else "0"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3
    assert proc.stdout == "x" * 100000
    assert {p.name for p in tmp_path.iterdir()} == {"thread", "pool", "atexit"}
    assert ("teardown" in proc.stderr) is full  # the module teardown: only when asked


def test_the_command_exits_with_mains_code_through_the_fast_exit(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    bad = subprocess.run([sys.executable, "-m", "mlbench", "prune", "--strategy", "nope"],
                         env=env, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    listed = subprocess.run([sys.executable, "-m", "mlbench", "list"], env=env,
                            capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert listed.returncode == 0 and listed.stdout.endswith("\n")
    assert "global_weight" in listed.stdout


def test_a_reader_that_goes_away_gets_no_traceback(tmp_path):
    """`mlbench list | head -1`: the pipe closes under the command, which ends quietly."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "mlbench", "list"], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
    proc.stdout.close()  # before the command writes: every write finds the pipe closed
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert "Traceback" not in err and "BrokenPipe" not in err
