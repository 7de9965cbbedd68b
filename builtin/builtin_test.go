package builtin

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// waitLimit bounds every wait in these tests; it is a liveness bound, not a
// speed assertion.
const waitLimit = 20 * time.Second

// streamPair starts Stream(name) on the server side of a real loopback TCP
// connection and returns the client side and a channel carrying Stream's
// result.
func streamPair(t *testing.T, ctx context.Context, name string, idle time.Duration) (*net.TCPConn, <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.DialTimeout("tcp", ln.Addr().String(), waitLimit)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- Stream(ctx, name, server, idle) }()
	return client.(*net.TCPConn), done
}

func waitDone(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(waitLimit):
		t.Fatalf("Stream did not return within %v", waitLimit)
		return nil
	}
}

// readAll reads until EOF with an overall deadline.
func readAll(t *testing.T, c net.Conn) []byte {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(waitLimit)); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read until EOF: %v (got %d bytes)", err, len(b))
	}
	return b
}

func TestKnown(t *testing.T) {
	for _, n := range []string{"echo", "discard", "chargen", "daytime", "time"} {
		if !Known(n) {
			t.Errorf("Known(%q) = false", n)
		}
	}
	for _, n := range []string{"", "Echo", "tcpmux", "qotd", "echo ", "times"} {
		if Known(n) {
			t.Errorf("Known(%q) = true", n)
		}
	}
}

func TestEchoStream(t *testing.T) {
	big := make([]byte, 1<<20)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	for _, tc := range []struct {
		name    string
		payload []byte
	}{
		{"text", []byte("hello, world\r\n")},
		{"every-byte-value", all},
		{"1MiB-random", big},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, done := streamPair(t, context.Background(), "echo", 0)
			werr := make(chan error, 1)
			go func() {
				// Write in uneven pieces while the main goroutine reads,
				// then half-close: the echo must end with all data back.
				p := tc.payload
				for len(p) > 0 {
					n := min(len(p), 12345)
					if _, err := client.Write(p[:n]); err != nil {
						werr <- err
						return
					}
					p = p[n:]
				}
				werr <- client.CloseWrite()
			}()
			got := readAll(t, client)
			if err := <-werr; err != nil {
				t.Fatalf("client write: %v", err)
			}
			if !bytes.Equal(got, tc.payload) {
				t.Fatalf("echoed %d bytes, want %d identical bytes", len(got), len(tc.payload))
			}
			if err := waitDone(t, done); err != nil {
				t.Fatalf("Stream = %v, want nil", err)
			}
		})
	}
}

func TestEchoIdle(t *testing.T) {
	client, done := streamPair(t, context.Background(), "echo", 150*time.Millisecond)
	if _, err := client.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	// The echo arrives, then the silent connection is closed by the server.
	if got := readAll(t, client); string(got) != "x" {
		t.Fatalf("got %q, want %q then EOF", got, "x")
	}
	if err := waitDone(t, done); err != nil {
		t.Fatalf("Stream after idle = %v, want nil", err)
	}
}

func TestDiscardStream(t *testing.T) {
	client, done := streamPair(t, context.Background(), "discard", 0)
	if _, err := client.Write(bytes.Repeat([]byte("discard me\n"), 10000)); err != nil {
		t.Fatal(err)
	}
	// Nothing comes back and the connection stays open: the read times out
	// instead of returning data or EOF.
	if err := client.SetReadDeadline(time.Now().Add(300 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	var b [64]byte
	n, err := client.Read(b[:])
	if n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("discard read = %d bytes, %v; want 0 bytes and a timeout", n, err)
	}
	select {
	case err := <-done:
		t.Fatalf("Stream returned %v while the client was still connected", err)
	default:
	}
	// More data is still accepted.
	if _, err := client.Write([]byte("more")); err != nil {
		t.Fatalf("write after pause: %v", err)
	}
	client.Close()
	if err := waitDone(t, done); err != nil {
		t.Fatalf("Stream = %v, want nil", err)
	}
}

// wantChargenLine is line k (0-based) of the chargen stream computed from
// RFC 864's description: the 95 printing ASCII characters, space first, 72
// per line, each line starting one character further along the sequence,
// wrapping around, terminated by CR LF.
func wantChargenLine(k int) string {
	var printing []byte
	for c := byte(' '); c <= '~'; c++ {
		printing = append(printing, c)
	}
	if len(printing) != 95 {
		panic("not 95 printing characters")
	}
	var sb strings.Builder
	for j := 0; j < 72; j++ {
		sb.WriteByte(printing[(k+j)%len(printing)])
	}
	sb.WriteString("\r\n")
	return sb.String()
}

func TestChargenStream(t *testing.T) {
	// The first three lines, spelled out.
	first3 := " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefg\r\n" +
		"!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefgh\r\n" +
		"\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghi\r\n"
	if first3 != wantChargenLine(0)+wantChargenLine(1)+wantChargenLine(2) {
		t.Fatal("test's own expectations disagree")
	}
	client, done := streamPair(t, context.Background(), "chargen", 0)
	if err := client.SetReadDeadline(time.Now().Add(waitLimit)); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(first3))
	if _, err := io.ReadFull(client, got); err != nil {
		t.Fatal(err)
	}
	if string(got) != first3 {
		t.Fatalf("first 3 lines:\n%q\nwant\n%q", got, first3)
	}
	// The stream goes on while it is read, through more than one full
	// period of the pattern (wraps at 95 lines).
	line := make([]byte, 74)
	for k := 3; k < 300; k++ {
		if _, err := io.ReadFull(client, line); err != nil {
			t.Fatalf("line %d: %v", k, err)
		}
		if want := wantChargenLine(k); string(line) != want {
			t.Fatalf("line %d = %q, want %q", k, line, want)
		}
	}
	client.Close()
	if err := waitDone(t, done); err != nil {
		t.Fatalf("Stream after client close = %v, want nil", err)
	}
}

