"""The egress proxy a sandbox reaches the network through: allow-list, resolver, metering.

    EgressProxy(resolver, allow_private=..., hosts=...)    one per process
      .attach(sandbox, policy, listener, on_notice) -> EgressSession
    EgressSession.stats() / await .close() -> EgressStats  bytes each way, connection counts
    EgressPolicy.from_allow_list(task_type.network_allow)  where a task type may go
    SystemResolver()                                        the host's DNS, with a timeout

A leaf package: it imports nothing of the domain.
"""

from saassy.egress.limits import EgressLimits
from saassy.egress.policy import EgressPolicy, normalise_allow_entry
from saassy.egress.proxy import EgressProxy
from saassy.egress.resolver import ResolveFailed, Resolver, SystemResolver
from saassy.egress.session import EgressSession, EgressStats

__all__ = [
    "EgressLimits",
    "EgressPolicy",
    "EgressProxy",
    "EgressSession",
    "EgressStats",
    "ResolveFailed",
    "Resolver",
    "SystemResolver",
    "normalise_allow_entry",
]
