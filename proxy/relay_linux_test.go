//go:build linux && cgo

package proxy

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"
)

func openFds(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

// TestRelayForwards: on Linux the stream tests above run on the relay; this
// checks that they really do (no silent fallback to goroutines), over TCP
// and Unix backends, with many connections at once, and that every
// connection's fds and pipes are closed when it ends and the relay's own
// when Run returns.
func TestRelayForwards(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			before := openFds(t)
			be := &fakeBackend{Network: "tcp", Addr: freeAddr(t, "tcp"), Handle: echo}
			if network == "unix" {
				be.Network, be.Addr = "unix", t.TempDir()+"/backend.sock"
			}
			h := startProxy(t, "tcp", Config{Backend: be.Addr}, be)
			h.srv.mu.Lock()
			started := h.srv.relay != nil
			h.srv.mu.Unlock()
			if started {
				t.Fatal("relay threads started before the first connection")
			}
			const conns, rounds = 40, 25
			errs := make(chan error, conns)
			for i := 0; i < conns; i++ {
				go func(i int) {
					c, err := net.DialTimeout("tcp", h.addr, 5*time.Second)
					if err != nil {
						errs <- err
						return
					}
					defer c.Close()
					c.SetDeadline(time.Now().Add(20 * time.Second))
					for r := 0; r < rounds; r++ {
						msg := []byte(fmt.Sprintf("conn %d round %d", i, r))
						if _, err := c.Write(msg); err != nil {
							errs <- err
							return
						}
						got := make([]byte, len(msg))
						if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
							errs <- fmt.Errorf("conn %d round %d: %q, %v", i, r, got, err)
							return
						}
					}
					errs <- nil
				}(i)
			}
			for i := 0; i < conns; i++ {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
			if !waitFor(5*time.Second, func() bool { return h.srv.Stats().Active == 0 }) {
				t.Fatalf("%d connections still active", h.srv.Stats().Active)
			}
			if n := h.srv.relayed.Load(); n != conns {
				t.Fatalf("relay forwarded %d connections, want %d", n, conns)
			}
			st := h.srv.Stats()
			want := uint64(0)
			for i := 0; i < conns; i++ {
				for r := 0; r < rounds; r++ {
					want += uint64(len(fmt.Sprintf("conn %d round %d", i, r)))
				}
			}
			if st.BytesToBackend != want || st.BytesToClient != want {
				t.Errorf("bytes to backend %d, to client %d; want %d each", st.BytesToBackend, st.BytesToClient, want)
			}
			h.stop()
			be.Stop()
			if !waitFor(5*time.Second, func() bool { return openFds(t) <= before }) {
				t.Errorf("%d fds open after Run returned, %d before", openFds(t), before)
			}
		})
	}
}

// TestRelayCloseOne: closing one relayed connection (what Run does to each
// at shutdown) ends that one only; the others on the same loops go on.
func TestRelayCloseOne(t *testing.T) {
	be := &fakeBackend{Network: "tcp", Addr: freeAddr(t, "tcp"), Handle: echo}
	h := startProxy(t, "tcp", Config{Backend: be.Addr}, be)
	const n = 8
	clients := make(map[string]net.Conn)
	buf := make([]byte, 2)
	for i := 0; i < n; i++ {
		c := dial(t, "tcp", h.addr)
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write([]byte("hi")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
		clients[c.LocalAddr().String()] = c
	}
	if !waitFor(5*time.Second, func() bool { return h.srv.Stats().Active == n }) {
		t.Fatalf("active %d, want %d", h.srv.Stats().Active, n)
	}
	h.srv.mu.Lock()
	var victim *fwd
	for f := range h.srv.conns {
		victim = f
		break
	}
	h.srv.mu.Unlock()
	victim.closeBoth()
	gone := victim.client.RemoteAddr().String()
	for addr, c := range clients {
		if addr == gone {
			if k, err := c.Read(buf); k != 0 || err != io.EOF {
				t.Errorf("closed connection: read %d, %v; want EOF", k, err)
			}
			continue
		}
		if _, err := c.Write([]byte("ok")); err != nil {
			t.Fatalf("%s: %v", addr, err)
		}
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ok" {
			t.Fatalf("%s after another connection was closed: %q, %v", addr, buf, err)
		}
	}
	if !waitFor(5*time.Second, func() bool { return h.srv.Stats().Active == n-1 }) {
		t.Fatalf("active %d, want %d", h.srv.Stats().Active, n-1)
	}
	if got := h.srv.relayed.Load(); got != 1 {
		t.Errorf("relay finished %d connections, want the closed one", got)
	}
}

