"""Who the client is: its address (the trust rule for proxy headers) and the key the citizen
limits count it under.

The trust rule. ``X-Forwarded-For`` is written by whoever sends the request, so it names the
client only where a proxy of ours wrote it: the gateway believes it when the peer (the TCP
connection's other end) is a trusted proxy — in ``SQI_TRUSTED_PROXIES`` (networks), or any peer
with ``SQI_TRUST_FORWARDED_FOR`` (a deployment where the network admits only the ingress, as
k8s/base's NetworkPolicy does). Starting from the peer it walks the list from the right: each
entry was written by the proxy to its right, and the first entry that is not itself a trusted
proxy is the client. Under ``SQI_TRUST_FORWARDED_FOR`` alone that is always the rightmost entry
(one hop). Entries left of the client were written by the client and are never read. Default:
no proxy is trusted, the peer is the client.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

# The prefix an IPv6 client is counted by: a /64 is one subscriber's LAN (RFC 6177), whose 2^64
# addresses a client can rotate through freely.
IPV6_CLIENT_PREFIX = 64
# The prefix an IPv6 site is counted by: a /48 is what a provider assigns one customer's site
# (RFC 6177 allows /48–/64): 65,536 /64s whose holder would otherwise get 65,536 client limits.
IPV6_SITE_PREFIX = 48


def parse_address(text: str) -> IPAddress | None:
    """An address as a proxy may write it (``1.2.3.4``, ``::1``, ``[::1]:80``, ``1.2.3.4:80``),
    IPv4-mapped IPv6 as IPv4; None when it is none (``unknown``, an obfuscated name, garbage)."""
    text = text.strip()
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.split(":")[0]  # IPv4 with a port
    try:
        address = ip_address(text)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: IPAddress, networks: Sequence[IPNetwork]) -> bool:
    return any(address in network for network in networks)


def client_address(
    peer: str, forwarded_for: Iterable[str], *, trusted: Sequence[IPNetwork], trust_any_peer: bool = False
) -> str:
    """The client's address under the trust rule above.

    ``forwarded_for`` is every ``X-Forwarded-For`` field in the order received: a proxy that adds
    its own field line (rather than appending to the client's) must not leave the client's first.
    """
    peer_address = parse_address(peer)
    if peer_address is None or not (trust_any_peer or _trusted(peer_address, trusted)):
        return str(peer_address or peer)
    entries = [entry for field in forwarded_for for entry in field.split(",")]
    client = peer_address
    for entry in reversed(entries):
        address = parse_address(entry)
        if address is None:
            # Garbage where a proxy of ours should have written an address: stay with the last
            # address a trusted hop vouched for (all such clients share its limit: safe side).
            break
        client = address
        if not _trusted(address, trusted):
            break
    return str(client)


def limit_key(address: str) -> str:
    """What the citizen limits count: an IPv4 address, or an IPv6 address's /64."""
    parsed = parse_address(address)
    if isinstance(parsed, IPv6Address):
        return str(IPv6Network((parsed, IPV6_CLIENT_PREFIX), strict=False))
    return str(parsed) if parsed is not None else address


def site_key(address: str) -> str | None:
    """The IPv6 site (its /48) a client's writes also count against; None for IPv4, whose
    addresses are each dear (a whole IPv4 network shares one NAT address as it is)."""
    parsed = parse_address(address)
    if isinstance(parsed, IPv6Address):
        return str(IPv6Network((parsed, IPV6_SITE_PREFIX), strict=False))
    return None