func TestChargenIdle(t *testing.T) {
	// The client never reads: once the socket buffers are full the server's
	// writes stall, and after idle it gives up.
	_, done := streamPair(t, context.Background(), "chargen", 200*time.Millisecond)
	if err := waitDone(t, done); err != nil {
		t.Fatalf("Stream with a non-reading peer = %v, want nil", err)
	}
}

var ctimeRE = regexp.MustCompile(`^(Sun|Mon|Tue|Wed|Thu|Fri|Sat) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 123][0-9] [0-2][0-9]:[0-5][0-9]:[0-6][0-9] [0-9]{4}\r\n$`)

func TestDaytimeStream(t *testing.T) {
	before := time.Now().Truncate(time.Second)
	client, done := streamPair(t, context.Background(), "daytime", 0)
	got := readAll(t, client) // the server closes after the line
	after := time.Now()
	if !ctimeRE.Match(got) {
		t.Fatalf("daytime = %q, not ctime format + CRLF", got)
	}
	ts, err := time.ParseInLocation("Mon Jan _2 15:04:05 2006\r\n", string(got), time.Local)
	if err != nil {
		t.Fatal(err)
	}
	if ts.Before(before) || ts.After(after) {
		t.Fatalf("daytime %v not within [%v, %v]", ts, before, after)
	}
	if err := waitDone(t, done); err != nil {
		t.Fatalf("Stream = %v, want nil", err)
	}
}

func TestTimeStream(t *testing.T) {
	before := time.Now().Unix()
	client, done := streamPair(t, context.Background(), "time", 0)
	got := readAll(t, client)
	after := time.Now().Unix()
	if len(got) != 4 {
		t.Fatalf("time reply is %d bytes (%x), want 4", len(got), got)
	}
	v := int64(binary.BigEndian.Uint32(got))
	if v < before+2208988800 || v > after+2208988800 {
		t.Fatalf("time = %d, want within [%d, %d]", v, before+2208988800, after+2208988800)
	}
	if err := waitDone(t, done); err != nil {
		t.Fatalf("Stream = %v, want nil", err)
	}
}

func TestStreamCancel(t *testing.T) {
	for _, name := range []string{"echo", "discard", "chargen"} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			client, done := streamPair(t, ctx, name, 0)
			// echo and discard are blocked reading; chargen fills the
			// buffers of a client that does not read and blocks writing.
			time.Sleep(50 * time.Millisecond)
			select {
			case err := <-done:
				t.Fatalf("Stream returned early: %v", err)
			default:
			}
			cancel()
			if err := waitDone(t, done); !errors.Is(err, context.Canceled) {
				t.Fatalf("Stream after cancel = %v, want context.Canceled", err)
			}
			// The server side is closed: the client eventually sees EOF or
			// a reset (chargen data may be pending before it).
			if err := client.SetReadDeadline(time.Now().Add(waitLimit)); err != nil {
				t.Fatal(err)
			}
			_, err := io.Copy(io.Discard, client)
			if err != nil && !errors.Is(err, net.ErrClosed) && !isReset(err) {
				t.Fatalf("client after cancel: %v, want EOF or reset", err)
			}
		})
	}
	t.Run("already-cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		client, done := streamPair(t, ctx, "daytime", 0)
		if err := waitDone(t, done); !errors.Is(err, context.Canceled) {
			t.Fatalf("Stream = %v, want context.Canceled", err)
		}
		if got := readAll(t, client); len(got) != 0 {
			t.Fatalf("got %q from a cancelled Stream", got)
		}
	})
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && strings.Contains(op.Err.Error(), "reset")
}

