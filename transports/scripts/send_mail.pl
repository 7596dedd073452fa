#!/usr/bin/perl
# Send one message over SMTP with TLS and AUTH; shipped with xmailadmin.
#
# Needs Net::SMTP >= 3 (SSL and starttls), IO::Socket::SSL and Authen::SASL
# (Debian: libio-socket-ssl-perl, libnet-ssleay-perl, libauthen-sasl-perl).
# The password never comes through argv: it is read from --password-file
# ("-" = the first line of standard input).
# Prints the SMTP dialogue to stderr and, as the last line of stdout,
# "XMAILADMIN-RESULT {json}". Exit codes as send_mail.py: 0 sent, 2 usage,
# 3 AUTH, 4 TLS, 5 connect, 6 MAIL FROM, 7 RCPT TO, 8 DATA, 9 EHLO, 10 timeout.
use strict;
use warnings;
use Getopt::Long qw(GetOptions);
use Net::SMTP;
use IO::Socket::SSL;

my %EXIT = (done => 0, auth => 3, tls => 4, connect => 5, mail_from => 6,
            rcpt_to => 7, data => 8, ehlo => 9, timeout => 10);

my %opt = (timeout => 30, helo => 'localhost');
GetOptions(\%opt, 'host=s', 'port=i', 'mode=s', 'user=s', 'password-file=s', 'from=s',
           'to=s', 'ca-file=s', 'timeout=f', 'helo=s', 'message=s', 'insecure')
    or exit 2;
for my $required (qw(host port user password-file from to message)) {
    unless (defined $opt{$required}) { print STDERR "missing --$required\n"; exit 2 }
}
$opt{mode} ||= $opt{port} == 465 ? 'smtps' : 'starttls';

sub slurp {
    my ($path) = @_;
    open(my $fh, '<:raw', $path) or die "cannot read $path: $!\n";
    # Slurp mode only inside this block: a global $/ = undef makes Net::SMTP hang after DATA.
    my $data = do { local $/; <$fh> };
    close $fh;
    return $data;
}

sub read_password {
    my ($path) = @_;
    my $line = $path eq '-' ? <STDIN> : slurp($path);
    $line = '' unless defined $line;
    $line =~ s/[\r\n]+\z//;
    return $line;
}

sub json_string {
    my ($s) = @_;
    return 'null' unless defined $s;
    $s =~ s/(["\\])/\\$1/g;
    $s =~ s/\n/\\n/g;
    $s =~ s/([\x00-\x1f])/sprintf('\\u%04x', ord $1)/ge;
    return "\"$s\"";
}

sub finish {
    my ($step, $tls, $error) = @_;
    print STDERR "$error\n" if defined $error;
    $error =~ s/\s+\z// if defined $error;
    printf "XMAILADMIN-RESULT {\"error\": %s, \"step\": %s, \"tls_version\": %s}\n",
        json_string($error), json_string($step), json_string($tls);
    exit(defined $EXIT{$step} ? $EXIT{$step} : 1);
}

my $password = read_password($opt{'password-file'});
my $message = slurp($opt{message});
$message =~ s/\r\n/\n/g;   # Net::SMTP's datasend turns every \n into CRLF itself

my @tls = $opt{insecure} ? (SSL_verify_mode => SSL_VERIFY_NONE) : (
    SSL_verify_mode => SSL_VERIFY_PEER,
    SSL_verifycn_name => $opt{host},
    SSL_verifycn_scheme => 'smtp',
);
push @tls, (
    SSL_hostname => $opt{host},
    SSL_version => 'SSLv23:!SSLv3:!TLSv1:!TLSv1_1',
    ($opt{'ca-file'} ? (SSL_ca_file => $opt{'ca-file'}) : ()),
);

sub failed_step {
    my ($default, $error) = @_;
    return 'timeout' if $error =~ /timed? ?out|timeout/i;
    return 'connect' if $error =~ /refused|unreachable|no route|not known|resolve|getaddrinfo/i;
    return 'tls' if $error =~ /SSL|certificate|verif|handshake/i;
    return $default;
}

my $smtp = Net::SMTP->new(
    $opt{host},
    Port => $opt{port},
    Hello => $opt{helo},
    Timeout => $opt{timeout},
    Debug => 1,
    ($opt{mode} eq 'smtps' ? (SSL => 1, @tls) : ()),
);
unless ($smtp) {
    my $error = $@ || $IO::Socket::SSL::SSL_ERROR || $! || 'connection failed';
    finish(failed_step('connect', "$error $IO::Socket::SSL::SSL_ERROR"), undef, $error);
}

sub reply { my $r = $smtp->code . ' ' . ($smtp->message || ''); $r =~ s/\s+\z//; return $r }

if ($opt{mode} eq 'starttls') {
    unless ($smtp->starttls(@tls)) {
        my $error = $IO::Socket::SSL::SSL_ERROR || reply();
        finish(failed_step('tls', $error), undef, "STARTTLS failed: $error");
    }
}
my $tls = $smtp->can('get_sslversion') ? $smtp->get_sslversion : undef;

$smtp->auth($opt{user}, $password) or finish(failed_step('auth', reply()), $tls, reply());
$smtp->mail($opt{from}) or finish(failed_step('mail_from', reply()), $tls, reply());
$smtp->to($opt{to}) or finish(failed_step('rcpt_to', reply()), $tls, reply());
$smtp->data() or finish(failed_step('data', reply()), $tls, reply());
# The dialogue stays readable: the message itself is not echoed line by line.
$smtp->debug(0);
$smtp->datasend($message);
print STDERR "[message of " . length($message) . " bytes]\n";
$smtp->debug(1);
$smtp->dataend() or finish(failed_step('data', reply()), $tls, reply());
$smtp->quit;
finish('done', $tls, undef);
