// Package compat imports inetd.conf and xinetd configurations and systemd
// socket units into sockd jobs (job.Job) and writes jobs back out as
// launchd XML job files for "sockd convert".
//
// Every imported service becomes one job with launchd's and sockd's
// defaults filled in, exactly as the launchd loader fills them, so a job
// from here and the same job written by WritePlist and loaded back are
// equal. A service that cannot be imported yields an error Diag naming
// file and line and no job; the other services still load. Whatever
// sockd does not honour is reported as a warning, never dropped silently.
//
// # inetd.conf
//
// LoadInetd and ParseInetd read the BSD/Debian format: comments ("#" first
// on the line, Debian's "#:SECTION:" markers included), blank lines, BSD
// continuation lines (a line starting with a blank continues the entry
// above), "host:" lines that set the address for the lines below, and
// "host:service" prefixes ("127.0.0.1:comsat", "[::1]:comsat", "a,b:svc").
// A job is labelled "inetd.SERVICE.PROTO" ("@HOST" appended for a host
// prefix) and its File is "PATH:LINE". Protocols follow Debian's
// openbsd-inetd: tcp/udp listen on IPv6 and IPv4 (two endpoints), except
// when the same file declares the same service on tcp6/udp6 too, in which
// case tcp/udp means IPv4 only, as on the BSDs (a warning says so);
// tcp4/udp4 and tcp6/udp6 (tcp6only) one family; tcp46 both; unix a Unix
// socket at the path in the service field; rpc/* is skipped with a warning.
// The wait field's ".max" (BSD, Solaris, GNU) is a number of spawns per
// minute and becomes Limits.Rate max/60 with Burst max; without it inetd's
// default -R 256 per minute applies (Rate 256/60, Burst 256). FreeBSD's
// "/max-child/max-conn-per-ip-per-minute/max-child-per-ip" sets
// MaxChildren (0 = Unlimited) and MaxPerSource; a per-minute per-source
// rate only approximates to a concurrent per-source limit, with a warning.
// "internal" becomes job.Internal for echo, discard, chargen, daytime and
// time. A wait entry gets no SockdLimits (sockd never accepts for it). A
// server that is tcpd checks hosts.allow and hosts.deny itself, under sockd
// as under inetd; for another server, a warning names a rule of those
// tables that an inetd run with -l (Debian) or -w (FreeBSD) applied.
//
// # xinetd
//
// LoadXinetd reads xinetd.conf, a directory such as xinetd.d, or one
// service file; ParseXinetd reads text without touching the file system
// (include and includedir are then warned about and ignored). includedir
// reads the directory's files in byte order, skipping names that contain a
// dot or end in '~' (xinetd.conf(5)). Relative include paths are relative
// to the including file. An absolute one that does not exist is looked up
// by its last element in the loaded tree (the directory of the file given,
// or the parent of the directory given), with a warning;
// XinetdOptions.Relocate always does so and never reads the host's /etc,
// for copied trees and tests. Include depth, file count and file size are
// bounded and a file is never read twice (so include loops end).
// defaults{} applies to every service (list attributes cumulatively); +=
// and -= start from the defaults' list. Jobs are labelled "xinetd.ID" (ID
// defaults to the service name; "@BIND" is appended when one id is used
// with several bind addresses). The family is IPv4 unless flags has IPv6
// (then both families, since xinetd's IPv6 socket also takes IPv4 clients,
// or IPv6 only with v6only = yes) or bind gives an address. instances,
// per_source, cps, only_from and no_access become Limits; env, nice, umask
// and rlimit_* become the process settings; redirect becomes a proxy job;
// type = INTERNAL an internal one. Without cps, xinetd's own default
// cps = 50 10 applies. Errors in a disabled service are reported as
// warnings.
//
// An attribute that narrows who may connect, where a service listens or
// how it runs is enforced exactly by the job, or the service is an error:
// never does sockd serve wider than xinetd would. bind (and interface)
// takes an address, or a host name with one address of the service's
// family in /etc/hosts; names are never looked up in DNS, so a converted
// file does not depend on a name server. An interface name is an error,
// as xinetd 2.3.15 refuses it too. A host name in only_from admits the
// /etc/hosts addresses whose first name there is that name (clients xinetd
// admits by their reverse name); an only_from none of whose entries is an
// address sockd can match is an error, a name in no_access too. An
// only_from that is empty, or per_source = 0, closes the job (disabled,
// Deny of every address). access_times, max_load, flags IDONLY and
// LABELED, and only_from, no_access or INTERCEPT on a wait = yes service
// are errors; a wait = yes job gets no SockdLimits (sockd never accepts
// for it). xinetd applies the TCP wrappers' hosts.allow and hosts.deny to
// every service without flags = NOLIBWRAP: a service a rule there can
// refuse clients of is an error, unless its server is tcpd (NAMEINARGS),
// which applies the rules itself. passenv writes nothing into the job:
// sockd passes its own environment to every child, so the server gets
// sockd's values when it runs, and the file does not carry the
// environment of whoever converted it.
//
// # systemd
//
// LoadSystemd reads socket units (NAME.socket, an instance of a template,
// or a directory of units) with their drop-ins and the services they
// activate (systemd.go): an Accept=yes unit is an inetd nowait job, the
// Accept=no units of one service its handoff job (inetd wait with
// StandardInput=socket), with each unit's sockets under its
// FileDescriptorName. As for xinetd, what narrows who may connect, what is
// exposed or where the service runs is enforced exactly or is an error
// for its unit (systemd_directives.go classifies every directive sockd
// does not map); sandboxing that only narrows what the service itself may
// do is a warning; every other unknown directive a warning with file and
// line. docs/migrating.md has the table.
//
// # Detect
//
// Detect decides by name first: "*.plist" is launchd, a name beginning
// with "xinetd.conf" is xinetd, one beginning with "inetd.conf" is inetd,
// "*.socket" and "*.service" are systemd units, and any file in a
// directory named "xinetd.d" is xinetd. Otherwise by content: a
// "bplist00" header, or text starting (after blanks) with "<?xml",
// "<plist", "<!DOCTYPE plist" or "{" is launchd; a non-comment line
// "service NAME [{]", "defaults [{]" or "includedir DIR" is xinetd, a line
// "[Socket]" a systemd unit; a line of six or more fields whose fourth is wait or nowait (with an
// optional .max, /max or :filter suffix) is inetd, checked first on
// uncommented lines and then on commented-out ones (files that ship with
// every entry disabled). Anything else is FormatUnknown.
package compat
