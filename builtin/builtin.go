// Package builtin serves the small internal services that inetd and xinetd
// provide themselves, so that sockd answers them in-process without spawning
// a program (job key SockdInternal, job.ModeInternal). Each service works over
// TCP (Stream) and UDP (Datagram) and behaves byte for byte like the BSD
// inetd built-ins:
//
//   - echo (RFC 862): every byte received is sent back unchanged; a datagram
//     is answered with a copy of itself.
//   - discard (RFC 863): everything received is thrown away; nothing is ever
//     sent, not even for a datagram.
//   - chargen (RFC 864): over TCP an endless stream of 72-character lines of
//     the 95 printable ASCII characters (0x20 to 0x7E) in rotation, each line
//     ended by CR LF and starting one character later than the line before;
//     over UDP one such 74-byte line per request datagram, the starting
//     character advancing by one with every reply.
//   - daytime (RFC 867): the time as ctime(3) prints it, followed by CR LF,
//     e.g. "Sat Nov 21 10:36:42 2026\r\n"; over TCP the connection is then
//     closed.
//   - time (RFC 868): the time as a 32-bit big-endian count of seconds since
//     1900-01-01 00:00 UTC (wrapping in 2036 as the RFC's 32 bits do); over
//     TCP the connection is then closed.
//
// Amplification and loop guard: a UDP request's source address is trivially
// forged, so Datagram never answers a datagram whose source port is below
// 1024 or is 2049 (NFS), nor one from an unspecified, multicast or broadcast
// address, as OpenBSD inetd's dg_badinput does. Well-known UDP services (for
// example another host's echo or chargen on port 7 or 19) sit on such ports,
// so an attacker cannot make two servers answer each other forever, or turn
// this server into a reflector aimed at them.
package builtin

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"
)

// Service names.
const (
	Echo    = "echo"
	Discard = "discard"
	Chargen = "chargen"
	Daytime = "daytime"
	Time    = "time"
)

// Known reports whether name is a built-in service: "echo", "discard",
// "chargen", "daytime" or "time" (exact, lower case).
func Known(name string) bool {
	switch name {
	case Echo, Discard, Chargen, Daytime, Time:
		return true
	}
	return false
}

