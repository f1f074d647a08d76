"""amnode: clock-based declarative state machines, aRPC and worker pools (asyncmachine-go port).

`import amnode as am` gives the machine API (`am.Machine`, `am.State`, `am.Result`, ...).
"""

from .machine import *  # noqa: F403
from .machine import __all__ as _machine_all

__version__ = "0.1.0"
__all__ = [*_machine_all, "__version__"]
