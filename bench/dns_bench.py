"""DNS benchmark (issue 9): the sender-domain check against one resolver round trip.

    .venv/bin/python bench/dns_bench.py [--runs 20] [--rtt-ms 20]

Starts a nameserver on 127.0.0.1 (tests/support/dns_server.py) holding a domain with
everything the check looks at (MX and its host, SPF with a nested include, DMARC, two
DKIM selectors, MTA-STS, TLS-RPT, the SMTP host); the server waits ``--rtt-ms`` before
every answer, as a resolver across a network would. Measures in the same run:

- one round trip: a single TXT query with dnspython, the median of ``--runs``;
- the whole check (``transports.dns_check.check_domain``), the median of ``--runs``,
  and the lookups and rounds it needed.

Prints the check against one round trip x its lookups (goal <= 1.2: the lookups run
side by side, so it is well below 1), and against one round trip x its rounds (what
side by side cannot hide).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "support"))

import dns.resolver  # noqa: E402
from common import ms, verdict_line  # noqa: E402
from dns_server import DnsTestServer, txt  # noqa: E402

from transports.dns_check import check_domain  # noqa: E402

D = "bench.test"
ZONE = {
    (D, "MX"): ["10 mx.bench.test."],
    ("mx.bench.test", "A"): ["127.0.0.2"],
    (D, "TXT"): [txt("v=spf1 a mx include:_spf.provider.test -all")],
    (D, "A"): ["127.0.0.3"],
    ("_spf.provider.test", "TXT"): [txt("v=spf1 include:_out.provider.test -all")],
    ("_out.provider.test", "TXT"): [txt("v=spf1 ip4:127.0.5.0/24 -all")],
    ("smtp.provider.test", "A"): ["127.0.5.5"],
    (f"_dmarc.{D}", "TXT"): [txt("v=DMARC1; p=quarantine")],
    (f"s1._domainkey.{D}", "TXT"): [txt("v=DKIM1; p=")],
    (f"s2._domainkey.{D}", "TXT"): [txt("v=DKIM1; p=")],
    (f"_mta-sts.{D}", "TXT"): [txt("v=STSv1; id=1")],
    (f"_smtp._tls.{D}", "TXT"): [txt("v=TLSRPTv1; rua=mailto:t@bench.test")],
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--rtt-ms", type=float, default=20.0)
    args = parser.parse_args()
    with DnsTestServer(ZONE, delay=args.rtt_ms / 1000) as server:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = ["127.0.0.1"]
        resolver.port = server.port
        single = []
        for _ in range(args.runs):
            started = time.perf_counter()
            resolver.resolve(f"{D}.", "TXT", lifetime=5)
            single.append(time.perf_counter() - started)
        checks = []
        for _ in range(args.runs):
            started = time.perf_counter()
            report = check_domain(
                D,
                nameserver=server.nameserver,
                smtp_host="smtp.provider.test",
                dkim_selectors=["s1", "s2"],
            )
            checks.append(time.perf_counter() - started)
    trip, check = statistics.median(single), statistics.median(checks)
    print(f"one round trip (median of {args.runs}):   {ms(trip)} ms")
    print(
        f"whole check (median of {args.runs}):      {ms(check)} ms  "
        f"({report.lookups} lookups in {report.rounds} rounds)"
    )
    print(f"check / (round trip x rounds):   {check / (trip * report.rounds):.2f}")
    line, _ = verdict_line("check / (round trip x lookups)", check / (trip * report.lookups), 1.2)
    print(line)


if __name__ == "__main__":
    main()
