package proxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/sockd/sockd/internal/freeport"
)

// TestMain turns the test binary into a backend process when asked
// (the os/exec helper-process pattern).
func TestMain(m *testing.M) {
	if os.Getenv("GO_WANT_HELPER_PROCESS") == "1" {
		os.Exit(helperMain())
	}
	os.Exit(m.Run())
}

// helperMain is the "notify backend": it listens on HELPER_ADDR at once,
// sends READY=1 to $NOTIFY_SOCKET after HELPER_READY_DELAY and answers each
// line with "ready=<was READY=1 sent before this connection was accepted> <line>".
//
// With HELPER_MODE=echo it is a plain echo server on HELPER_ADDR instead.
func helperMain() int {
	if os.Getenv("HELPER_MODE") == "notify-send" {
		return notifySend()
	}
	ln, err := net.Listen("tcp", os.Getenv("HELPER_ADDR"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper: listen:", err)
		return 2
	}
	if os.Getenv("HELPER_MODE") == "echo" {
		for {
			c, err := ln.Accept()
			if err != nil {
				return 4
			}
			go echo(c)
		}
	}
	delay, _ := time.ParseDuration(os.Getenv("HELPER_READY_DELAY"))
	var readySent atomic.Bool
	go func() {
		time.Sleep(delay)
		c, err := net.Dial("unixgram", os.Getenv("NOTIFY_SOCKET"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "helper: notify:", err)
			os.Exit(3)
		}
		readySent.Store(true)
		if os.Getenv("HELPER_NOTIFY_VIA_CHILD") == "1" {
			// READY=1 from a child of the backend, as systemd-notify sends it.
			c.Close()
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "HELPER_MODE=notify-send", "HELPER_MSG=READY=1")
			cmd.Stderr = os.Stderr
			if err := cmd.Run(); err != nil {
				os.Exit(3)
			}
			return
		}
		c.Write([]byte("STATUS=serving\nREADY=1\n"))
		c.Close()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			return 4
		}
		ready := readySent.Load()
		go func() {
			defer c.Close()
			line, _ := bufio.NewReader(c).ReadString('\n')
			fmt.Fprintf(c, "ready=%t pid=%d %s", ready, os.Getpid(), line)
		}()
	}
}

// notifySend sends HELPER_MSG to $NOTIFY_SOCKET once: exit 0 when sent,
// 5 when the send failed (the error on stderr). Like systemd-notify's
// barrier, it passes a pipe's write end along and waits (at most 5 s)
// until the receiver closed it, so that it is still alive when the
// receiver looks at who sent the datagram.
func notifySend() int {
	if err := sendWithBarrier(os.Getenv("NOTIFY_SOCKET"), os.Getenv("HELPER_MSG")); err != nil {
		fmt.Fprintln(os.Stderr, "helper: notify-send:", err)
		return 5
	}
	return 0
}

func sendWithBarrier(path, msg string) error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		w.Close()
		return err
	}
	err = syscall.Sendmsg(fd, []byte(msg), syscall.UnixRights(int(w.Fd())), &syscall.SockaddrUnix{Name: path}, 0)
	syscall.Close(fd)
	w.Close()
	if err != nil {
		return err
	}
	r.SetReadDeadline(time.Now().Add(5 * time.Second))
	io.Copy(io.Discard, r)
	return nil
}

// handler serves one backend connection.
type handler func(c net.Conn)

// plainCopy copies without splice (the wrappers hide ReadFrom/WriteTo), so
// that splice(2) calls seen by strace come from the proxy only.
func plainCopy(dst io.Writer, src io.Reader) (int64, error) {
	return io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, make([]byte, 64<<10))
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}

// echo copies back what it reads, then shuts down its write side at EOF.
func echo(c net.Conn) {
	defer c.Close()
	plainCopy(c, c)
	closeWrite(c)
	io.Copy(io.Discard, c)
}

// replyAfterEOF reads the whole request, then answers "got N: REQUEST".
func replyAfterEOF(c net.Conn) {
	defer c.Close()
	b, _ := io.ReadAll(c)
	fmt.Fprintf(c, "got %d: %s", len(b), b)
}

// fakeBackend is an in-process backend: Start makes it listen (after
// Delay, unless Listen says no for this start), Stop closes the listener.
type fakeBackend struct {
	Network, Addr string
	Delay         time.Duration
	Listen        func(start int) bool // nil: always
	Handle        handler
	UDP           bool // listen on UDP instead and echo with prefix "echo:"

	mu        sync.Mutex
	listening bool
	ln        io.Closer
	gen       int
	starts    atomic.Int32
	stops     atomic.Int32
	accepted  atomic.Int32
	env       []string
}

