"""Process lifecycle helpers shared by the children Abacus starts (broker, worker, ingest
pool), and the exit status that tells `abacus up` not to restart a worker."""

from __future__ import annotations

import contextlib
import ctypes
import signal

__all__ = ["EXIT_FINAL", "die_with_parent"]

_PR_SET_PDEATHSIG = 1
# A worker that exits with this status stopped for good (EX_CONFIG: e.g. records it cannot
# decompress, `streams.ingest_stop`): a restart would fail the same way, so `abacus up`'s
# supervisor does not restart it.
EXIT_FINAL = 78


def die_with_parent() -> None:
    """Ask Linux to SIGTERM this process when its parent dies, so a SIGKILLed stack leaves
    no orphan behind (a broker holding the port, an ingest process holding memory)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