func TestStreamUnknown(t *testing.T) {
	client, done := streamPair(t, context.Background(), "qotd", 0)
	if err := waitDone(t, done); err == nil || !strings.Contains(err.Error(), "qotd") {
		t.Fatalf("Stream(qotd) = %v, want an unknown-service error", err)
	}
	if got := readAll(t, client); len(got) != 0 {
		t.Fatalf("got %q", got)
	}
}

var highPort = netip.MustParseAddrPort("127.0.0.1:40000")

func TestDatagramReplies(t *testing.T) {
	now := time.Date(2026, 11, 21, 10, 36, 42, 0, time.UTC)
	if got := string(Datagram("daytime", nil, highPort, now)); got != "Sat Nov 21 10:36:42 2026\r\n" {
		t.Errorf("daytime = %q", got)
	}
	// ctime pads a one-digit day with a space.
	d1 := time.Date(2026, 11, 1, 9, 5, 7, 0, time.UTC)
	if got := string(Datagram("daytime", []byte("x"), highPort, d1)); got != "Sun Nov  1 09:05:07 2026\r\n" {
		t.Errorf("daytime = %q", got)
	}
	// daytime is in now's location (the local zone when now is time.Now()).
	est := time.FixedZone("EST", -5*3600)
	if got := string(Datagram("daytime", nil, highPort, now.In(est))); got != "Sat Nov 21 05:36:42 2026\r\n" {
		t.Errorf("daytime in EST = %q", got)
	}

	// RFC 868's own examples, and now.Unix()+2208988800.
	for _, tc := range []struct {
		t    time.Time
		want uint32
	}{
		{time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), 2208988800},
		{time.Date(1976, 1, 1, 0, 0, 0, 0, time.UTC), 2398291200},
		{time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), 3155673600},
		{now, uint32(now.Unix() + 2208988800)},
		{now.In(est), uint32(now.Unix() + 2208988800)},
	} {
		got := Datagram("time", nil, highPort, tc.t)
		if len(got) != 4 || binary.BigEndian.Uint32(got) != tc.want {
			t.Errorf("time(%v) = %x, want %08x", tc.t, got, tc.want)
		}
	}

	req := []byte{0, 1, 2, 0xff, '\r', '\n'}
	got := Datagram("echo", req, highPort, now)
	if !bytes.Equal(got, req) {
		t.Errorf("echo = %x, want %x", got, req)
	}
	got[0] = 'X'
	if req[0] != 0 {
		t.Error("echo reply aliases the request")
	}
	if got := Datagram("echo", []byte{}, highPort, now); got == nil || len(got) != 0 {
		t.Errorf("echo of an empty datagram = %#v, want empty non-nil", got)
	}

	if got := Datagram("discard", []byte("x"), highPort, now); got != nil {
		t.Errorf("discard replied %q", got)
	}
	if got := Datagram("qotd", []byte("x"), highPort, now); got != nil {
		t.Errorf("unknown service replied %q", got)
	}

	// chargen: each reply is one line; consecutive replies start one
	// character later (the counter is shared, so find the first line's
	// position in the pattern and follow it).
	first := Datagram("chargen", nil, highPort, now)
	k := -1
	for i := 0; i < 95; i++ {
		if string(first) == wantChargenLine(i) {
			k = i
		}
	}
	if k < 0 {
		t.Fatalf("chargen datagram %q is not a chargen line", first)
	}
	for i := 1; i <= 200; i++ {
		if got, want := string(Datagram("chargen", []byte("?"), highPort, now)), wantChargenLine(k+i); got != want {
			t.Fatalf("chargen datagram %d = %q, want %q", i, got, want)
		}
	}
}

func TestDatagramGuard(t *testing.T) {
	now := time.Now()
	refused := []string{
		"127.0.0.1:7", "127.0.0.1:19", "127.0.0.1:13", "127.0.0.1:37",
		"127.0.0.1:0", "127.0.0.1:1", "127.0.0.1:53", "127.0.0.1:1023",
		"127.0.0.1:2049", // NFS, as OpenBSD inetd
		"[::ffff:127.0.0.1]:7", "[::1]:19", "[::1]:1023",
		"0.0.0.0:40000", "[::]:40000", "255.255.255.255:40000",
		"224.0.0.1:40000", "[ff02::1]:40000", "[::ffff:224.0.0.1]:40000",
	}
	allowed := []string{
		"127.0.0.1:1024", "127.0.0.1:40000", "127.0.0.1:65535",
		"[::1]:40000", "[::ffff:127.0.0.1]:40000", "192.0.2.1:2048",
	}
	for _, name := range []string{"echo", "chargen", "daytime", "time"} {
		for _, a := range refused {
			if got := Datagram(name, []byte("x"), netip.MustParseAddrPort(a), now); got != nil {
				t.Errorf("%s from %s replied %q, want no reply", name, a, got)
			}
		}
		if got := Datagram(name, []byte("x"), netip.AddrPort{}, now); got != nil {
			t.Errorf("%s from an invalid address replied %q", name, got)
		}
		for _, a := range allowed {
			if got := Datagram(name, []byte("x"), netip.MustParseAddrPort(a), now); got == nil {
				t.Errorf("%s from %s: no reply", name, a)
			}
		}
	}
}

