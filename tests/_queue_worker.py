"""A worker process for the queue tests: drains a study, or holds one item.

    python -m tests._queue_worker STORAGE STUDY drain OUT [GRACE]
    python -m tests._queue_worker STORAGE STUDY hold OUT [GRACE]   (until OUT.release exists)

``drain`` takes items until none is left and appends each key it did to OUT; ``hold``
takes one item, writes its key to OUT and keeps it (heartbeats on) until released.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from mlbench.tuning import Job, WorkQueue, open_storage, parse_storage
from mlbench.tuning._queue import drain


def main(url: str, study: str, mode: str, out: str, grace: str = "4",
         start: Any = None) -> None:
    """``start``: a barrier the workers pass together once connected (a fair race)."""
    storage = open_storage(parse_storage(url), heartbeat_s=1, grace_s=int(grace))
    queue = WorkQueue.open(storage, study, [])
    if start is not None:
        start.wait()
    path = Path(out)
    if mode == "drain":
        with path.open("a") as f:

            def do(job: Job) -> None:
                f.write(job.key + "\n")
                f.flush()
                time.sleep(0.05)  # a little work, so that every worker gets some
                job.complete(f"run-{job.key}")

            drain(queue, do, max_poll_s=0.5)
        return
    job = queue.take()
    assert job is not None
    with job:
        path.write_text(job.key)
        while not Path(out + ".release").exists():
            time.sleep(0.1)  # poll for the test's signal
        job.complete(f"run-{job.key}")


if __name__ == "__main__":
    main(*sys.argv[1:])