func (b *fakeBackend) Start(env []string) error {
	n := int(b.starts.Add(1))
	b.mu.Lock()
	defer b.mu.Unlock()
	b.env = env
	if b.Addr == "" { // an external backend: nothing to start
		return nil
	}
	if b.listening || (b.Listen != nil && !b.Listen(n)) {
		return nil
	}
	b.listening = true
	gen := b.gen
	go func() {
		time.Sleep(b.Delay)
		b.mu.Lock()
		defer b.mu.Unlock()
		if gen != b.gen {
			return
		}
		if b.UDP {
			pc, err := net.ListenPacket("udp", b.Addr)
			if err != nil {
				panic(err)
			}
			b.ln = pc
			go udpEcho(pc)
			return
		}
		ln, err := net.Listen(b.Network, b.Addr)
		if err != nil {
			panic(err)
		}
		b.ln = ln
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				b.accepted.Add(1)
				go b.Handle(c)
			}
		}()
	}()
	return nil
}

// MainPID implements Backend: an in-process backend has no process of
// its own (sd_notify datagrams are refused).
func (b *fakeBackend) MainPID() int { return 0 }

func (b *fakeBackend) Stop() {
	b.stops.Add(1)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.gen++
	b.listening = false
	if b.ln != nil {
		b.ln.Close()
		b.ln = nil
	}
}

func udpEcho(pc net.PacketConn) {
	buf := make([]byte, 65536)
	for {
		n, a, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		pc.WriteTo(append([]byte("echo:"), buf[:n]...), a)
	}
}

// freeAddr returns a loopback TCP (or UDP) address nobody listens on.
func freeAddr(t testing.TB, network string) string {
	t.Helper()
	return "127.0.0.1:" + strconv.Itoa(freeport.Port(t, network))
}

type harness struct {
	srv  *Server
	addr string // the proxy's public address
	logs *observer.ObservedLogs
	stop func() // cancels Run and waits for it
}

// startProxy runs a Server on a fresh loopback TCP listener (network "tcp"),
// a Unix listener ("unix") or a UDP socket ("udp").
func startProxy(t testing.TB, network string, cfg Config, be Backend) *harness {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	var lns []net.Listener
	var pcs []net.PacketConn
	var addr string
	switch network {
	case "tcp", "tcp6":
		host := "127.0.0.1:0"
		if network == "tcp6" {
			host = "[::1]:0"
		}
		ln, err := net.Listen(network, host)
		if err != nil {
			t.Skipf("no %s loopback: %v", network, err)
		}
		lns, addr = append(lns, ln), ln.Addr().String()
	case "unix":
		addr = t.TempDir() + "/public.sock"
		ln, err := net.Listen("unix", addr)
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
	case "udp":
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		pcs, addr = append(pcs, pc), pc.LocalAddr().String()
	}
	if cfg.Label == "" {
		cfg.Label = "test.proxy"
	}
	srv, err := New(cfg, lns, pcs, be, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	var once sync.Once
	h := &harness{srv: srv, addr: addr, logs: logs}
	h.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("Run did not return within 10s of cancel")
			}
		})
	}
	t.Cleanup(h.stop)
	if cfg.Notify {
		// Run creates the notify socket; wait for it (bounded).
		for i := 0; i < 500 && srv.NotifySocket() == ""; i++ {
			time.Sleep(2 * time.Millisecond)
		}
	}
	return h
}

func dial(t testing.TB, network, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s %s: %v", network, addr, err)
	}
	return c
}

// request writes req, shuts down the write side and reads the reply to EOF.
func request(t testing.TB, c net.Conn, req string, timeout time.Duration) (string, error) {
	t.Helper()
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c, req); err != nil {
		return "", err
	}
	closeWrite(c)
	b, err := io.ReadAll(c)
	return string(b), err
}

