"""What the sender's domain publishes in DNS, judged for mail sent through an account.

One call, :func:`check_domain`, asks a nameserver (the system's, or one given) about
the domain of the sender and reports, as :class:`Finding`s (check one of ``CHECKS``):

- ``mx``: the domain receives mail (bounces and replies need it): MX records whose
  hosts resolve; a null MX or no MX at all is a warning, a domain that does not exist
  a failure;
- ``spf``: one ``v=spf1`` record, parsed; the DNS lookups it costs (RFC 7208 4.6.4:
  at most 10, else receivers give up with "permerror"); ``+all``/``?all`` warned;
  and whether it authorises the account's SMTP server: evaluated (ip4/ip6, a, mx,
  include, redirect) for the server's addresses, or an include under the provider's
  own domain (the provider's outgoing addresses are not the submission host's);
- ``dmarc``: the ``_dmarc`` record (at the domain, else its parent), the policy, and
  whether the sender's domain aligns with the account's (the login's) domain;
- ``dkim``: for each selector the admin names: a record, a key that parses, RSA keys
  of at least 1024 bits;
- ``mta-sts``: MTA-STS and TLS-RPT records, reported when published (both optional;
  the policy file itself is not fetched: that is HTTPS to another host);
- ``sender``: the envelope sender against the login (servers refuse a sender the
  login does not own with 553).

A lookup that gets no answer (silence, SERVFAIL, REFUSED) is a failed finding with the
reason, never an exception; only a bad domain, selector or nameserver raises
:class:`TargetError`, before any query.

Lookups run side by side in rounds: the first asks every name known from the start
(MX, SPF, DMARC, each DKIM selector, MTA-STS, TLS-RPT, the SMTP host); each later one
what the answers named (MX hosts, SPF includes, a parent's DMARC). So the check costs
a few round trips, not one per lookup: ``lookups`` and ``rounds`` in the report say
how many of each (bench/dns_bench.py measures it against one round trip × lookups).
One deadline (``timeout``) covers them all, so a nameserver that never answers ends
the check within it.

dnspython does the DNS (well kept, the resolver most Python mail tools use). Not
checkdmarc: its findings are English strings (the panel words findings in the
reader's language), it fetches the MTA-STS policy over HTTPS and brings a public
suffix list download. The organisational domain (DMARC alignment, the provider's
domain) is taken as the last two labels, which is wrong for names under a two-label
public suffix such as ``co.uk``: said in the findings' wording ("looks like").
Keys are read with ``cryptography`` when it is there (``transports`` also runs on a
bare Python: the key length is then a warning that says why).
"""

from __future__ import annotations

import base64
import ipaddress
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from .base import TargetError, invisible_char, normalise_host
from .findings import Finding, Level, worst
from .texts import Text, gettext_noop

CHECKS = ("mx", "spf", "dmarc", "dkim", "mta-sts", "sender")
MAX_TIMEOUT = 120.0
MAX_SELECTORS = 10
SPF_LOOKUP_LIMIT = 10
MIN_RSA_BITS = 1024
# A hostile or broken zone (an include loop, hundreds of includes) must not make the
# check query without end: records past this many are not fetched.
_SPF_RECORDS_MAX = 30
_MX_HOSTS_MAX = 5
_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
_SPF_TERM = re.compile(
    r"^(?P<qualifier>[-+~?]?)(?P<name>all|include|a|mx|ptr|ip4|ip6|exists)"
    r"(?::(?P<arg>[^/]+))?(?P<cidr>/\d{1,3}(?://\d{1,3})?|//\d{1,3})?$",
    re.IGNORECASE,
)
_SPF_COUNTED = frozenset({"include", "a", "mx", "ptr", "exists"})
_RESULT_OF = {"+": "pass", "": "pass", "-": "fail", "~": "softfail", "?": "neutral"}


# --- the report -----------------------------------------------------------------------


