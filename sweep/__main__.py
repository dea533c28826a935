import os
import signal
import sys

from services.errors import Terminated


def _terminate(signum, frame):
    raise Terminated("terminated (SIGTERM)")


signal.signal(signal.SIGTERM, _terminate)  # from the first moment: SIGTERM exits 143, never half-way
try:
    from .cli import entry
except KeyboardInterrupt:  # Ctrl-C while starting up: nothing has run yet
    sys.stderr.write("interrupted\n")
    os._exit(130)
except Terminated:
    sys.stderr.write("terminated (SIGTERM)\n")
    os._exit(143)

entry()