// waitFor polls cond every 10 ms for at most d.
func waitFor(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

func countLogs(logs *observer.ObservedLogs, prefix string) int {
	n := 0
	for _, e := range logs.All() {
		if strings.HasPrefix(e.Message, prefix) {
			n++
		}
	}
	return n
}

// ppHeader is a parsed PROXY protocol header.
type ppHeader struct {
	Version  int
	Command  string // "PROXY", "LOCAL" (v2), "UNKNOWN" (v1)
	Proto    string // "TCP4", "TCP6", "UDP4", "UDP6", ""
	Src, Dst netip.AddrPort
}

var ppV2Sig = []byte("\r\n\r\n\x00\r\nQUIT\n")

// parsePP reads one PROXY header (v1 or v2) from r, written from the haproxy
// spec (proxy-protocol.txt) independently of the code under test.
func parsePP(r *bufio.Reader) (ppHeader, error) {
	var h ppHeader
	sig, err := r.Peek(12)
	if err != nil {
		return h, fmt.Errorf("peek: %w", err)
	}
	if bytes.Equal(sig, ppV2Sig) {
		fixed := make([]byte, 16)
		if _, err := io.ReadFull(r, fixed); err != nil {
			return h, err
		}
		body := make([]byte, binary.BigEndian.Uint16(fixed[14:16]))
		if _, err := io.ReadFull(r, body); err != nil {
			return h, err
		}
		return parseV2(append(fixed, body...))
	}
	if string(sig[:6]) != "PROXY " {
		return h, fmt.Errorf("no PROXY header: %q", sig)
	}
	line, err := r.ReadString('\n')
	if err != nil || len(line) > 107 || !strings.HasSuffix(line, "\r\n") {
		return h, fmt.Errorf("bad v1 line %q: %v", line, err)
	}
	f := strings.Fields(strings.TrimSuffix(line, "\r\n"))
	h.Version = 1
	if len(f) == 2 && f[1] == "UNKNOWN" {
		h.Command = "UNKNOWN"
		return h, nil
	}
	if len(f) != 6 || (f[1] != "TCP4" && f[1] != "TCP6") {
		return h, fmt.Errorf("bad v1 fields %q", line)
	}
	h.Command, h.Proto = "PROXY", f[1]
	src, err1 := netip.ParseAddr(f[2])
	dst, err2 := netip.ParseAddr(f[3])
	sp, err3 := strconv.ParseUint(f[4], 10, 16)
	dp, err4 := strconv.ParseUint(f[5], 10, 16)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return h, fmt.Errorf("bad v1 %q: %w", line, err)
	}
	if (f[1] == "TCP4") != src.Is4() || (f[1] == "TCP4") != dst.Is4() {
		return h, fmt.Errorf("v1 family %s does not match addresses in %q", f[1], line)
	}
	h.Src, h.Dst = netip.AddrPortFrom(src, uint16(sp)), netip.AddrPortFrom(dst, uint16(dp))
	return h, nil
}

// parseV2 parses a complete v2 header (16 bytes plus its address block).
func parseV2(b []byte) (ppHeader, error) {
	var h ppHeader
	if len(b) < 16 || !bytes.Equal(b[:12], ppV2Sig) {
		return h, errors.New("no v2 signature")
	}
	if b[12]>>4 != 2 {
		return h, fmt.Errorf("v2 version nibble %d", b[12]>>4)
	}
	h.Version = 2
	n := int(binary.BigEndian.Uint16(b[14:16]))
	if len(b) != 16+n {
		return h, fmt.Errorf("v2 length %d, have %d", n, len(b)-16)
	}
	body := b[16:]
	switch b[12] & 0xF {
	case 0:
		h.Command = "LOCAL"
		return h, nil
	case 1:
		h.Command = "PROXY"
	default:
		return h, fmt.Errorf("v2 command %d", b[12]&0xF)
	}
	var t string
	switch b[13] & 0xF {
	case 1:
		t = "TCP"
	case 2:
		t = "UDP"
	default:
		return h, fmt.Errorf("v2 transport %d", b[13]&0xF)
	}
	switch b[13] >> 4 {
	case 1:
		if n < 12 {
			return h, errors.New("short v2 inet block")
		}
		h.Proto = t + "4"
		h.Src = netip.AddrPortFrom(netip.AddrFrom4([4]byte(body[0:4])), binary.BigEndian.Uint16(body[8:10]))
		h.Dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte(body[4:8])), binary.BigEndian.Uint16(body[10:12]))
	case 2:
		if n < 36 {
			return h, errors.New("short v2 inet6 block")
		}
		h.Proto = t + "6"
		h.Src = netip.AddrPortFrom(netip.AddrFrom16([16]byte(body[0:16])), binary.BigEndian.Uint16(body[32:34]))
		h.Dst = netip.AddrPortFrom(netip.AddrFrom16([16]byte(body[16:32])), binary.BigEndian.Uint16(body[34:36]))
	default:
		return h, fmt.Errorf("v2 family %d", b[13]>>4)
	}
	return h, nil
}
