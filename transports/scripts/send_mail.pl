#!/usr/bin/perl
# Send messages over SMTP with TLS and AUTH; shipped with xmailadmin.
#
# Needs Net::SMTP >= 3 (SSL and starttls), IO::Socket::SSL and Authen::SASL
# (Debian: libio-socket-ssl-perl, libnet-ssleay-perl, libauthen-sasl-perl).
# The password never comes through argv: it is read from --password-file
# ("-" = the first line of standard input).
# Prints the SMTP dialogue to stderr and, as the last line of stdout,
# "XMAILADMIN-RESULT {json}". Exit codes as send_mail.py: 0 sent, 2 usage,
# 3 AUTH, 4 TLS, 5 connect, 6 MAIL FROM, 7 RCPT TO, 8 DATA, 9 EHLO, 10 timeout.
#
# --batch FILE instead of --to and --message sends many messages over one connection,
# as send_mail.py does: FILE holds one {"to": ..., "message": ...} a line; stderr gets
# "XMAILADMIN-ITEM N" before item N's dialogue, stdout one "XMAILADMIN-RESULT {json}"
# with "item": N as each item ends; the exit code is that of the first failed item.
use strict;
use warnings;
use Getopt::Long qw(GetOptions);
use Net::Cmd;
use Net::SMTP;
use IO::Socket::SSL;
use Socket qw(IPPROTO_TCP TCP_NODELAY);

# A server that closes the connection must end in an error report, not in SIGPIPE.
$SIG{PIPE} = 'IGNORE';

my %EXIT = (done => 0, auth => 3, tls => 4, connect => 5, mail_from => 6,
            rcpt_to => 7, data => 8, ehlo => 9, timeout => 10);

sub usage { print STDERR "$_[0]\n"; exit 2 }

my %opt = (timeout => 30, helo => 'localhost');
GetOptions(\%opt, 'host=s', 'port=i', 'mode=s', 'user=s', 'password-file=s', 'from=s',
           'to=s', 'ca-file=s', 'timeout=f', 'helo=s', 'message=s', 'insecure', 'batch=s')
    or exit 2;
for my $required (qw(host port user password-file from)) {
    usage("missing --$required") unless defined $opt{$required};
}
my $single = defined $opt{to} && defined $opt{message};
usage('give either --to and --message, or --batch')
    if $single == defined $opt{batch} || defined $opt{to} != defined $opt{message};
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

sub read_batch {
    my ($path) = @_;
    require JSON::PP;
    my $json = JSON::PP->new->utf8;
    open(my $fh, '<:raw', $path) or usage("cannot read $path: $!");
    my @items;
    while (my $line = <$fh>) {
        next unless $line =~ /\S/;
        my $item = eval { $json->decode($line) };
        usage("line $. of the batch file is no {\"to\": ..., \"message\": ...}")
            unless ref $item eq 'HASH'
                && grep({ defined $item->{$_} && !ref $item->{$_} } qw(to message)) == 2;
        push @items, $item;
    }
    close $fh;
    usage('the batch file holds no item') unless @items;
    return @items;
}

# One send is a batch of one that prints no item number and no marker.
my @items = $single ? ({to => $opt{to}, message => $opt{message}}) : read_batch($opt{batch});
$| = 1;  # each result line as its item ends: what went before a kill is still known

sub result_line {
    my ($result, $item) = @_;
    my %shown = (%$result, ($single ? () : (item => $item)));
    $shown{error} =~ s/\s+\z// if defined $shown{error};
    # error, step and tls_version always (null when unset); failed_at and waited_for only
    # with a timeout, as send_mail.py.
    my @keys = grep { exists $shown{$_} || /^(?:error|step|tls_version)$/ }
        qw(error failed_at item step tls_version waited_for);
    print 'XMAILADMIN-RESULT {', join(', ', map {
        "\"$_\": " . ($_ eq 'item' ? $shown{$_} : json_string($shown{$_}))
    } @keys), "}\n";
}

sub exit_for { my ($step) = @_; exit(defined $EXIT{$step} ? $EXIT{$step} : 1) }

# A failure before the first MAIL FROM: nothing of any item was sent, each has this result.
sub finish {
    my ($step, $tls, $error) = @_;
    print STDERR "$error\n" if defined $error;
    result_line({step => $step, tls_version => $tls, error => $error}, $_) for 0 .. $#items;
    exit_for($step);
}

my $password = read_password($opt{'password-file'});

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

# RFC 5321 allows 512 bytes a reply line. Net::Cmd reads a reply without any limit, and a
# long line in 1 KB steps that each split all of it again: a reply of megabytes would keep
# it busy past the time limit. So replies are read here, with a limit on each.
my $REPLY_LIMIT = 64 * 1024;
my $step_under_way = 'connect';  # the greeting, then the command last sent
my %STEP_OF = (EHLO => 'ehlo', HELO => 'ehlo', STARTTLS => 'tls', AUTH => 'auth',
               MAIL => 'mail_from', RCPT => 'rcpt_to', DATA => 'data');

