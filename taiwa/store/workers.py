"""Workers on several machines sharing one database: leases on listener streams, claimed chunks of work,
singleton jobs. (Filled in with the PostgreSQL store.)"""

from __future__ import annotations


class WorkersMixin:
    pass
