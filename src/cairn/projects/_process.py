"""The project's command as a supervised process tree.

The command runs in its own session (process group), so stopping it reaches everything it
started. Its stdout and stderr are copied live to the console and into files. A watchdog
process holds a pipe from us: if we die in any way (even SIGKILL, as Spark does to a task's
Python worker), the pipe closes and the watchdog stops the whole group.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence
    from pathlib import Path

__all__ = ["CommandProcess", "stop_on_signals"]

STOP_GRACE_S = 10.0
_WATCHDOG = """
import os, signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
pgid, grace = int(sys.argv[1]), float(sys.argv[2])
sys.stdin.buffer.read()
def alive():
    try:
        os.killpg(pgid, 0)
        return True
    except OSError:
        return False
if alive():
    os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    if alive():
        os.killpg(pgid, signal.SIGKILL)
"""


class CommandProcess:
    """One command, started in a new process group, its output teed to console and files."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        log_dir: Path,
        echo: bool = True,
        grace_s: float = STOP_GRACE_S,
    ) -> None:
        self.argv = list(argv)
        self.cwd = cwd
        self.env = dict(env)
        self.stdout_path = log_dir / "stdout.txt"
        self.stderr_path = log_dir / "stderr.txt"
        self.echo = echo
        self.grace_s = grace_s
        self.stopped_by: str | None = None  # the signal name we were asked to stop for
        self._proc: subprocess.Popen[bytes] | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._pumps: list[threading.Thread] = []
        self._lock = threading.Lock()

    @property
    def pid(self) -> int:
        assert self._proc is not None, "not started"
        return self._proc.pid

    def start(self) -> None:
        """Start the command; OSError when it cannot be executed at all."""
        self.stdout_path.parent.mkdir(parents=True, exist_ok=True)
        self._proc = subprocess.Popen(
            self.argv,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self._watchdog = subprocess.Popen(
            [sys.executable, "-S", "-c", _WATCHDOG, str(self._proc.pid), str(self.grace_s)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        if self.stopped_by is not None:  # asked to stop while starting
            self._signal_group(signal.SIGTERM)
        assert self._proc.stdout is not None and self._proc.stderr is not None
        for source, path, console in (
            (self._proc.stdout, self.stdout_path, sys.stdout),
            (self._proc.stderr, self.stderr_path, sys.stderr),
        ):
            pump = threading.Thread(
                target=self._pump,
                args=(source, path, console if self.echo else None),
                name="cairn-project-output",
                daemon=True,
            )
            pump.start()
            self._pumps.append(pump)

    @staticmethod
    def _pump(source: IO[bytes], path: Path, console: IO[str] | None) -> None:
        sink = getattr(console, "buffer", None) if console is not None else None
        with path.open("wb") as file:
            while chunk := os.read(source.fileno(), 65536):
                file.write(chunk)
                file.flush()
                if console is None:
                    continue
                try:
                    if sink is not None:
                        console.flush()
                        sink.write(chunk)
                        sink.flush()
                    else:
                        console.write(chunk.decode(errors="replace"))
                        console.flush()
                except (OSError, ValueError):
                    console = None  # the console went away; keep the files
        source.close()

    def wait(self) -> int:
        """Wait for the command; returns its exit status (negative: the signal that ended it)."""
        assert self._proc is not None and self._watchdog is not None, "not started"
        try:
            returncode = self._proc.wait()
        finally:
            # The command is done: the watchdog now stops anything it left behind.
            with contextlib.suppress(OSError):
                assert self._watchdog.stdin is not None
                self._watchdog.stdin.close()
            for pump in self._pumps:
                pump.join(timeout=self.grace_s + 5)
        return returncode

    def stop(self, reason: str) -> None:
        """SIGTERM the whole group, SIGKILL it after the grace period (at once if asked twice)."""
        with self._lock:
            first = self.stopped_by is None
            self.stopped_by = self.stopped_by or reason
        if self._proc is None or self._proc.poll() is not None:
            return
        self._signal_group(signal.SIGTERM if first else signal.SIGKILL)
        if first:
            timer = threading.Timer(self.grace_s, self._signal_group, (signal.SIGKILL,))
            timer.daemon = True
            timer.start()

    def _signal_group(self, sig: signal.Signals) -> None:
        assert self._proc is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, sig)


@contextlib.contextmanager
def stop_on_signals(stop: Callable[[str], None]) -> Iterator[None]:
    """While inside, SIGINT and SIGTERM call ``stop(signal name)`` instead of ending us."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}

    def handler(signum: int, frame: object) -> None:
        stop(signal.Signals(signum).name)

    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
