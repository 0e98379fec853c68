"""Small process helpers shared by the benchmarks (make bench, make soak)."""

import socket
from pathlib import Path


def free_port():
    """An unused local TCP port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def worker_rss_kib(master_pid):
    """Resident memory of each gunicorn worker (the master's children), in KiB."""
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    sizes = {}
    for pid in children:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                sizes[int(pid)] = int(line.split()[1])
    return sizes
