"""A process-wide "please stop" flag for long jobs.

A send job checks `stop_requested()` between mails. The worker sets the flag
when it is asked to stop (SIGTERM, Ctrl-C): in a forked work horse through the
signal the worker forwards to it, in a simple worker directly. The job then
records the mail in flight, gives its unsent claimed rows back and returns.
"""
import signal
import threading

_stop = threading.Event()


def request_stop():
    _stop.set()


def stop_requested():
    return _stop.is_set()


def reset():
    """Clear the flag (a new work horse starts with it clear; tests)."""
    _stop.clear()


def _on_signal(signum, frame):
    _stop.set()


def install_handler(signum=signal.SIGTERM):
    """Let `signum` set the flag instead of killing the process."""
    signal.signal(signum, _on_signal)