@dataclass(frozen=True)
class DnsReport:
    domain: str
    nameserver: str | None  # "ip:port" asked, None: the system's resolver
    findings: tuple[Finding, ...]
    lookups: int  # DNS queries sent
    rounds: int  # of which side by side: the round trips the check waited for
    duration_s: float

    @property
    def level(self) -> Level:
        return worst(self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "nameserver": self.nameserver,
            "level": self.level.value,
            "findings": [f.to_dict() for f in self.findings],
            "lookups": self.lookups,
            "rounds": self.rounds,
            "duration_s": round(self.duration_s, 3),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DnsReport:
        return cls(
            domain=str(data["domain"]),
            nameserver=data.get("nameserver"),
            findings=tuple(Finding.from_dict(f) for f in data.get("findings", ())),
            lookups=int(data.get("lookups", 0)),
            rounds=int(data.get("rounds", 0)),
            duration_s=float(data.get("duration_s", 0.0)),
        )


# --- input ----------------------------------------------------------------------------


def check_domain_name(value: str) -> str:
    """The domain in ASCII, lower case, without the final dot; or TargetError."""
    name = normalise_domain(value)
    if name is None:
        raise TargetError(
            Text(gettext_noop("not a valid domain name: %(domain)s"), {"domain": repr(value)})
        )
    return name


def normalise_domain(value: str) -> str | None:
    """Like a host name, but labels may start with "_" (``_spf.provider.test``)."""
    text = str(value).strip().rstrip(".")
    if not text or invisible_char(text) is not None:
        return None
    try:
        name = text.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None
    labels = name.split(".")
    if len(name) > 253 or len(labels) < 2 or labels[-1].isdigit():
        return None  # no dot, or an address
    return name if all(_LABEL.match(x) for x in labels) else None


def check_selector(value: str) -> str:
    """A DKIM selector: one or more DNS labels (``s=`` of a DKIM-Signature)."""
    selector = str(value).strip().lower()
    if not selector or len(selector) > 120 or not all(_LABEL.match(x) for x in selector.split(".")):
        raise TargetError(
            Text(
                gettext_noop("not a valid DKIM selector: %(selector)s"),
                {"selector": repr(value)},
            )
        )
    return selector


def check_selectors(values: Iterable[str]) -> list[str]:
    selectors = list(dict.fromkeys(check_selector(s) for s in values))
    if len(selectors) > MAX_SELECTORS:
        raise TargetError(
            Text(gettext_noop("at most %(count)s DKIM selectors"), {"count": MAX_SELECTORS})
        )
    return selectors


def parse_nameserver(value: str) -> tuple[str, int]:
    """``IP``, ``IP:PORT``, ``[IPv6]:PORT`` or a bare IPv6 address -> (ip, port)."""
    ip, port = _split_nameserver(value)
    return ip, 53 if port is None else port


def _split_nameserver(value: str) -> tuple[str, int | None]:
    text = str(value).strip()
    host, port = text, None
    if text.startswith("["):
        host, closed, rest = text[1:].partition("]")
        if not closed:
            raise _bad_nameserver(value)
        if rest:
            if not rest.startswith(":"):
                raise _bad_nameserver(value)
            port = rest[1:]
    elif text.count(":") == 1:
        host, port = text.split(":")
    try:
        ip = str(ipaddress.ip_address(host))
    except ValueError:
        raise _bad_nameserver(value) from None
    if port is None:
        return ip, None
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise _bad_nameserver(value)
    return ip, int(port)


def _bad_nameserver(value: str) -> TargetError:
    return TargetError(
        Text(
            gettext_noop("not a nameserver address (IP or IP:PORT): %(value)s"),
            {"value": repr(value)},
        )
    )


# --- lookups --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Answer:
    records: tuple[Any, ...] = ()  # str (TXT joined, addresses) or (preference, host)
    problem: str | None = None  # nxdomain, nodata, timeout, servfail, refused, error
    words: str = ""  # dnspython's words for an error

    @property
    def failed(self) -> bool:
        """No answer at all (as opposed to an answer that there is nothing)."""
        return self.problem not in (None, "nxdomain", "nodata")


Query = tuple[str, str]  # (name, type)


class _Lookups:
    """Queries side by side, each answer kept: a later round asks only what is new."""

    def __init__(self, nameserver: tuple[str, int] | None, timeout: float) -> None:
        import dns.resolver

        self._resolver = dns.resolver.Resolver(configure=nameserver is None)
        if nameserver is not None:
            self._resolver.nameservers = [nameserver[0]]
            self._resolver.port = nameserver[1]
        # Without EDNS a DKIM key of 2048 bits does not fit a UDP answer: TCP each time.
        self._resolver.use_edns(0, 0, 1232)
        self._deadline = time.monotonic() + timeout
        self.timeout = timeout
        self.answers: dict[Query, _Answer] = {}
        self.rounds = 0

    @property
    def count(self) -> int:
        return len(self.answers)

    def get(self, name: str, rdtype: str) -> _Answer:
        return self.answers.get((name, rdtype), _Answer(problem="error", words="not asked"))

    def ask(self, queries: Iterable[Query]) -> None:
        new = list(dict.fromkeys(q for q in queries if q not in self.answers))
        if not new:
            return
        self.rounds += 1
        with ThreadPoolExecutor(max_workers=min(16, len(new))) as pool:
            for query, answer in zip(new, pool.map(self._one, new), strict=True):
                self.answers[query] = answer

    def _one(self, query: Query) -> _Answer:
        import dns.exception
        import dns.resolver

        name, rdtype = query
        left = self._deadline - time.monotonic()
        if left <= 0:
            return _Answer(problem="timeout")
        try:
            answer = self._resolver.resolve(
                name + ".", rdtype, lifetime=left, raise_on_no_answer=False, search=False
            )
        except dns.resolver.NXDOMAIN:
            return _Answer(problem="nxdomain")
        except dns.exception.Timeout:
            return _Answer(problem="timeout")
        except dns.resolver.NoNameservers as exc:
            words = str(exc)
            problem = "refused" if "REFUSED" in words else "servfail"
            return _Answer(problem=problem, words=_short(words))
        except dns.exception.DNSException as exc:
            return _Answer(problem="error", words=_short(str(exc)))
        if answer.rrset is None:
            return _Answer(problem="nodata")
        return _Answer(records=tuple(_record(r, rdtype) for r in answer.rrset))


def _record(rdata: Any, rdtype: str) -> Any:
    if rdtype == "TXT":
        return b"".join(rdata.strings).decode("utf-8", "replace")
    if rdtype == "MX":
        return (int(rdata.preference), rdata.exchange.to_text(omit_final_dot=True).lower())
    return rdata.to_text()


def _short(words: str, limit: int = 200) -> str:
    return words if len(words) <= limit else words[: limit - 1] + "…"


def _no_answer(check: str, name: str, rdtype: str, answer: _Answer, look: _Lookups) -> Finding:
    reasons = {
        "timeout": Text(
            gettext_noop("no answer from the nameserver within %(seconds)s s"),
            {"seconds": f"{look.timeout:g}"},
        ),
        "servfail": Text(gettext_noop("the nameserver answered SERVFAIL (server failure)")),
        "refused": Text(gettext_noop("the nameserver refused the query (REFUSED)")),
    }
    reason = reasons.get(answer.problem or "") or Text(
        gettext_noop("lookup error: %(words)s"), {"words": answer.words}
    )
    return Finding(
        check,
        Level.FAIL,
        Text(
            gettext_noop("no answer for %(name)s (%(type)s): %(reason)s"),
            {"name": name, "type": rdtype, "reason": reason},
        ),
        {"name": name, "type": rdtype, "problem": answer.problem},
    )


def _txt_starting(answer: _Answer, tag: str) -> list[str]:
    """The TXT records whose first word is ``tag`` (a version tag, any case)."""
    return [
        r for r in answer.records if re.split(r"[;\s]", r.strip(), maxsplit=1)[0].lower() == tag
    ]


def _tags(record: str) -> dict[str, str]:
    """``k=v; k=v`` (DKIM, DMARC, MTA-STS) as a dict, keys lower case."""
    tags: dict[str, str] = {}
    for part in record.split(";"):
        key, sep, value = part.partition("=")
        if sep:
            tags.setdefault(key.strip().lower(), value.strip())
    return tags


def org_domain(name: str) -> str:
    """The organisational domain, approximated as the last two labels (see above)."""
    return ".".join(name.split(".")[-2:])


# --- the check ------------------------------------------------------------------------


def check_domain(
    domain: str,
    *,
    nameserver: str | tuple[str, int] | None = None,
    port: int = 53,
    smtp_host: str | None = None,
    dkim_selectors: Sequence[str] = (),
    envelope_sender: str | None = None,
    auth_user: str | None = None,
    timeout: float = 5.0,
) -> DnsReport:
    """Judge what ``domain`` publishes for mail sent through ``smtp_host``.

    ``nameserver``: an IP (with ``port``), "IP:PORT", or (ip, port); None asks the
    system's resolver. Raises TargetError for a bad domain, selector, host, nameserver
    or time limit, before any query.
    """
    started = time.monotonic()
    name = check_domain_name(domain)
    selectors = check_selectors(dkim_selectors)
    server = _nameserver(nameserver, port)
    host = normalise_host(smtp_host) if smtp_host else None
    if not isinstance(timeout, int | float) or not 0 < timeout <= MAX_TIMEOUT:
        raise TargetError(
            Text(
                gettext_noop("time limit out of range (0-%(max)s s): %(value)s"),
                {"max": f"{MAX_TIMEOUT:g}", "value": repr(timeout)},
            )
        )
    look = _Lookups(server, float(timeout))
    host_ips = _literal_ips(host)
    first: list[Query] = [
        (name, "MX"),
        (name, "TXT"),
        (f"_dmarc.{name}", "TXT"),
        (f"_mta-sts.{name}", "TXT"),
        (f"_smtp._tls.{name}", "TXT"),
        *((f"{s}._domainkey.{name}", "TXT") for s in selectors),
    ]
    if host and host_ips is None:
        first += [(host, "A"), (host, "AAAA")]
    look.ask(first)
    spf = _SpfWalk(name, look)
    look.ask([*_mx_followups(name, look), *_dmarc_followups(name, look), *spf.pending()])
    while pending := spf.pending():
        look.ask(pending)
    if host_ips is None and host:
        host_ips = [ip for t in ("A", "AAAA") for ip in look.get(host, t).records]
    findings = [
        *_mx_findings(name, look),
        *spf.findings(host, host_ips or []),
        *_dmarc_findings(name, look, auth_user),
        *_dkim_findings(name, selectors, look),
        *_sts_findings(name, look),
        *_sender_findings(name, envelope_sender, auth_user),
    ]
    return DnsReport(
        domain=name,
        nameserver=None if server is None else f"{server[0]}:{server[1]}",
        findings=tuple(findings),
        lookups=look.count,
        rounds=look.rounds,
        duration_s=time.monotonic() - started,
    )


def _nameserver(value: str | tuple[str, int] | None, port: int) -> tuple[str, int] | None:
    if value is None or value == "":
        return None
    if isinstance(value, tuple):
        return parse_nameserver(f"[{value[0]}]:{value[1]}")
    ip, given = _split_nameserver(value)
    if given is None:
        if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
            raise _bad_nameserver(f"{value}:{port}")
        given = port
    return ip, given


def _literal_ips(host: str | None) -> list[str] | None:
    if host is None:
        return None
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        return None


def _say(
    check: str, level: Level, msgid: str, params: Mapping[str, Any] | None = None, **details: Any
) -> Finding:
    return Finding(check, level, Text(msgid, params or {}), details)


# --- MX -------------------------------------------------------------------------------


def _mx_hosts(name: str, look: _Lookups) -> list[str]:
    records = sorted(look.get(name, "MX").records)
    return [h for _, h in records if h not in ("", ".")][:_MX_HOSTS_MAX]


def _mx_followups(name: str, look: _Lookups) -> list[Query]:
    mx = look.get(name, "MX")
    if mx.problem == "nodata":
        return [(name, "A"), (name, "AAAA")]  # the implicit MX (RFC 5321 5.1)
    return [(h, t) for h in _mx_hosts(name, look) for t in ("A", "AAAA")]


def _mx_findings(name: str, look: _Lookups) -> list[Finding]:
    mx = look.get(name, "MX")
    if mx.problem == "nxdomain":
        return [
            _say(
                "mx",
                Level.FAIL,
                gettext_noop(
                    "the domain %(domain)s does not exist in DNS (NXDOMAIN): receivers "
                    "refuse mail from it; check the sender address"
                ),
                {"domain": name},
            )
        ]
    if mx.failed:
        return [_no_answer("mx", name, "MX", mx, look)]
    if mx.problem == "nodata":
        if any(look.get(name, t).records for t in ("A", "AAAA")):
            return [
                _say(
                    "mx",
                    Level.WARN,
                    gettext_noop(
                        "%(domain)s has no MX record, only an address: mail to it "
                        "(bounces, replies) goes to that host; publish an MX record"
                    ),
                    {"domain": name},
                )
            ]
        return [
            _say(
                "mx",
                Level.WARN,
                gettext_noop(
                    "%(domain)s has no MX record: replies and bounces to the sender "
                    "cannot be delivered, and some receivers refuse such senders"
                ),
                {"domain": name},
            )
        ]
    hosts = [f"{p} {h or '.'}" for p, h in sorted(mx.records)]
    if not _mx_hosts(name, look):
        return [
            _say(
                "mx",
                Level.WARN,
                gettext_noop(
                    "%(domain)s publishes a null MX (it receives no mail): replies "
                    "and bounces to the sender are lost"
                ),
                {"domain": name},
                records=hosts,
            )
        ]
    unresolved = [
        h for h in _mx_hosts(name, look) if not any(look.get(h, t).records for t in ("A", "AAAA"))
    ]
    if len(unresolved) == len(_mx_hosts(name, look)):
        return [
            _say(
                "mx",
                Level.FAIL,
                gettext_noop("no MX host of %(domain)s has an address: %(hosts)s"),
                {"domain": name, "hosts": ", ".join(unresolved)},
                records=hosts,
            )
        ]
    if unresolved:
        return [
            _say(
                "mx",
                Level.WARN,
                gettext_noop(
                    "MX records of %(domain)s: %(records)s; without an address: %(hosts)s"
                ),
                {"domain": name, "records": ", ".join(hosts), "hosts": ", ".join(unresolved)},
                records=hosts,
            )
        ]
    return [
        _say(
            "mx",
            Level.PASS,
            gettext_noop("MX records of %(domain)s: %(records)s"),
            {"domain": name, "records": ", ".join(hosts)},
            records=hosts,
        )
    ]


# --- SPF ------------------------------------------------------------------------------


@dataclass
class _SpfRecord:
    domain: str
    text: str
    terms: list[tuple[str, str, str, str]]  # (qualifier, mechanism, target, cidr)
    redirect: str | None
    bad_terms: list[str]


@dataclass
class _SpfWalk:
    """The SPF record and everything it names, fetched round by round."""

    domain: str
    look: _Lookups
    records: dict[str, _SpfRecord | None] = field(default_factory=dict)  # None: none/bad
    problems: dict[str, Finding] = field(default_factory=dict)
    _asked: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._asked.add(self.domain)

    def pending(self) -> list[Query]:
        """Queries for what the records fetched so far name and nobody asked yet."""
        self._read_new()
        queries: list[Query] = []
        for record in [r for r in self.records.values() if r is not None]:
            for _, mechanism, target, _ in record.terms:
                if mechanism == "include":
                    queries += self._follow(target)
                elif mechanism == "a":
                    queries += [(target, "A"), (target, "AAAA")]
                elif mechanism == "mx":
                    queries.append((target, "MX"))
                    queries += [(h, t) for h in _mx_hosts(target, self.look) for t in ("A", "AAAA")]
            if record.redirect:
                queries += self._follow(record.redirect)
        return [q for q in queries if q not in self.look.answers]

    def _follow(self, domain: str) -> list[Query]:
        if domain in self._asked or len(self._asked) >= _SPF_RECORDS_MAX:
            return []
        self._asked.add(domain)
        return [(domain, "TXT")]

    def _read_new(self) -> None:
        for domain in self._asked:
            if domain in self.records or (domain, "TXT") not in self.look.answers:
                continue
            answer = self.look.get(domain, "TXT")
            found = _txt_starting(answer, "v=spf1")
            if answer.failed:
                self.problems[domain] = _no_answer("spf", domain, "TXT", answer, self.look)
                self.records[domain] = None
            elif len(found) > 1:
                self.problems[domain] = _say(
                    "spf",
                    Level.FAIL,
                    gettext_noop(
                        "%(domain)s has %(count)s SPF records; only one is allowed, "
                        "receivers treat this as an error (permerror): merge them"
                    ),
                    {"domain": domain, "count": len(found)},
                    records=found,
                )
                self.records[domain] = None
            else:
                self.records[domain] = _parse_spf(domain, found[0]) if found else None

    # -- judgement

    def findings(self, host: str | None, host_ips: Sequence[str]) -> list[Finding]:
        self._read_new()
        name = self.domain
        if name in self.problems:
            return [self.problems[name]]
        root = self.records.get(name)
        if root is None:
            return [
                _say(
                    "spf",
                    Level.WARN,
                    gettext_noop(
                        "%(domain)s has no SPF record: receivers cannot tell which "
                        "servers may send for it and may mark the mail as spam; publish "
                        "one (e.g. the provider's include)"
                    ),
                    {"domain": name},
                )
            ]
        out = [
            _say(
                "spf",
                Level.PASS,
                gettext_noop("SPF record of %(domain)s: %(record)s"),
                {"domain": name, "record": root.text},
                record=root.text,
            )
        ]
        out += [p for d, p in self.problems.items() if d != name]
        if root.bad_terms:
            out.append(
                _say(
                    "spf",
                    Level.FAIL,
                    gettext_noop(
                        "the SPF record has terms receivers do not understand "
                        "(permerror): %(terms)s"
                    ),
                    {"terms": " ".join(root.bad_terms)},
                )
            )
        out.append(self._lookup_finding())
        out.append(self._all_finding(root))
        if host:
            out.append(self._authorises(host, host_ips))
        return out

    def _lookup_finding(self) -> Finding:
        count = self._lookups_of(self.domain, set())
        params = {"count": count, "limit": SPF_LOOKUP_LIMIT}
        if count > SPF_LOOKUP_LIMIT:
            return _say(
                "spf",
                Level.FAIL,
                gettext_noop(
                    "the SPF record needs %(count)s DNS lookups, more than the "
                    "%(limit)s allowed: receivers stop with permerror; flatten "
                    "includes"
                ),
                params,
                lookups=count,
            )
        return _say(
            "spf",
            Level.PASS,
            gettext_noop("the SPF record needs %(count)s of at most %(limit)s DNS lookups"),
            params,
            lookups=count,
        )

    def _lookups_of(self, domain: str, seen: set[str]) -> int:
        record = self.records.get(domain)
        if record is None or domain in seen:
            return 0
        seen = seen | {domain}
        count = 0
        for _, mechanism, target, _ in record.terms:
            if mechanism in _SPF_COUNTED:
                count += 1
                if mechanism == "include":
                    count += self._lookups_of(target, seen)
        if record.redirect:
            count += 1 + self._lookups_of(record.redirect, seen)
        return count

    def _all_finding(self, root: _SpfRecord) -> Finding:
        last = next((t for t in root.terms if t[1] == "all"), None)
        if last is None and root.redirect is None:
            return _say(
                "spf",
                Level.WARN,
                gettext_noop(
                    "the SPF record ends without »all«: mail from other servers "
                    "is »neutral«; end it with ~all or -all"
                ),
            )
        if last is not None and last[0] in ("+", ""):
            return _say(
                "spf",
                Level.WARN,
                gettext_noop(
                    "the SPF record ends with »+all«: every server in the world "
                    "may send for the domain; end it with ~all or -all"
                ),
            )
        if last is not None and last[0] == "?":
            return _say(
                "spf",
                Level.WARN,
                gettext_noop(
                    "the SPF record ends with »?all« (neutral): it protects "
                    "nothing; end it with ~all or -all"
                ),
            )
        return _say(
            "spf",
            Level.PASS,
            gettext_noop("the SPF record ends with »%(all)s«: other servers are not authorised"),
            {"all": f"{last[0]}all" if last else f"redirect={root.redirect}"},
        )

    def _authorises(self, host: str, host_ips: Sequence[str]) -> Finding:
        provider = org_domain(host) if _literal_ips(host) is None else None
        for ip in host_ips:
            if self._evaluate(self.domain, ipaddress.ip_address(ip), set()) == "pass":
                return _say(
                    "spf",
                    Level.PASS,
                    gettext_noop("the SPF record authorises the SMTP server %(host)s (%(ip)s)"),
                    {"host": host, "ip": ip},
                )
        included = [d for d in self._asked if d != self.domain]
        if provider and (
            hit := next(
                (d for d in sorted(included) if d == provider or d.endswith("." + provider)), None
            )
        ):
            return _say(
                "spf",
                Level.PASS,
                gettext_noop(
                    "the SPF record includes %(include)s, which looks like the provider of %(host)s"
                ),
                {"include": hit, "host": host},
            )
        addresses = ", ".join(host_ips) or "?"
        return _say(
            "spf",
            Level.WARN,
            gettext_noop(
                "the SPF record does not authorise the SMTP server %(host)s "
                "(%(ips)s) nor include its provider: receivers may refuse the mail "
                "or mark it as spam; add the provider's include"
            ),
            {"host": host, "ips": addresses},
        )

    def _evaluate(self, domain: str, ip: ipaddress._BaseAddress, seen: set[str]) -> str:
        record = self.records.get(domain)
        if record is None or domain in seen or len(seen) > SPF_LOOKUP_LIMIT:
            return "none"
        seen = seen | {domain}
        for qualifier, mechanism, target, cidr in record.terms:
            if self._matches(mechanism, target, cidr, ip, seen):
                return _RESULT_OF[qualifier]
        if record.redirect:
            return self._evaluate(record.redirect, ip, seen)
        return "neutral"

    def _matches(
        self, mechanism: str, target: str, cidr: str, ip: ipaddress._BaseAddress, seen: set[str]
    ) -> bool:
        if mechanism == "all":
            return True
        if mechanism in ("ip4", "ip6"):
            return _in_network(ip, target, "")
        if mechanism == "include":
            return self._evaluate(target, ip, seen) == "pass"
        if mechanism == "a":
            return self._in_addresses(ip, target, cidr)
        if mechanism == "mx":
            return any(self._in_addresses(ip, h, cidr) for h in _mx_hosts(target, self.look))
        return False  # ptr (deprecated) and exists (macros) are not evaluated

    def _in_addresses(self, ip: ipaddress._BaseAddress, name: str, cidr: str) -> bool:
        return any(
            _in_network(ip, a, cidr) for t in ("A", "AAAA") for a in self.look.get(name, t).records
        )


def _parse_spf(domain: str, text: str) -> _SpfRecord:
    record = _SpfRecord(domain, text, [], None, [])
    for word in text.split()[1:]:
        key, sep, value = word.partition("=")
        if sep and re.match(r"^[a-z][a-z0-9_.-]*$", key, re.IGNORECASE):
            if key.lower() == "redirect":
                record.redirect = normalise_domain(value)
                if record.redirect is None:
                    record.bad_terms.append(word)
            continue  # exp= and unknown modifiers are allowed and ignored
        term = _spf_term(domain, word)
        if term is None:
            record.bad_terms.append(word)
        elif term[2] is not None:
            record.terms.append((term[0], term[1], term[2], term[3]))
    return record


def _spf_term(domain: str, word: str) -> tuple[str, str, str | None, str] | None:
    """(qualifier, mechanism, target, cidr); None: not understood; target None: a macro
    (RFC 7208 7) that names a host per message, so there is nothing to fetch."""
    match = _SPF_TERM.match(word)
    if match is None:
        return None
    mechanism = match["name"].lower()
    target = (match["arg"] or "").lower().rstrip(".")
    cidr = match["cidr"] or ""
    if "%" in target:
        return match["qualifier"], mechanism, None, cidr
    if mechanism in ("ip4", "ip6"):
        return match["qualifier"], mechanism, f"{target}{cidr}", cidr
    if mechanism in ("a", "mx") and not target:
        target = domain
    if mechanism != "all" and mechanism not in ("ptr",) and normalise_domain(target) is None:
        return None
    return match["qualifier"], mechanism, target, cidr


def _in_network(ip: ipaddress._BaseAddress, address: str, cidr: str) -> bool:
    """``ip`` within ``address`` (maybe with its own /len) and the a/mx ``cidr``
    (``/v4`` or ``/v4//v6``)."""
    v4, _, v6 = cidr.lstrip("/").partition("//")
    try:
        base = ipaddress.ip_network(address, strict=False)
        if "/" not in address:
            length = v4 if base.version == 4 else v6
            if length:
                base = ipaddress.ip_network(f"{address}/{length}", strict=False)
    except ValueError:
        return False
    return ip.version == base.version and ip in base


# --- DMARC ----------------------------------------------------------------------------


def _dmarc_followups(name: str, look: _Lookups) -> list[Query]:
    here = look.get(f"_dmarc.{name}", "TXT")
    parent = org_domain(name)
    if parent != name and not here.failed and not _txt_starting(here, "v=dmarc1"):
        return [(f"_dmarc.{parent}", "TXT")]
    return []


def _dmarc_findings(name: str, look: _Lookups, auth_user: str | None) -> list[Finding]:
    where = f"_dmarc.{name}"
    answer = look.get(where, "TXT")
    if answer.failed:
        return [_no_answer("dmarc", where, "TXT", answer, look)]
    found = _txt_starting(answer, "v=dmarc1")
    policy_key = "p"
    if not found and org_domain(name) != name:
        where = f"_dmarc.{org_domain(name)}"
        parent = look.get(where, "TXT")
        if parent.failed:
            return [_no_answer("dmarc", where, "TXT", parent, look)]
        found = _txt_starting(parent, "v=dmarc1")
        policy_key = "sp"
    if not found:
        return [
            _say(
                "dmarc",
                Level.WARN,
                gettext_noop(
                    "%(domain)s has no DMARC record (_dmarc.%(domain)s): large "
                    "receivers expect one; start with »v=DMARC1; p=none; rua=…«"
                ),
                {"domain": name},
            )
        ]
    if len(found) > 1:
        return [
            _say(
                "dmarc",
                Level.FAIL,
                gettext_noop(
                    "%(name)s has %(count)s DMARC records; receivers ignore them all: keep one"
                ),
                {"name": where, "count": len(found)},
                records=found,
            )
        ]
    tags = _tags(found[0])
    policy = (tags.get(policy_key) or tags.get("p") or "").lower()
    out: list[Finding] = []
    if policy not in ("none", "quarantine", "reject"):
        out.append(
            _say(
                "dmarc",
                Level.FAIL,
                gettext_noop(
                    "the DMARC record at %(name)s has no valid policy (p=none, "
                    "quarantine or reject): %(record)s"
                ),
                {"name": where, "record": found[0]},
                record=found[0],
            )
        )
    elif policy == "none":
        out.append(
            _say(
                "dmarc",
                Level.WARN,
                gettext_noop(
                    "DMARC policy at %(name)s is »none«: receivers only report, "
                    "forged mail is not refused (%(record)s)"
                ),
                {"name": where, "record": found[0]},
                record=found[0],
                policy=policy,
            )
        )
    else:
        out.append(
            _say(
                "dmarc",
                Level.PASS,
                gettext_noop("DMARC policy at %(name)s is »%(policy)s« (%(record)s)"),
                {"name": where, "policy": policy, "record": found[0]},
                record=found[0],
                policy=policy,
            )
        )
    if auth_user and "@" in auth_user:
        out.append(_alignment(name, auth_user.rsplit("@", 1)[1].lower(), tags))
    return out


def _alignment(name: str, account: str, tags: Mapping[str, str]) -> Finding:
    strict = tags.get("adkim", "r").lower() == "s" and tags.get("aspf", "r").lower() == "s"
    aligned = name == account if strict else org_domain(name) == org_domain(account)
    params = {"domain": name, "account": account}
    if aligned:
        return _say(
            "dmarc",
            Level.PASS,
            gettext_noop(
                "the sender's domain %(domain)s fits the account's domain "
                "%(account)s (DMARC alignment)"
            ),
            params,
        )
    return _say(
        "dmarc",
        Level.WARN,
        gettext_noop(
            "the sender's domain %(domain)s is not the account's domain "
            "%(account)s: DMARC passes only if the provider signs with DKIM for "
            "%(domain)s or the SPF record of %(domain)s authorises it"
        ),
        params,
        strict=strict,
    )


# --- DKIM -----------------------------------------------------------------------------


def _dkim_findings(name: str, selectors: Sequence[str], look: _Lookups) -> list[Finding]:
    if not selectors:
        return [
            _say(
                "dkim",
                Level.WARN,
                gettext_noop(
                    "DKIM not checked: enter the selector your provider signs with "
                    "(»s=« in a received mail's DKIM-Signature header)"
                ),
            )
        ]
    return [_dkim_one(name, s, look) for s in selectors]


def _dkim_one(name: str, selector: str, look: _Lookups) -> Finding:
    where = f"{selector}._domainkey.{name}"
    answer = look.get(where, "TXT")
    if answer.failed:
        return _no_answer("dkim", where, "TXT", answer, look)
    records = [r for r in answer.records if "p=" in r.replace(" ", "")]
    if not records:
        return _say(
            "dkim",
            Level.FAIL,
            gettext_noop(
                "no DKIM key for selector »%(selector)s« (%(name)s): mails "
                "signed with it fail DKIM; publish the provider's key there"
            ),
            {"selector": selector, "name": where},
            selector=selector,
        )
    tags = _tags(records[0])
    key = re.sub(r"\s+", "", tags.get("p", ""))
    params = {"selector": selector, "name": where}
    if not key:
        return _say(
            "dkim",
            Level.FAIL,
            gettext_noop("the DKIM key for selector »%(selector)s« is revoked (empty p=)"),
            params,
            selector=selector,
        )
    kind = tags.get("k", "rsa").lower()
    bits, problem = _key_bits(kind, key)
    if problem is not None:
        level = Level.WARN if problem.msgid == _NO_CRYPTOGRAPHY else Level.FAIL
        return Finding(
            "dkim",
            level,
            Text(
                gettext_noop("the DKIM key for selector »%(selector)s« cannot be read: %(reason)s"),
                {**params, "reason": problem},
            ),
            {"selector": selector},
        )
    if kind == "rsa" and bits is not None and bits < MIN_RSA_BITS:
        return _say(
            "dkim",
            Level.FAIL,
            gettext_noop(
                "the DKIM key for selector »%(selector)s« has only %(bits)s bits: "
                "receivers ignore keys below %(min)s bits; publish a 2048-bit key"
            ),
            {**params, "bits": bits, "min": MIN_RSA_BITS},
            selector=selector,
            bits=bits,
        )
    return _say(
        "dkim",
        Level.PASS,
        gettext_noop("DKIM key for selector »%(selector)s«: %(kind)s, %(bits)s bits"),
        {**params, "kind": kind.upper() if kind == "rsa" else kind, "bits": bits or "?"},
        selector=selector,
        bits=bits,
    )


_NO_CRYPTOGRAPHY = gettext_noop("the Python package cryptography is not installed")


def _key_bits(kind: str, key: str) -> tuple[int | None, Text | None]:
    try:
        raw = base64.b64decode(key, validate=True)
    except ValueError:
        return None, Text(gettext_noop("the key is not valid base64"))
    if kind == "ed25519":
        if len(raw) != 32:
            return None, Text(
                gettext_noop("an Ed25519 key has 32 bytes, this one %(n)s"), {"n": len(raw)}
            )
        return 256, None
    if kind != "rsa":
        return None, Text(gettext_noop("unknown key type k=%(kind)s"), {"kind": kind})
    try:
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.hazmat.primitives.serialization import load_der_public_key
    except ImportError:
        return None, Text(_NO_CRYPTOGRAPHY)
    try:
        public = load_der_public_key(raw)
    except ValueError:
        return None, Text(gettext_noop("the key is no RSA public key (DER)"))
    if not isinstance(public, rsa.RSAPublicKey):
        return None, Text(gettext_noop("the key is no RSA public key (DER)"))
    return public.key_size, None


# --- MTA-STS and TLS-RPT --------------------------------------------------------------


def _sts_findings(name: str, look: _Lookups) -> list[Finding]:
    out: list[Finding] = []
    for where, tag, label in (
        (f"_mta-sts.{name}", "v=stsv1", "MTA-STS"),
        (f"_smtp._tls.{name}", "v=tlsrptv1", "TLS-RPT"),
    ):
        answer = look.get(where, "TXT")
        if answer.failed:
            out.append(_no_answer("mta-sts", where, "TXT", answer, look))
            continue
        found = _txt_starting(answer, tag)
        params = {"what": label, "name": where}
        if not found:
            out.append(
                _say(
                    "mta-sts",
                    Level.PASS,
                    gettext_noop("%(what)s not published at %(name)s (optional)"),
                    params,
                    published=False,
                )
            )
            continue
        tags = _tags(found[0])
        needed = "id" if label == "MTA-STS" else "rua"
        if len(found) > 1 or not tags.get(needed):
            out.append(
                _say(
                    "mta-sts",
                    Level.WARN,
                    gettext_noop(
                        "%(what)s record at %(name)s is not valid (one record with "
                        "%(tag)s= needed): %(record)s"
                    ),
                    {**params, "tag": needed, "record": " | ".join(found)},
                    published=True,
                )
            )
            continue
        out.append(
            _say(
                "mta-sts",
                Level.PASS,
                gettext_noop("%(what)s published at %(name)s: %(record)s"),
                {**params, "record": found[0]},
                published=True,
                record=found[0],
            )
        )
    return out


# --- sender ---------------------------------------------------------------------------


def _sender_findings(name: str, sender: str | None, user: str | None) -> list[Finding]:
    if not sender:
        return []
    sender = sender.strip().lower()
    domain = sender.rsplit("@", 1)[-1]
    out: list[Finding] = []
    if domain != name:
        out.append(
            _say(
                "sender",
                Level.WARN,
                gettext_noop(
                    "the envelope sender %(sender)s is not in the checked domain %(domain)s"
                ),
                {"sender": sender, "domain": name},
            )
        )
    if not user:
        return out
    user = user.strip().lower()
    params = {"sender": sender, "user": user}
    if sender == user:
        out.append(
            _say(
                "sender",
                Level.PASS,
                gettext_noop("the envelope sender is the login %(user)s: servers accept it"),
                params,
            )
        )
    elif "@" not in user:
        out.append(
            _say(
                "sender",
                Level.PASS,
                gettext_noop(
                    "the login %(user)s is no address: the server decides whether it "
                    "may send as %(sender)s (a test mail tells)"
                ),
                params,
            )
        )
    else:
        out.append(
            _say(
                "sender",
                Level.WARN,
                gettext_noop(
                    "the envelope sender %(sender)s is not the login %(user)s: many "
                    "servers refuse a sender the login does not own (553); use the "
                    "login as sender or make the address an alias of it"
                ),
                params,
            )
        )
    return out