// udpServer serves name on a real UDP socket the way the supervisor does:
// read a datagram, ask Datagram, send the reply if any. After each datagram
// it signals handled, so a test knows any reply is already queued at the
// client (loopback delivery is synchronous).
func udpServer(t *testing.T, name string) (addr netip.AddrPort, handled <-chan struct{}) {
	t.Helper()
	pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	h := make(chan struct{}, 16)
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return // closed by cleanup
			}
			if reply := Datagram(name, buf[:n], from, time.Now()); reply != nil {
				if _, err := pc.WriteToUDPAddrPort(reply, from); err != nil {
					t.Errorf("server sendto: %v", err)
				}
			}
			h <- struct{}{}
		}
	}()
	return pc.LocalAddr().(*net.UDPAddr).AddrPort(), h
}

func waitHandled(t *testing.T, h <-chan struct{}) {
	t.Helper()
	select {
	case <-h:
	case <-time.After(waitLimit):
		t.Fatal("server did not handle the datagram")
	}
}

// exchange sends req from c to srv and returns the reply, or nil when none
// was sent.
func exchange(t *testing.T, c *net.UDPConn, srv netip.AddrPort, h <-chan struct{}, req []byte) []byte {
	t.Helper()
	if _, err := c.WriteToUDPAddrPort(req, srv); err != nil {
		t.Fatal(err)
	}
	waitHandled(t, h)
	// Any reply is already in c's receive queue; a short deadline only
	// covers scheduling.
	if err := c.SetReadDeadline(time.Now().Add(200 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65536)
	n, err := c.Read(buf)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n]
}

func TestUDPEndToEnd(t *testing.T) {
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if p := c.LocalAddr().(*net.UDPAddr).Port; p < 1024 {
		t.Fatalf("ephemeral port %d is below 1024", p)
	}

	srv, h := udpServer(t, "echo")
	req := make([]byte, 1400)
	for i := range req {
		req[i] = byte(i * 7)
	}
	if got := exchange(t, c, srv, h, req); !bytes.Equal(got, req) {
		t.Errorf("udp echo = %d bytes, want the %d sent", len(got), len(req))
	}

	srv, h = udpServer(t, "discard")
	if got := exchange(t, c, srv, h, []byte("gone")); got != nil {
		t.Errorf("udp discard replied %q", got)
	}

	srv, h = udpServer(t, "chargen")
	got := exchange(t, c, srv, h, []byte("x"))
	ok := false
	for i := 0; i < 95; i++ {
		ok = ok || string(got) == wantChargenLine(i)
	}
	if !ok {
		t.Errorf("udp chargen = %q, not a chargen line", got)
	}

	srv, h = udpServer(t, "daytime")
	if got := exchange(t, c, srv, h, []byte("x")); !ctimeRE.Match(got) {
		t.Errorf("udp daytime = %q", got)
	}

	srv, h = udpServer(t, "time")
	before := time.Now().Unix()
	got = exchange(t, c, srv, h, []byte("x"))
	after := time.Now().Unix()
	if len(got) != 4 {
		t.Fatalf("udp time = %x", got)
	}
	if v := int64(binary.BigEndian.Uint32(got)); v < before+2208988800 || v > after+2208988800 {
		t.Errorf("udp time = %d, want within [%d, %d]", v, before+2208988800, after+2208988800)
	}
}

// TestUDPLowPortNoReply sends from a real socket bound to a reserved port:
// the server must stay silent, while the same request from a high port is
// answered.
func TestUDPLowPortNoReply(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: binding a UDP source port below 1024")
	}
	var low *net.UDPConn
	var lastErr error
	for p := 1023; p >= 1000 && low == nil; p-- { // bounded: a free low port
		low, lastErr = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p})
	}
	if low == nil {
		t.Fatalf("no free UDP port in 1000-1023 on 127.0.0.1: %v", lastErr)
	}
	defer low.Close()
	high, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer high.Close()

	for _, name := range []string{"echo", "chargen", "daytime", "time"} {
		srv, h := udpServer(t, name)
		if got := exchange(t, low, srv, h, []byte("loop?")); got != nil {
			t.Errorf("%s answered source port %d: %q", name, low.LocalAddr().(*net.UDPAddr).Port, got)
		}
		if got := exchange(t, high, srv, h, []byte("loop?")); got == nil {
			t.Errorf("%s did not answer a high source port", name)
		}
	}
}