# The connection is of no more use: close it, forget what was read, and keep the reason
# (Net::SMTP tries HELO after a failed EHLO; that must not replace it).
sub ended {
    my ($cmd, $code, $why) = @_;
    ${*$cmd}{'net_cmd_lines'} = [];
    ${*$cmd}{'net_cmd_partial'} = '';
    $cmd->close;
    $cmd->set_status($code, ["[xmailadmin] $why"]);
}

sub too_long {
    my ($cmd) = @_;
    ended($cmd, 500, "the server's reply is longer than $REPLY_LIMIT bytes");
}

{
    no warnings qw(redefine once);
    my $command = \&Net::Cmd::command;
    # The step under way: the command last sent (the message itself is no command).
    *Net::SMTP::command = sub {
        return $_[0] unless defined fileno($_[0]);  # ended: nothing to send, the reason stays
        my $verb = defined $_[1] ? uc $_[1] : '';
        $step_under_way = $STEP_OF{$verb} if $STEP_OF{$verb};
        goto &$command;
    };
    # Before TLS (Net::Cmd's own reading; with TLS, IO::Socket::SSL reads the lines).
    *Net::SMTP::getline = sub {
        my $cmd = shift;
        my $lines = ${*$cmd}{'net_cmd_lines'} ||= [];
        return shift @$lines if @$lines;
        return unless defined fileno($cmd);
        my $partial = defined ${*$cmd}{'net_cmd_partial'} ? ${*$cmd}{'net_cmd_partial'} : '';
        my $rin = '';
        vec($rin, fileno($cmd), 1) = 1;
        until (@$lines) {
            if (length($partial) > $REPLY_LIMIT) { too_long($cmd); return }
            my $rout;
            unless (select($rout = $rin, undef, undef, $cmd->timeout || undef) > 0) {
                $cmd->set_status(421, ['[xmailadmin] no reply: timed out']);
                return;
            }
            my $buf = '';
            unless (sysread($cmd, $buf, 65536)) {
                ended($cmd, 421, 'no reply: the connection was closed' . ($! ? " ($!)" : ''));
                return;
            }
            my @buf = split /\015?\012/, $partial . $buf, -1;
            $partial = pop @buf;
            push @$lines, map { "$_\n" } @buf;
        }
        ${*$cmd}{'net_cmd_partial'} = $partial;
        return shift @$lines;
    };
    # Net::Cmd's response, with a limit on the whole reply; also used with TLS.
    *Net::SMTP::response = sub {
        my $cmd = shift;
        my ($code, $more, $size) = (undef, undef, 0);
        return CMD_ERROR unless defined fileno($cmd);  # ended: the reason stays
        $cmd->set_status($cmd->DEF_REPLY_CODE, undef);
        while (1) {
            unless (readable($cmd)) {
                $cmd->set_status(421, ['[xmailadmin] no reply: timed out']);
                return CMD_ERROR;
            }
            my $str = $cmd->getline();
            unless (defined $str) {
                # IO::Socket::SSL says nothing at the end of the connection; a reply cut
                # off has lines, but no last one.
                ended($cmd, 421, 'no reply: the connection was closed')
                    unless ($cmd->message || '') =~ /^\[/;
                return CMD_ERROR;
            }
            $size += length $str;
            if ($size > $REPLY_LIMIT) { too_long($cmd); return CMD_ERROR }
            $cmd->debug_print(0, $str) if $cmd->debug;
            ($code, $more) = $cmd->parse_response($str);
            unless (defined $code) {
                $cmd->ungetline($str);
                $@ = $str;
                return CMD_ERROR;
            }
            ${*$cmd}{'net_cmd_code'} = $code;
            push @{${*$cmd}{'net_cmd_resp'}}, $str;
            last unless $more;
        }
        return unless defined $code;
        return substr($code, 0, 1);
    };
}

# With TLS, IO::Socket::SSL reads the lines, and waits for them without any time limit:
# so wait for the server here, unless TLS holds decrypted bytes already (a silent server
# would else hang a batch until it is killed, with no word of where it waited).
sub readable {
    my ($cmd) = @_;
    return 1 unless $cmd->isa('IO::Socket::SSL') && !$cmd->pending;
    my $rin = '';
    vec($rin, fileno($cmd), 1) = 1;
    return select(my $rout = $rin, undef, undef, $cmd->timeout || undef) > 0;
}

sub failed_step {
    my ($default, $error) = @_;
    # The class name (Net::SMTP::_SSL) is in many messages: it says nothing about TLS.
    (my $words = $error) =~ s/Net::SMTP(?:::_SSL)?//g;
    return 'timeout' if $words =~ /timed? ?out|timeout/i;
    return 'connect' if $words =~ /refused|unreachable|no route|not known|resolve|getaddrinfo/i;
    return 'tls' if $words =~ /SSL|certificate|verif|handshake/i;
    return $default;
}

# The step a failure belongs to: the command under way when the reply was too long or
# the connection ended, else what the words say.
sub step_of {
    my ($default, $error) = @_;
    return $step_under_way
        if $error =~ /longer than \d+ bytes|no reply: the connection|Connection closed/;
    return failed_step($default, $error);
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
    finish(step_of('connect', "$error $IO::Socket::SSL::SSL_ERROR"), undef, $error);
}
# The end of a message (".") is a small write after a large one: Nagle would hold it back
# until the server's delayed ACK, some 40 ms a message.
setsockopt($smtp, IPPROTO_TCP, TCP_NODELAY, 1);

sub reply { my $r = $smtp->code . ' ' . ($smtp->message || ''); $r =~ s/\s+\z//; return $r }

if ($opt{mode} eq 'starttls') {
    # What the EHLO reply says, not a failed handshake. (supports() gives the keyword's
    # parameters: "" for STARTTLS, undef when it is missing.)
    finish('ehlo', undef, 'the server does not offer STARTTLS')
        unless defined $smtp->supports('STARTTLS');
    unless ($smtp->starttls(@tls)) {
        # TLS is up (the object is Net::SMTP::_SSL now): the EHLO after it failed.
        finish(step_of('ehlo', reply()), undef, reply()) if $smtp->isa('IO::Socket::SSL');
        my $error = $IO::Socket::SSL::SSL_ERROR || reply();
        finish(step_of('tls', $error), undef, "STARTTLS failed: $error");
    }
}
my $tls = $smtp->can('get_sslversion') ? $smtp->get_sslversion : undef;

$smtp->auth($opt{user}, $password) or finish(step_of('auth', reply()), $tls, reply());

# The result of a failed command at $default ($waited: what a timeout waited for, when
# it is no command's reply) and whether the connection is lost: a reply of the server's
# own (4xx/5xx) leaves it usable, anything else in a state nobody knows.
sub failed {
    my ($default, $waited) = @_;
    my %result = (step => step_of($default, reply()), error => reply(), tls_version => $tls);
    # Where it waited, as the dialogue went: the transcript alone cannot tell an item
    # that ended the connection from the items after it, which share its result.
    @result{qw(failed_at waited_for)} = ($default, $waited || $default)
        if $result{step} eq 'timeout';
    my $lost = !defined fileno($smtp) || ($smtp->message || '') =~ /^\[xmailadmin\]/
        || $smtp->code !~ /^[45]/ || $result{step} eq 'timeout' || $result{step} eq 'tls';
    return (\%result, $lost);
}

sub send_item {
    my ($item, $in_transaction) = @_;
    my $message = eval { slurp($item->{message}) };
    # Nothing was sent: the next item goes on as usual.
    return ({step => 'config', error => $@, tls_version => $tls}, 0) unless defined $message;
    $message =~ s/\r\n/\n/g;   # Net::SMTP's datasend turns every \n into CRLF itself
    if ($in_transaction) {
        $step_under_way = 'mail_from';  # the RSET readies the next MAIL FROM
        $smtp->reset or return failed('mail_from');
    }
    $smtp->mail($opt{from}) or return failed('mail_from');
    $smtp->to($item->{to}) or return failed('rcpt_to');
    $smtp->data() or return failed('data');
    # The dialogue stays readable: the message itself is not echoed line by line.
    $smtp->debug(0);
    my $sent = $smtp->datasend($message);
    print STDERR "[message of " . length($message) . " bytes]\n";
    $smtp->debug(1);
    $sent or return failed('data', 'message');
    $smtp->dataend() or return failed('data', 'message');
    return ({step => 'done', tls_version => $tls}, 0);
}

my ($first_failed, $ended, $in_transaction);  # $ended: the result that lost the connection
for my $n (0 .. $#items) {
    print STDERR "XMAILADMIN-ITEM $n\n" unless $single;
    my ($result, $lost);
    if ($ended) {
        print STDERR "[xmailadmin] not sent: the connection ended before this message\n";
        $result = $ended;
    } else {
        ($result, $lost) = send_item($items[$n], $in_transaction);
        print STDERR "$result->{error}\n" if defined $result->{error};
        $in_transaction = $result->{step} ne 'done';
        $ended = $result if $lost;
    }
    result_line($result, $n);
    $first_failed = $result->{step} if $result->{step} ne 'done' && !defined $first_failed;
}
$smtp->quit unless $ended;
exit_for(defined $first_failed ? $first_failed : 'done');
