package proxy

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// Several UDP clients at once: each gets its own replies (the backend
// echoes with a prefix); flows expire after IdleTimeout. The first
// datagrams arrive before the backend runs and are held, not lost.
func TestUDPFlows(t *testing.T) {
	be := &fakeBackend{Addr: freeAddr(t, "udp"), UDP: true}
	h := startProxy(t, "udp", Config{Backend: be.Addr, IdleTimeout: 400 * time.Millisecond}, be)

	const clients, msgs = 5, 4
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("udp", h.addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			buf := make([]byte, 1500)
			for m := range msgs {
				msg := fmt.Sprintf("client %d message %d", i, m)
				c.SetDeadline(time.Now().Add(5 * time.Second))
				if _, err := c.Write([]byte(msg)); err != nil {
					t.Errorf("client %d: %v", i, err)
					return
				}
				n, err := c.Read(buf)
				if got := string(buf[:n]); err != nil || got != "echo:"+msg {
					t.Errorf("client %d: got %q, %v; want %q", i, got, err, "echo:"+msg)
					return
				}
			}
		}()
	}
	wg.Wait()
	st := h.srv.Stats()
	if st.FlowsCreated != clients || st.Flows != clients {
		t.Errorf("flows %d open, %d created; want %d", st.Flows, st.FlowsCreated, clients)
	}
	if be.starts.Load() != 1 {
		t.Errorf("Start called %d times, want 1", be.starts.Load())
	}
	if !waitFor(5*time.Second, func() bool { return h.srv.Stats().Flows == 0 }) {
		t.Fatalf("flows did not expire: %+v", h.srv.Stats())
	}
	if st := h.srv.Stats(); st.IdleClosed != clients {
		t.Errorf("IdleClosed %d, want %d", st.IdleClosed, clients)
	}
}

// PROXY v2 over UDP: every datagram to the backend starts with a DGRAM
// header naming the client.
func TestUDPProxyProtocolV2(t *testing.T) {
	backend, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer backend.Close()
	go func() {
		buf := make([]byte, 65536)
		for {
			n, a, err := backend.ReadFrom(buf)
			if err != nil {
				return
			}
			p := buf[:n]
			reply := "bad header"
			if len(p) >= 16 {
				hl := 16 + int(p[14])<<8 | int(p[15])
				if hl <= len(p) {
					if hd, err := parseV2(p[:hl]); err == nil {
						reply = fmt.Sprintf("%s %s %s", hd.Proto, hd.Src, p[hl:])
					}
				}
			}
			backend.WriteTo([]byte(reply), a)
		}
	}()
	be := &fakeBackend{} // external backend: Start does nothing
	h := startProxy(t, "udp", Config{Backend: backend.LocalAddr().String(), ProxyProtocol: "v2"}, be)
	c, err := net.Dial("udp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 1500)
	for i := range 3 {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write([]byte(fmt.Sprint("d", i)))
		n, err := c.Read(buf)
		want := fmt.Sprintf("UDP4 %s d%d", c.LocalAddr(), i)
		if got := string(buf[:n]); err != nil || got != want {
			t.Fatalf("datagram %d: got %q, %v; want %q", i, got, err, want)
		}
	}
}

func TestNewRejects(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	be := &fakeBackend{}
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Backend: "/run/x.sock"}, "need a host:port"},
		{Config{Backend: "127.0.0.1:1", ProxyProtocol: "v1"}, "v1 cannot describe UDP"},
		{Config{Backend: "127.0.0.1:1", ProxyProtocol: "v3"}, "unknown PROXY"},
		{Config{Backend: "no-port"}, "want host:port"},
	} {
		_, err := New(tc.cfg, nil, []net.PacketConn{pc}, be, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.cfg, err, tc.want)
		}
	}
}
