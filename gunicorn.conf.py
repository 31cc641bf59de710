"""gunicorn settings of the `web` process (gunicorn reads ./gunicorn.conf.py by default).

Options given on the command line win over these, so `--workers`, `--bind` or
`--worker-class` still choose per deployment.

Threads and the GIL: a gthread worker answers several requests at once in one interpreter. A
thread that comes back from the network (a new call step arrived, a response was sent) must take
the GIL back from a thread that is busy rendering another caller's step, and CPython only asks
the busy one to hand it over every `sys.getswitchinterval()` seconds: 5 ms by default. Under
load those waits add up to tens or hundreds of milliseconds of silence on the line. Asking every
0.5 ms keeps a step's wait close to its own work for a few percent of switching overhead
(benchmarks/webhook.py measures both; IVR_GIL_SWITCH_SECONDS changes it).
"""

from __future__ import annotations

import os
import sys
from typing import Any

worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "4"))
workers = int(os.environ.get("WEB_CONCURRENCY") or max(2, os.cpu_count() or 1))
bind = f"0.0.0.0:{os.environ.get('PORT', '5000')}"
graceful_timeout = 30

SWITCH_INTERVAL = float(os.environ.get("IVR_GIL_SWITCH_SECONDS", "0.0005"))


def post_fork(server: Any, worker: Any) -> None:
    """In each worker process: hand the GIL over often (see above)."""
    sys.setswitchinterval(SWITCH_INTERVAL)
