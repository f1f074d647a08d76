"""amnode: clock-based declarative state machines, aRPC and telemetry (asyncmachine-go port).

`import amnode as am` gives the machine API (`am.Machine`, `am.State`, `am.Result`, ...).
"""

import os as _os

from .machine import *  # noqa: F403
from .machine import __all__ as _machine_all

if any(_os.environ.get(_v) for _v in ("AMNODE_RECORD", "AMNODE_DBG_ADDR", "AMNODE_DBG_LISTEN",
                                       "AMNODE_DBG_RING")):
    # record every machine of this process (and of child processes, which inherit the
    # variables), or stream them to a debugger (docs/recording-format.md "Live streams")
    from . import telemetry as _telemetry

    _telemetry.install()

__version__ = "0.1.0"
__all__ = [*_machine_all, "__version__"]
