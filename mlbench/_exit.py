"""How the ``mlbench`` command ends: as Python's exit does, minus the module teardown.

After a command's work, a normal exit finalizes every module. With PyTorch's wheels that
teardown takes 0.3-1 s of a 2-core machine and raises the process's peak memory by about
140 MB (``python -c "import torch"`` peaks at 648 MB against 508 MB just before it;
benchmarks/RESULTS.md): a share of a short run, and the peak is what a batch
scheduler's memory limit sees. So the command ends the way Python's own exit begins
(non-daemon threads joined, ``atexit`` handlers run, standard streams flushed) and then
leaves with ``os._exit``. ``MLBENCH_FULL_EXIT=1`` keeps the full teardown. Library use
(``import mlbench``) never passes through here.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from typing import NoReturn


def exit_now(code: int) -> NoReturn:
    """End the process with ``code`` after what a normal exit runs before its teardown."""
    if os.environ.get("MLBENCH_FULL_EXIT", "0") == "1":
        sys.exit(code)
    shutdown = getattr(threading, "_shutdown", None)  # what Python runs first at exit
    if shutdown is None or not hasattr(atexit, "_run_exitfuncs"):
        sys.exit(code)  # another Python: the ordinary way
    shutdown()  # wait for non-daemon threads (thread pools' own exit hooks included)
    atexit._run_exitfuncs()  # logging.shutdown and every other handler, in LIFO order
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing to say
            stream.flush()
    os._exit(code)
