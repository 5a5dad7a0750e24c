"""Whether a sandbox may reach a destination, and at which addresses: the proxy's one decision.

In order: the task type's allow-list, then the addresses (a pinned name's own address, an IP
literal, or every address DNS gave), each checked against the refused ranges. The addresses
returned are the only ones the proxy connects to; nothing resolves the name again.

What the operator opens — a pinned name, a private range — is opened only to task types whose
`network_allow` names the destination: "any public address" (an empty allow-list) never
reaches a private one, whatever the operator opened for someone else.
"""

from __future__ import annotations

from collections.abc import Mapping

from saassy.egress.addresses import AddressGuard
from saassy.egress.destination import Destination, IPAddress
from saassy.egress.policy import EgressPolicy
from saassy.egress.refusal import Outcome, Refused
from saassy.egress.resolver import ResolveFailed, Resolver


class EgressGate:
    def __init__(
        self, resolver: Resolver, guard: AddressGuard, pinned: Mapping[str, IPAddress]
    ) -> None:
        self.resolver = resolver
        self.guard = guard
        self.pinned = dict(pinned)

    async def admit(self, policy: EgressPolicy, destination: Destination) -> list[IPAddress]:
        """The addresses to connect to; Refused (403, or 502 when the name does not resolve)."""
        if not policy.permits(destination):
            raise Refused(403, f"{destination} is not in this task type's network_allow")
        listed = not policy.any_public
        pinned = self.pinned.get(destination.host)
        if pinned is not None:
            if not listed:  # the operator's name, public or not, is for the types listing it
                self._check(destination, pinned, literal=False, opened=False)
            return [pinned]
        if destination.address is not None:
            self._check(destination, destination.address, literal=True, opened=listed)
            return [destination.address]
        try:
            addresses = await self.resolver.resolve(destination.host)
        except ResolveFailed as exc:
            message = f"cannot resolve {destination.host}: {exc.reason}"
            raise Refused(502, message, Outcome.failed) from None
        # One refused address refuses the name: a mixed answer is how rebinding attempts look.
        for address in addresses:
            self._check(destination, address, literal=False, opened=listed)
        return addresses

    def _check(
        self, destination: Destination, address: IPAddress, *, literal: bool, opened: bool
    ) -> None:
        reason = self.guard.refusal(address, opened=opened)
        if reason is None:
            return
        # The address itself is not shown: the task could map the operator's internal names.
        where = reason if literal else f"its name resolves to {reason}"
        raise Refused(403, f"{destination} refused: {where}")
