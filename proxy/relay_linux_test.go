//go:build linux && cgo

package proxy

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
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
