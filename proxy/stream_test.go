package proxy

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The backend begins listening only 2 s after Start: clients that arrive
// meanwhile are held, none is refused, and the backend sees no extra probe
// connection (the probe's connection is handed to the first client).
func TestSlowStartHoldsClients(t *testing.T) {
	be := &fakeBackend{Network: "tcp", Addr: freeAddr(t, "tcp"), Delay: 2 * time.Second, Handle: replyAfterEOF}
	h := startProxy(t, "tcp", Config{Backend: be.Addr, ReadyTimeout: 10 * time.Second}, be)

	const clients = 3
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := dial(t, "tcp", h.addr)
			defer c.Close()
			req := fmt.Sprintf("hello %d", i)
			got, err := request(t, c, req, 15*time.Second)
			if want := fmt.Sprintf("got %d: %s", len(req), req); err != nil || got != want {
				errs <- fmt.Errorf("client %d: got %q, %v; want %q", i, got, err, want)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st := h.srv.Stats()
	if st.BackendStarts != 1 || be.starts.Load() != 1 {
		t.Errorf("Start called %d times (stats %d), want 1", be.starts.Load(), st.BackendStarts)
	}
	if st.Failures != 0 || st.Accepted != clients {
		t.Errorf("stats %+v: want %d accepted, 0 failures", st, clients)
	}
	if n := be.accepted.Load(); n != clients {
		t.Errorf("backend accepted %d connections, want %d (no stray probe connection)", n, clients)
	}
	if n := countLogs(h.logs, "backend ready"); n != 1 {
		t.Errorf("%d 'backend ready' log lines, want 1", n)
	}
}

// A backend that never listens: the waiting clients are closed after
// ReadyTimeout with one log line; the next client calls Start again.
func TestNeverReadyClosesClientsOnce(t *testing.T) {
	be := &fakeBackend{Network: "tcp", Addr: freeAddr(t, "tcp"), Handle: replyAfterEOF,
		Listen: func(start int) bool { return start >= 2 }}
	h := startProxy(t, "tcp", Config{Label: "never", Backend: be.Addr, ReadyTimeout: time.Second}, be)

	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := dial(t, "tcp", h.addr)
			defer c.Close()
			start := time.Now()
			got, err := request(t, c, "x", 10*time.Second)
			// Closed without reply: EOF, or a reset since "x" was never read.
			if got != "" || (err != nil && !errors.Is(err, syscall.ECONNRESET)) {
				t.Errorf("client %d: got %q, %v; want closed without reply", i, got, err)
			}
			if el := time.Since(start); el < 900*time.Millisecond {
				t.Errorf("client %d closed after %v, before ReadyTimeout", i, el)
			}
		}()
	}
	wg.Wait()
	if n := countLogs(h.logs, "backend not ready in time"); n != 1 {
		t.Fatalf("%d 'not ready' log lines, want exactly 1", n)
	}
	e := h.logs.FilterMessageSnippet("not ready in time").All()[0]
	if m := e.ContextMap(); m["job"] != "never" || m["backend"] != be.Addr || m["ready_timeout"] != time.Second {
		t.Errorf("log line fields %v: want job, backend and ready_timeout", m)
	}
	if st := h.srv.Stats(); st.Failures != 3 {
		t.Errorf("failures %d, want 3", st.Failures)
	}

	// The next client triggers a fresh Start, which now listens.
	c := dial(t, "tcp", h.addr)
	defer c.Close()
	if got, err := request(t, c, "again", 10*time.Second); got != "got 5: again" {
		t.Fatalf("after a failed start: got %q, %v", got, err)
	}
	if n := be.starts.Load(); n != 2 {
		t.Errorf("Start called %d times, want 2", n)
	}
	if n := countLogs(h.logs, "backend not ready in time"); n != 1 {
		t.Errorf("%d 'not ready' log lines after recovery, want 1", n)
	}
}

