"""Which process holds a job: an id written into the job when it is taken, that a process on the same
machine can check (is that process still alive?) and any other can only trust the job's heartbeat for."""

from __future__ import annotations

import os
import socket
from pathlib import Path

_me: tuple[int, str] | None = None


def _start_time(pid: int) -> str:
    """When a process started (clock ticks since boot, from /proc), to tell it from a later one with its
    pid; "" where that cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else ""


def _pid_space() -> str:
    """Which pid namespace this process is in (containers sharing a host name each have their own)."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return ""


def worker_id() -> str:
    """This process, as written into the jobs it holds: "host:pid-space:pid:start" (worked out again
    after a fork)."""
    global _me
    if _me is None or _me[0] != os.getpid():
        me = f"{socket.gethostname()}:{_pid_space()}:{os.getpid()}:{_start_time(os.getpid())}"
        _me = (os.getpid(), me[:120])
    return _me[1]


def holder_state(worker: str | None) -> str:
    """ "alive" or "gone" for a process on this machine (same host name and pid space, so its pid can be
    looked up, and its start time tells a later process with the same pid); "unknown" elsewhere, where
    silence must tell instead (``is_stale``)."""
    if not worker or worker == "rq":
        return "unknown"
    parts = worker.split(":")
    if len(parts) < 4 or not parts[-2].isdigit():
        return "unknown"
    host, space, pid, started = ":".join(parts[:-3]), parts[-3], int(parts[-2]), parts[-1]
    if host != socket.gethostname() or space != _pid_space():
        return "unknown"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "gone"
    except PermissionError:
        return "alive"  # under another user
    now_started = _start_time(pid)
    return "gone" if started and now_started and now_started != started else "alive"