// Stream serves one accepted stream connection of the named service until the
// service is done (daytime, time), the peer closes (echo, discard, chargen) or
// ctx is cancelled, and closes conn on return.
//
// idle (0 = none) bounds how long the peer may stay silent: echo and discard
// close a connection that sends nothing for idle, and echo and chargen stop
// when the peer does not accept data (does not read) for idle.
//
// Stream returns nil for a normal end: the service finished, the peer closed
// or reset the connection, or the idle limit expired. It returns ctx.Err()
// when ctx was cancelled, and a wrapped error for an unknown service or any
// other I/O failure.
func Stream(ctx context.Context, name string, conn net.Conn, idle time.Duration) error {
	defer conn.Close()
	if !Known(name) {
		return fmt.Errorf("builtin: unknown service %q", name)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// Closing conn is the one way to unblock a Read or Write from another
	// goroutine that cannot be undone by the service's own SetDeadline calls.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	var err error
	switch name {
	case Echo:
		err = echoStream(conn, idle)
	case Discard:
		err = discardStream(conn, idle)
	case Chargen:
		err = chargenStream(conn, idle)
	case Daytime:
		err = writeOnce(conn, idle, daytime(time.Now()))
	case Time:
		err = writeOnce(conn, idle, machtime(time.Now()))
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err == nil || normalEnd(err) {
		return nil
	}
	return fmt.Errorf("builtin %s: %w", name, err)
}

// normalEnd reports whether err is the peer ending the conversation (close,
// reset) or the idle limit expiring.
func normalEnd(err error) bool {
	return errors.Is(err, io.EOF) ||
		errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE)
}

const bufSize = 32 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

// deadline returns the absolute deadline for an idle limit, or the zero time
// (no deadline) when idle is 0.
func deadline(idle time.Duration) time.Time {
	if idle <= 0 {
		return time.Time{}
	}
	return time.Now().Add(idle)
}

func echoStream(conn net.Conn, idle time.Duration) error {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	for {
		if err := conn.SetReadDeadline(deadline(idle)); err != nil {
			return err
		}
		n, rerr := conn.Read(buf)
		if n > 0 {
			if err := conn.SetWriteDeadline(deadline(idle)); err != nil {
				return err
			}
			if _, err := conn.Write(buf[:n]); err != nil {
				return err
			}
		}
		if rerr != nil {
			return rerr
		}
	}
}

func discardStream(conn net.Conn, idle time.Duration) error {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	for {
		if err := conn.SetReadDeadline(deadline(idle)); err != nil {
			return err
		}
		if _, err := conn.Read(buf); err != nil {
			return err
		}
	}
}

func chargenStream(conn net.Conn, idle time.Duration) error {
	// chargenCycle holds whole lines and repeats with the stream's period,
	// so writing it again and again is exactly inetd's line-by-line output.
	for {
		if err := conn.SetWriteDeadline(deadline(idle)); err != nil {
			return err
		}
		if _, err := conn.Write(chargenCycle); err != nil {
			return err
		}
	}
}

func writeOnce(conn net.Conn, idle time.Duration, b []byte) error {
	if err := conn.SetWriteDeadline(deadline(idle)); err != nil {
		return err
	}
	_, err := conn.Write(b)
	return err
}

// Datagram returns the reply to one request datagram of the named service, or
// nil for no reply. now is the time daytime and time report (daytime formats
// it in now's location; pass time.Now() for the local time, as inetd's
// ctime(3) does).
//
// discard never replies, and neither does any service for an unknown name.
// echo replies with a copy of req, so an empty request gets an empty but
// non-nil reply: send a datagram whenever the result is non-nil.
//
// Amplification guard: no reply is ever produced for a source port below 1024
// or equal to 2049, or for an invalid, unspecified, multicast or broadcast
// source address (IPv4-mapped IPv6 addresses are checked as IPv4), as BSD
// inetd does. This keeps two UDP servers (say this chargen and a remote echo
// on port 7) from being made to answer each other in a loop with one forged
// datagram, and keeps sockd from reflecting traffic at well-known services.
func Datagram(name string, req []byte, from netip.AddrPort, now time.Time) []byte {
	if !Known(name) || name == Discard || badSource(from) {
		return nil
	}
	switch name {
	case Echo:
		return append(make([]byte, 0, len(req)), req...)
	case Chargen:
		return chargenLine(chargenNext.Add(1) - 1)
	case Daytime:
		return daytime(now)
	case Time:
		return machtime(now)
	}
	return nil
}

// nfsPort is refused as a source port like the reserved ports, as OpenBSD
// inetd does: NFS servers answer garbage with errors.
const nfsPort = 2049

// badSource reports whether a datagram from addr must not be answered.
func badSource(from netip.AddrPort) bool {
	if !from.IsValid() {
		return true
	}
	port := from.Port()
	if port < 1024 || port == nfsPort {
		return true
	}
	a := from.Addr().Unmap()
	if a.IsUnspecified() || a.IsMulticast() {
		return true
	}
	if a.Is4() {
		b := a.As4()
		// 0.0.0.0/8 ("this network") and 255.0.0.0/8 (contains the
		// limited broadcast address) are never legitimate sources.
		if b[0] == 0 || b[0] == 255 {
			return true
		}
	}
	return false
}

// daytime formats t as ctime(3) does, "%.24s\r\n" as inetd writes it:
// "Sat Nov 21 10:36:42 2026\r\n" (day of month padded with a space).
func daytime(t time.Time) []byte {
	return t.AppendFormat(make([]byte, 0, 26), time.ANSIC+"\r\n")
}

// epoch1900 is the number of seconds from 1900-01-01 to 1970-01-01 UTC.
const epoch1900 = 2208988800

// machtime is t as RFC 868 time: seconds since 1900-01-01 00:00 UTC, 32 bits
// big-endian, wrapping modulo 2^32 like inetd's u_int32_t arithmetic.
func machtime(t time.Time) []byte {
	return binary.BigEndian.AppendUint32(make([]byte, 0, 4), uint32(t.Unix()+epoch1900))
}