// The client sends its request, shuts down its write side, then reads: it
// gets the whole reply (systemd-socket-proxyd loses it).
func TestHalfCloseFromClient(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			be := &fakeBackend{Network: "tcp", Addr: freeAddr(t, "tcp"), Handle: replyAfterEOF}
			if network == "unix" {
				be.Network, be.Addr = "unix", t.TempDir()+"/backend.sock"
			}
			h := startProxy(t, network, Config{Backend: be.Addr}, be)
			req := strings.Repeat("request ", 10000)
			c := dial(t, network, h.addr)
			defer c.Close()
			got, err := request(t, c, req, 10*time.Second)
			if want := fmt.Sprintf("got %d: %s", len(req), req); got != want {
				t.Fatalf("reply %d bytes (%v), want %d bytes", len(got), err, len(want))
			}
		})
	}
}

// The backend sends a greeting and shuts down its write side; the client
// sees EOF and can still send, and the backend receives it.
func TestHalfCloseFromBackend(t *testing.T) {
	received := make(chan string, 1)
	be := &fakeBackend{Network: "tcp", Addr: freeAddr(t, "tcp"), Handle: func(c net.Conn) {
		defer c.Close()
		io.WriteString(c, "greeting")
		closeWrite(c)
		b, _ := io.ReadAll(c)
		received <- string(b)
	}}
	h := startProxy(t, "tcp", Config{Backend: be.Addr}, be)
	c := dial(t, "tcp", h.addr)
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	greet, err := io.ReadAll(c) // EOF arrives while our write side is open
	if string(greet) != "greeting" || err != nil {
		t.Fatalf("greeting %q, %v", greet, err)
	}
	if _, err := io.WriteString(c, "after your EOF"); err != nil {
		t.Fatalf("write after backend EOF: %v", err)
	}
	closeWrite(c)
	select {
	case got := <-received:
		if got != "after your EOF" {
			t.Fatalf("backend received %q", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("backend received nothing after its half-close")
	}
}

// 64 MiB both ways through the proxy, byte-exact; TCP and Unix paths.
func TestLargeTransfer(t *testing.T) {
	size := 64 << 20
	if testing.Short() {
		size = 8 << 20
	}
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			be := &fakeBackend{Network: network, Addr: freeAddr(t, "tcp"), Handle: echo}
			if network == "unix" {
				be.Addr = t.TempDir() + "/backend.sock"
			}
			h := startProxy(t, network, Config{Backend: be.Addr, IdleTimeout: 30 * time.Second}, be)
			c := dial(t, network, h.addr)
			defer c.Close()
			c.SetDeadline(time.Now().Add(60 * time.Second))

			data := make([]byte, size)
			r := rand.New(rand.NewPCG(1, 2))
			for i := 0; i < len(data); i += 8 {
				v := r.Uint64()
				for j := 0; j < 8; j++ {
					data[i+j] = byte(v >> (8 * j))
				}
			}
			werr := make(chan error, 1)
			go func() {
				_, err := c.Write(data)
				closeWrite(c)
				werr <- err
			}()
			hash := sha256.New()
			n, err := io.Copy(hash, c)
			if err != nil || n != int64(size) {
				t.Fatalf("read %d bytes, %v; want %d", n, err, size)
			}
			if err := <-werr; err != nil {
				t.Fatal(err)
			}
			if want := sha256.Sum256(data); !bytes.Equal(hash.Sum(nil), want[:]) {
				t.Fatal("data corrupted through the proxy")
			}
			if st := h.srv.Stats(); !waitFor(5*time.Second, func() bool {
				st = h.srv.Stats()
				return st.BytesToBackend == uint64(size) && st.BytesToClient == uint64(size)
			}) {
				t.Errorf("byte counters %d/%d, want %d each", st.BytesToBackend, st.BytesToClient, size)
			}
		})
	}
}

