"""The local services in the background: ``modelstream up``, ``status`` and ``down``.

``modelstream run <part>`` runs one part in the foreground; a newcomer (or a laptop demo)
wants all of them at once and their shell back. :class:`LocalServices` starts the sink,
the scorer, the monitor and the gateway as detached ``modelstream run`` processes of this
data dir, waits until each says it is ready, and records them in ``<data dir>/run/``
(pid, command, log file) so that a later ``status`` or ``down`` finds them again, from any
shell. Logs go to ``<data dir>/logs/<part>.log``. The local broker is started first when
``MODELSTREAM_KAFKA`` is unset.

Errors::

    StackError              a part could not be started or stopped (the message names its log)
"""

from services.stack._parts import PARTS, Part
from services.stack._process import PartProcess, PartStatus
from services.stack._stack import LocalServices, StackError

__all__ = ["PARTS", "LocalServices", "Part", "PartProcess", "PartStatus", "StackError"]
