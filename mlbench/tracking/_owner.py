"""Who owns a run or an outbox, and whether that process is dead: a process is named by
host, boot id, pid and its start time, so a reused pid is never taken for the owner."""

from __future__ import annotations

import os
import socket
from pathlib import Path

GRACE_S = float(os.environ.get("MLBENCH_RUN_GRACE", "600"))
_RUN_BY: list[int] = []  # the command this process tracks for (a tracking agent's)


def run_by(pid: int) -> None:
    """Name process ``pid`` as the owner of what this process makes from now on: a
    tracking agent (``_agent``) works for its command, and lives and dies with it."""
    _RUN_BY[:] = [pid]


def process_pid() -> int:
    """The pid that owns this process's runs: the command's (``run_by``), else our own."""
    return _RUN_BY[0] if _RUN_BY else os.getpid()


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _started(pid: int) -> str:
    """When process ``pid`` started (``/proc/PID/stat`` field 22), '' if unknown, None if
    there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return "gone"
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]


def owner_tag(pid: int | None = None) -> str:
    """This process (or the command it works for) as an owner: ``host|boot id|pid|start``."""
    pid = pid or process_pid()
    started = _started(pid)
    return f"{socket.gethostname()}|{_boot_id()}|{pid}|{'' if started == 'gone' else started}"


def dead_because(owner: str, heartbeat: str | None, now: float, grace_s: float = GRACE_S
                 ) -> str | None:
    """Why the owner of a RUNNING run is dead, or None while it may be alive."""
    try:
        host, boot, pid_text, started = owner.split("|")
        pid = int(pid_text)
    except ValueError:
        return None  # not ours to judge
    if host == socket.gethostname():
        if boot and _boot_id() and boot != _boot_id():
            return f"its host {host} rebooted since process {pid} ran it"
        now_started = _started(pid)
        if now_started == "gone":
            return f"process {pid} on {host} that ran it is gone"
        if started and now_started and now_started != started:
            return f"process {pid} on {host} that ran it is gone (the pid is another's now)"
        if now_started == "" and not _pid_alive(pid):
            return f"process {pid} on {host} that ran it is gone"
        return None
    try:
        beat = float(heartbeat or "")
    except ValueError:
        return None
    if now - beat > grace_s:
        return (f"no heartbeat from {host} (process {pid}) for {now - beat:.0f} s "
                f"(grace {grace_s:.0f} s)")
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


__all__ = ["GRACE_S", "dead_because", "owner_tag", "process_pid", "run_by"]