// No bytes either way for IdleTimeout: both sides are closed. A connection
// that keeps talking outlives several idle timeouts.
func TestIdleTimeout(t *testing.T) {
	be := &fakeBackend{Network: "tcp", Addr: freeAddr(t, "tcp"), Handle: echo}
	const idle = 300 * time.Millisecond
	h := startProxy(t, "tcp", Config{Backend: be.Addr, IdleTimeout: idle}, be)

	busy := dial(t, "tcp", h.addr)
	defer busy.Close()
	quiet := dial(t, "tcp", h.addr)
	defer quiet.Close()
	quiet.SetDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 2)
	if _, err := quiet.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(quiet, buf); err != nil || string(buf) != "hi" {
		t.Fatalf("echo: %q %v", buf, err)
	}
	last := time.Now()

	// busy exchanges a byte every 50 ms for 4 idle timeouts.
	busy.SetDeadline(time.Now().Add(10 * time.Second))
	for i := 0; i < 24; i++ {
		if _, err := busy.Write([]byte{byte(i)}); err != nil {
			t.Fatalf("busy connection write %d: %v", i, err)
		}
		if _, err := io.ReadFull(busy, buf[:1]); err != nil || buf[0] != byte(i) {
			t.Fatalf("busy connection closed or wrong after %d exchanges: %v", i, err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// By now quiet must have been closed: read gives EOF, no data.
	n, err := quiet.Read(buf)
	if n != 0 || err != io.EOF {
		t.Fatalf("idle connection: read %d, %v; want EOF", n, err)
	}
	if el := time.Since(last); el < idle {
		t.Errorf("closed %v after the last byte, before IdleTimeout", el)
	}
	if st := h.srv.Stats(); st.IdleClosed != 1 {
		t.Errorf("IdleClosed %d, want 1", st.IdleClosed)
	}
}

// MaxConns 1: a second client waits in the kernel backlog (not accepted,
// not refused) and is served once the first one ends.
func TestMaxConnsHoldsInBacklog(t *testing.T) {
	be := &fakeBackend{Network: "tcp", Addr: freeAddr(t, "tcp"), Handle: echo}
	h := startProxy(t, "tcp", Config{Backend: be.Addr, MaxConns: 1}, be)

	first := dial(t, "tcp", h.addr)
	first.SetDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 5)
	first.Write([]byte("first"))
	if _, err := io.ReadFull(first, buf); err != nil || string(buf) != "first" {
		t.Fatalf("first: %q %v", buf, err)
	}

	second := dial(t, "tcp", h.addr) // completes in the kernel backlog
	defer second.Close()
	if _, err := second.Write([]byte("secnd")); err != nil {
		t.Fatal(err)
	}
	second.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if n, err := second.Read(buf); n != 0 || !os.IsTimeout(err) {
		t.Fatalf("second client served while the first holds the only slot: %d, %v", n, err)
	}
	if st := h.srv.Stats(); st.Accepted != 1 || st.Active != 1 {
		t.Fatalf("stats %+v: want 1 accepted, 1 active", st)
	}

	first.Close()
	second.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(second, buf); err != nil || string(buf) != "secnd" {
		t.Fatalf("second after the slot freed: %q %v", buf, err)
	}
	if st := h.srv.Stats(); st.Accepted != 2 || st.Failures != 0 {
		t.Errorf("stats %+v: want 2 accepted, 0 failures", st)
	}
}

// PROXY v1 and v2 headers reach the backend first and carry the client's
// address; Unix clients give UNKNOWN (v1) or LOCAL (v2).
func TestProxyProtocol(t *testing.T) {
	for _, tc := range []struct{ network, version string }{
		{"tcp", "v1"}, {"tcp", "v2"}, {"tcp6", "v1"}, {"tcp6", "v2"}, {"unix", "v1"}, {"unix", "v2"},
	} {
		t.Run(tc.network+"-"+tc.version, func(t *testing.T) {
			headers := make(chan ppHeader, 1)
			be := &fakeBackend{Network: "tcp", Addr: freeAddr(t, "tcp"), Handle: func(c net.Conn) {
				defer c.Close()
				r := bufio.NewReader(c)
				hd, err := parsePP(r)
				if err != nil {
					fmt.Fprintf(c, "error: %v", err)
					return
				}
				headers <- hd
				rest, _ := io.ReadAll(r)
				fmt.Fprintf(c, "payload=%s", rest)
			}}
			h := startProxy(t, tc.network, Config{Backend: be.Addr, ProxyProtocol: tc.version}, be)
			dn := tc.network
			c := dial(t, dn, h.addr)
			defer c.Close()
			got, err := request(t, c, "data", 10*time.Second)
			if got != "payload=data" {
				t.Fatalf("backend said %q (%v)", got, err)
			}
			hd := <-headers
			wantVersion := map[string]int{"v1": 1, "v2": 2}[tc.version]
			if hd.Version != wantVersion {
				t.Errorf("version %d, want %d", hd.Version, wantVersion)
			}
			if tc.network == "unix" {
				if want := map[string]string{"v1": "UNKNOWN", "v2": "LOCAL"}[tc.version]; hd.Command != want {
					t.Errorf("command %q for a Unix client, want %q", hd.Command, want)
				}
				return
			}
			wantProto := map[string]string{"tcp": "TCP4", "tcp6": "TCP6"}[tc.network]
			local := c.LocalAddr().(*net.TCPAddr).AddrPort()
			remote := c.RemoteAddr().(*net.TCPAddr).AddrPort()
			if hd.Command != "PROXY" || hd.Proto != wantProto || hd.Src != local || hd.Dst != remote {
				t.Errorf("header %+v, want PROXY %s src %v dst %v", hd, wantProto, local, remote)
			}
		})
	}
}

// Header construction details: v4-mapped addresses become TCP4, mixed
// families become TCP6; the v2 length field matches the block.
func TestHeaderFamilies(t *testing.T) {
	mapped := &net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.1"), Port: 1234}
	v4 := &net.TCPAddr{IP: net.ParseIP("192.0.2.2").To4(), Port: 80}
	v6 := &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 443}
	if got := string(v1Header(mapped, v4)); got != "PROXY TCP4 192.0.2.1 192.0.2.2 1234 80\r\n" {
		t.Errorf("mapped v1: %q", got)
	}
	if got := string(v1Header(v4, v6)); got != "PROXY TCP6 ::ffff:192.0.2.2 2001:db8::1 80 443\r\n" {
		t.Errorf("mixed v1: %q", got)
	}
	hd, err := parseV2(v2Header(v6, mapped, v2Stream))
	if err != nil || hd.Proto != "TCP6" || hd.Src.Port() != 443 || hd.Dst.Port() != 1234 {
		t.Errorf("v2 mixed: %+v %v", hd, err)
	}
	udp := &net.UDPAddr{IP: net.ParseIP("127.0.0.1"), Port: 53}
	hd, err = parseV2(v2Header(udp, udp, v2Dgram))
	if err != nil || hd.Proto != "UDP4" {
		t.Errorf("v2 dgram: %+v %v", hd, err)
	}
	if len(v2Header(&net.UnixAddr{Name: "@x"}, v4, v2Stream)) != 16 {
		t.Error("v2 LOCAL header must be 16 bytes")
	}
}

