"""A nameserver on loopback with the zone in the test (dnslib), UDP and TCP on one port.

``DnsTestServer({("example.test", "MX"): ["10 mx.example.test."], ...})`` answers
those records, CNAMEs followed, NXDOMAIN for a name it has no record of, NOERROR
without records (NODATA) for a known name and another type; ``rcodes`` answers a name
with SERVFAIL or REFUSED instead, ``delay`` waits before every answer (a round trip
for the benchmark). ``queries`` counts what was asked. ``SilentDnsServer`` never
answers. Never the internet: only 127.0.0.1.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Mapping, Sequence

from dnslib import QTYPE, RCODE, RR, DNSRecord
from dnslib.server import BaseResolver, DNSLogger, DNSServer

HOST = "127.0.0.1"


def txt(value: str) -> str:
    """A TXT value in zone syntax, split into the 255-byte strings DNS requires."""
    chunks = [value[i : i + 255] for i in range(0, len(value), 255)] or [""]
    return " ".join('"' + c.replace("\\", "\\\\").replace('"', '\\"') + '"' for c in chunks)


class _Zone(BaseResolver):
    def __init__(
        self, zone: Mapping[tuple[str, str], Sequence[str]], rcodes: Mapping[str, str], delay: float
    ) -> None:
        self.records: dict[tuple[str, str], list[str]] = {}
        for (name, rtype), values in zone.items():
            self.records[(name.lower().rstrip("."), rtype.upper())] = list(values)
        self.names = {name for name, _ in self.records}
        self.rcodes = {k.lower().rstrip("."): v for k, v in rcodes.items()}
        self.delay = delay
        self.queries: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def resolve(self, request: DNSRecord, handler: object) -> DNSRecord:
        if self.delay:
            time.sleep(self.delay)
        qname = str(request.q.qname).lower().rstrip(".")
        qtype = QTYPE[request.q.qtype]
        with self._lock:
            self.queries.append((qname, qtype))
        reply = request.reply()
        if qname in self.rcodes:
            reply.header.rcode = getattr(RCODE, self.rcodes[qname])
            return reply
        name = qname
        for _ in range(8):  # follow CNAMEs inside the zone
            cname = self.records.get((name, "CNAME"))
            if not cname or qtype == "CNAME":
                break
            reply.add_answer(*RR.fromZone(f"{name}. 60 IN CNAME {cname[0]}"))
            name = cname[0].lower().rstrip(".")
        for value in self.records.get((name, qtype), []):
            reply.add_answer(*RR.fromZone(f"{name}. 60 IN {qtype} {value}"))
        if not reply.rr and name not in self.names:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


class DnsTestServer:
    def __init__(
        self,
        zone: Mapping[tuple[str, str], Sequence[str]],
        *,
        rcodes: Mapping[str, str] | None = None,
        delay: float = 0.0,
    ) -> None:
        self.zone = _Zone(zone, rcodes or {}, delay)
        logger = DNSLogger(log="-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False)
        for _ in range(20):  # the TCP port must be the UDP one: find a free pair
            udp = DNSServer(self.zone, address=HOST, port=0, logger=logger)
            port = udp.server.server_address[1]
            try:
                tcp = DNSServer(self.zone, address=HOST, port=port, tcp=True, logger=logger)
            except OSError:
                udp.server.server_close()
                continue
            break
        else:
            raise RuntimeError("no free UDP/TCP port pair on loopback")
        self.port = port
        self._servers = (udp, tcp)

    @property
    def nameserver(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def queries(self) -> list[tuple[str, str]]:
        return list(self.zone.queries)

    def __enter__(self) -> DnsTestServer:
        for server in self._servers:
            server.start_thread()
        return self

    def __exit__(self, *exc: object) -> None:
        for server in self._servers:
            server.stop()
            server.server.server_close()


class SilentDnsServer:
    """Takes queries on UDP (and connections on TCP) and never answers."""

    def __init__(self) -> None:
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind((HOST, 0))
        self.port = self.udp.getsockname()[1]
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.bind((HOST, self.port))
        self.tcp.listen(8)

    @property
    def nameserver(self) -> str:
        return f"{HOST}:{self.port}"

    def __enter__(self) -> SilentDnsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.udp.close()
        self.tcp.close()
