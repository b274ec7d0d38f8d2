"""Start-up tuning for commands that load numpy, pandas, pyarrow and a model's framework.

Loading that stack is most of a short command's time; two things in it are waste that only the
process owner (the command, not the library) may switch off:

- OpenBLAS worker threads (numpy's and scipy's each start some) spin for ~0.1 s after they
  start and after every call before they sleep: a tenth of ``cairn models predict``'s CPU,
  taken from the main thread on a two-core machine. Waking a sleeping worker costs microseconds.
- The imports allocate about a million long-lived objects, and the cyclic garbage collector
  scans them again at every collection without finding garbage among them.
"""

from __future__ import annotations

import contextlib
import gc
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = ["collector_paused", "quiet_blas_threads"]


def quiet_blas_threads() -> None:
    """Let idle OpenBLAS workers sleep at once; call before numpy loads. A user's value wins."""
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")  # 2**4 cycles, OpenBLAS's minimum


@contextlib.contextmanager
def collector_paused() -> Iterator[Callable[[], None]]:
    """Pause cyclic garbage collection; the yielded ``resume()`` ends the pause.

    ``resume()`` freezes every object alive at that point (what the imports built) so later
    collections skip them, then collects again as usual: call it once the heavy imports are
    done. Leaving the block undoes both, so an in-process caller (a test) keeps its collector.
    """
    if not gc.isenabled():
        yield lambda: None
        return
    frozen = False

    def resume() -> None:
        nonlocal frozen
        if not frozen:
            frozen = True
            gc.freeze()
            gc.enable()

    gc.disable()
    try:
        yield resume
    finally:
        if frozen:
            gc.unfreeze()
        gc.enable()
