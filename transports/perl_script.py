"""``perl`` running the shipped ``scripts/send_mail.pl`` (Net::SMTP + IO::Socket::SSL).

Its TLS is in Net::SSLeay, and the script needs a few modules a minimal perl lacks:
detection asks perl for both.
"""

from __future__ import annotations

import os

from . import tlsinfo
from .detection import Detection, apply_tls, failure
from .scripted import ScriptTransport
from .texts import Text, gettext_noop
from .tlsinfo import RunFn, TlsLink, resolve_tls_library
from .versions import VersionInfo, parse_assignments, parse_openssl_banner

_PERL_MODULES = {
    "Net::SSLeay": "libnet-ssleay-perl",
    "IO::Socket::SSL": "libio-socket-ssl-perl",
    "Net::SMTP": "libnet-perl",  # core module; SSL support from 3.0 (perl >= 5.22)
    "Authen::SASL": "libauthen-sasl-perl",
}

# XSLoader and DynaLoader both record the loaded .so in @DynaLoader::dl_shared_objects.
_PERL_SCRIPT = r"""
printf "perl=%vd\n", $^V;
for my $m (qw(Net::SSLeay IO::Socket::SSL Net::SMTP Authen::SASL)) {
    (my $file = "$m.pm") =~ s{::}{/}g;
    my $v = eval { require $file; $m->VERSION };
    print "$m=", (defined $v ? $v : ($INC{$file} ? "0" : "-")), "\n";
}
if ($INC{"Net/SSLeay.pm"}) {
    print "ssleay=", Net::SSLeay::SSLeay_version(0), "\n";
    print "ssleay_so=$_\n" for grep { m{/SSLeay\.so$} } @DynaLoader::dl_shared_objects;
}
"""


def missing_modules(found: dict[str, str]) -> list[str]:
    """Modules the send script lacks, each with the Debian package that brings it."""
    lacking = [f"{m} ({pkg})" for m, pkg in _PERL_MODULES.items() if found.get(m, "-") == "-"]
    smtp = tlsinfo.parse_version(found.get("Net::SMTP"))
    if smtp and smtp < (3, 0, 0):
        lacking.append(f"Net::SMTP >= 3.0 for SSL, have {found['Net::SMTP']} (libnet-perl)")
    return lacking


def _ssleay(det: Detection, found: dict[str, str], run_fn: RunFn) -> None:
    banner = found.get("ssleay")
    if not banner:
        det.without_tls()
        return
    claim = VersionInfo(det.version, *(parse_openssl_banner(banner) or (None, None)))
    module = found.get("ssleay_so", "")
    if os.path.isfile(module):
        link = resolve_tls_library(module, run_fn)
    else:
        link = TlsLink("unknown", note=Text(gettext_noop("Net::SSLeay's SSLeay.so was not found")))
    apply_tls(det, link, claim, f"Net::SSLeay {found.get('Net::SSLeay')}: {banner}")


class PerlScript(ScriptTransport):
    key = "perl"
    binary = "perl"
    script = "send_mail.pl"

    @classmethod
    def inspect(cls, det: Detection, exe: str, run_fn: RunFn) -> None:
        out = run_fn([exe, "-e", _PERL_SCRIPT])
        found = parse_assignments(out.stdout)
        det.version = found.get("perl")
        if det.version is None:
            det.add_note(failure(out))
        if lacking := missing_modules(found):
            det.usable = False
            det.add_note(
                Text(
                    gettext_noop("the send script needs %(modules)s"),
                    {"modules": ", ".join(lacking)},
                )
            )
        _ssleay(det, found, run_fn)