// After StopAfterIdle with no connection, Stop is called once; the next
// client starts the backend again.
func TestIdleStop(t *testing.T) {
	be := &fakeBackend{Network: "tcp", Addr: freeAddr(t, "tcp"), Handle: replyAfterEOF}
	h := startProxy(t, "tcp", Config{Backend: be.Addr, StopAfterIdle: 300 * time.Millisecond}, be)
	c := dial(t, "tcp", h.addr)
	if got, _ := request(t, c, "one", 10*time.Second); got != "got 3: one" {
		t.Fatalf("first: %q", got)
	}
	c.Close()
	if !waitFor(5*time.Second, func() bool { return be.stops.Load() > 0 }) {
		t.Fatal("Stop not called after StopAfterIdle")
	}
	time.Sleep(900 * time.Millisecond) // three more idle periods
	if n := be.stops.Load(); n != 1 {
		t.Errorf("Stop called %d times, want 1", n)
	}
	if st := h.srv.Stats(); st.Ready || st.BackendStops != 1 {
		t.Errorf("after idle stop: %+v", st)
	}
	if n := countLogs(h.logs, "backend idle"); n != 1 {
		t.Errorf("%d idle stop log lines, want 1", n)
	}
	c = dial(t, "tcp", h.addr)
	defer c.Close()
	if got, err := request(t, c, "two", 10*time.Second); got != "got 3: two" {
		t.Fatalf("after idle stop: %q %v", got, err)
	}
	if n := be.starts.Load(); n != 2 {
		t.Errorf("Start called %d times, want 2", n)
	}
}