// TestRelayShared: proxy jobs share one relay (one thread per CPU in all),
// held while some Server has used it.
func TestRelayShared(t *testing.T) {
	var hs []*harness
	for i := 0; i < 2; i++ {
		be := &fakeBackend{Network: "tcp", Addr: freeAddr(t, "tcp"), Handle: echo}
		h := startProxy(t, "tcp", Config{Backend: be.Addr}, be)
		c := dial(t, "tcp", h.addr)
		defer c.Close()
		if got, err := request(t, c, "x", 5*time.Second); err != nil || got != "x" {
			t.Fatalf("echo %q, %v", got, err)
		}
		hs = append(hs, h)
	}
	relayOf := func(h *harness) *relay {
		h.srv.mu.Lock()
		defer h.srv.mu.Unlock()
		return h.srv.relay
	}
	if relayOf(hs[0]) == nil || relayOf(hs[0]) != relayOf(hs[1]) {
		t.Fatalf("relays %p and %p, want one shared", relayOf(hs[0]), relayOf(hs[1]))
	}
	hs[0].stop()
	sharedRelay.mu.Lock()
	refs, r := sharedRelay.refs, sharedRelay.r
	sharedRelay.mu.Unlock()
	if refs != 1 || r == nil {
		t.Fatalf("after one Server stopped: %d references, relay %p; want 1 and the relay", refs, r)
	}
	hs[1].stop()
	sharedRelay.mu.Lock()
	refs, r = sharedRelay.refs, sharedRelay.r
	sharedRelay.mu.Unlock()
	if refs != 0 || r != nil {
		t.Fatalf("after both stopped: %d references, relay %p; want none", refs, r)
	}
}

// settleFds waits until no fd closes on its own any more: earlier tests'
// splice pipes wait in Go's pool until a collection closes them, and one
// closing between limitFor and the connection would leave a spare fd.
func settleFds(t *testing.T) {
	t.Helper()
	prev := -1
	for i := 0; i < 100; i++ {
		runtime.GC()
		n := openFds(t)
		if n == prev {
			return
		}
		prev = n
		time.Sleep(20 * time.Millisecond)
	}
}

// limitFor returns the RLIMIT_NOFILE value that leaves exactly n fd numbers
// free (the limit bounds fd numbers, and the table may have holes).
func limitFor(t *testing.T, n int) uint64 {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip(err)
	}
	open := map[int]bool{}
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil {
			open[fd] = true
		}
	}
	// The listing holds the fd that read it, closed since: one free number
	// more than the listing shows.
	fd := 0
	for free := 1; ; fd++ {
		if !open[fd] {
			if free == n {
				return uint64(fd)
			}
			free++
		}
	}
}

// TestRelayOutOfFds: when the fds for a connection's pipes cannot be had
// (EMFILE), the connection is copied with goroutines instead, works, and
// the failure is logged once (at most every 10 s).
func TestRelayOutOfFds(t *testing.T) {
	// The backend is a process of its own, so that its sockets do not
	// count against this process's limit.
	addr := freeAddr(t, "tcp")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), "GO_WANT_HELPER_PROCESS=1", "HELPER_MODE=echo", "HELPER_ADDR="+addr)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	if !waitFor(5*time.Second, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}) {
		t.Fatal("echo helper not listening")
	}
	h := startProxy(t, "tcp", Config{Backend: addr}, &fakeBackend{})
	exchange := func(i int) error {
		c, err := net.DialTimeout("tcp", h.addr, 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		msg := fmt.Sprintf("exchange %d", i)
		if _, err := io.WriteString(c, msg); err != nil {
			return err
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c, got); err != nil || string(got) != msg {
			return fmt.Errorf("echo %q, %v", got, err)
		}
		return nil
	}
	if err := exchange(0); err != nil { // starts the relay and its fds
		t.Fatal(err)
	}
	if !waitFor(5*time.Second, func() bool { return h.srv.Stats().Active == 0 }) {
		t.Fatal("first connection still active")
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skip(err)
	}
	defer syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	settleFds(t)
	base := openFds(t)
	// Per connection this process needs: the client's socket, the proxy's
	// accepted one and its backend socket (3), two duplicates for the relay
	// (5) and two pipes (9). Limits of 5 to 8 fds above the current count
	// make the first or the second pipe fail.
	for extra := 5; extra <= 8; extra++ {
		low := lim
		settleFds(t)
		low.Cur = limitFor(t, extra)
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
			t.Skipf("setrlimit: %v", err)
		}
		err := exchange(extra)
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
		if err != nil {
			t.Fatalf("limit +%d: %v", extra, err)
		}
		// The goroutine copy's splice pipes wait in Go's pool until a
		// collection closes them.
		if !waitFor(5*time.Second, func() bool { runtime.GC(); return h.srv.Stats().Active == 0 && openFds(t) <= base }) {
			t.Fatalf("limit +%d: %d fds open, %d before", extra, openFds(t), base)
		}
	}
	if n := h.srv.relayed.Load(); n != 1 {
		t.Errorf("relay forwarded %d connections, want only the first", n)
	}
	if n := countLogs(h.logs, "proxy relay: cannot take a connection over"); n != 1 {
		t.Errorf("%d hand-over failure lines, want 1", n)
	}
}
