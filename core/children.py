"""Child processes that end with the process that started them.

`flask serve` starts gunicorn, the workers and the embedded Redis; the owner of
the embedded Redis starts the redis-server. None of them may outlive its
parent, even when the parent is killed with SIGKILL and can clean up nothing:
Linux's parent-death signal (prctl PR_SET_PDEATHSIG) makes the kernel send the
child SIGTERM then. Elsewhere this is a no-op.
"""
import ctypes
import functools
import signal
import sys

PR_SET_PDEATHSIG = 1


@functools.cache
def _prctl():
    """libc's prctl, or None off Linux."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def _terminate_with_parent(prctl):
    if prctl is not None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def die_with_parent():
    """A `preexec_fn` for `subprocess.Popen`: the child gets SIGTERM when its parent dies.

    prctl is looked up here, in the parent: loading a library between fork and
    exec can deadlock. Linux ties the signal to the thread that started the
    child, so start such children from the main thread.
    """
    return functools.partial(_terminate_with_parent, _prctl())