// helperBackend runs the test binary as the backend process (helper mode),
// and reports its exits to the Server like the supervisor does.
type helperBackend struct {
	t     *testing.T
	addr  string
	delay time.Duration
	srv   atomic.Pointer[Server] // set once the Server exists
	exe   string                 // the binary to run (default: this test binary)
	cred  *syscall.Credential    // run it as this user (nil: as the test)
	env   []string               // more environment

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	starts int
}

func (b *helperBackend) Start(env []string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd != nil {
		return nil
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	if b.exe != "" {
		exe = b.exe
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), "GO_WANT_HELPER_PROCESS=1", "HELPER_ADDR="+b.addr,
		"HELPER_READY_DELAY="+b.delay.String())
	cmd.Env = append(append(cmd.Env, b.env...), env...)
	if b.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: b.cred}
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	b.starts++
	b.cmd = cmd
	exited := make(chan struct{})
	b.exited = exited
	go func() {
		cmd.Wait()
		b.mu.Lock()
		b.cmd = nil
		b.mu.Unlock()
		b.srv.Load().BackendExited()
		close(exited)
	}()
	return nil
}

// MainPID implements Backend.
func (b *helperBackend) MainPID() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return 0
	}
	return b.cmd.Process.Pid
}

func (b *helperBackend) startCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.starts
}

// Stop kills the process and waits for it.
func (b *helperBackend) Stop() {
	b.mu.Lock()
	cmd, exited := b.cmd, b.exited
	b.mu.Unlock()
	if cmd != nil {
		cmd.Process.Kill()
		<-exited
	}
}

// Notify: the backend process listens at once but sends READY=1 only after
// a delay; forwarding starts only then. After the process exits, the next
// client starts a new one.
func TestNotifyReadinessHelperProcess(t *testing.T) {
	be := &helperBackend{t: t, addr: freeAddr(t, "tcp"), delay: 700 * time.Millisecond}
	h := startProxy(t, "tcp", Config{Backend: be.addr, Notify: true, ReadyTimeout: 10 * time.Second}, be)
	be.srv.Store(h.srv)
	defer be.Stop()

	ask := func() string {
		c := dial(t, "tcp", h.addr)
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "ping\n")
		b, _ := io.ReadAll(c)
		return string(b)
	}
	got := ask()
	if !strings.HasPrefix(got, "ready=true ") || !strings.HasSuffix(got, " ping\n") {
		t.Fatalf("reply %q: want ready=true (connected only after READY=1)", got)
	}
	pid1 := strings.Fields(got)[1]
	if env := h.srv.NotifySocket(); env == "" {
		t.Fatal("no notify socket")
	}

	be.Stop() // the process dies; the helper reports BackendExited
	if h.srv.Stats().Ready {
		t.Fatal("still ready after BackendExited")
	}
	got = ask()
	if !strings.HasPrefix(got, "ready=true ") || strings.Fields(got)[1] == pid1 {
		t.Fatalf("after exit: reply %q from the old process or before READY=1", got)
	}
	if st := h.srv.Stats(); st.BackendStarts != 2 || be.startCount() != 2 {
		t.Errorf("starts %d (process starts %d), want 2", st.BackendStarts, be.startCount())
	}
	if n := countLogs(h.logs, "backend ready"); n != 2 {
		t.Errorf("%d 'backend ready' lines, want 2", n)
	}
}

// Cancelling Run closes open and waiting connections and returns.
func TestShutdownClosesConnections(t *testing.T) {
	be := &fakeBackend{Network: "tcp", Addr: freeAddr(t, "tcp"), Handle: echo}
	h := startProxy(t, "tcp", Config{Backend: be.Addr}, be)
	c := dial(t, "tcp", h.addr)
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("x"))
	buf := make([]byte, 1)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	h.stop()
	if n, err := c.Read(buf); n != 0 || err == nil {
		t.Fatalf("connection still open after Run returned: %d %v", n, err)
	}
	if _, err := net.DialTimeout("tcp", h.addr, time.Second); err == nil {
		t.Error("listener still accepting after Run returned")
	}
}
