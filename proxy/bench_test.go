package proxy

import (
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"
)

// benchServer listens on loopback and serves each connection with h.
func benchServer(b *testing.B, h handler) string { return benchServerTB(b, h) }

func benchServerTB(b testing.TB, h handler) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go h(c)
		}
	}()
	return ln.Addr().String()
}

// targets returns the backend address itself ("direct"), a proxy in front
// of it ("proxy": the relay where there is one) and one that copies with
// goroutines ("goroutines"), so results read as ratios.
//
// In this process the client and the backend are goroutines that share
// the Go runtime with the goroutine copy: a request then moves from
// goroutine to goroutine on the same few threads, often without a thread
// going to sleep, while the relay's thread is one more thread to wake per
// hop. So here "goroutines" is faster at small requests (keepalive:
// about 30 vs 120 µs on the 2-CPU VM). With client and backend as processes
// of their own, as deployed, every hop wakes a thread either way and the
// relay is the faster one (bench/cmd/compare -groups proxy: echo p50 at
// C=1 near systemd-socket-proxyd's, against 1.1-1.25x its with goroutines).
func targets(b *testing.B, backend string) map[string]string {
	h := startProxy(b, "tcp", Config{Backend: backend, IdleTimeout: time.Minute}, &fakeBackend{})
	g := startProxy(b, "tcp", Config{Backend: backend, IdleTimeout: time.Minute}, &fakeBackend{})
	g.srv.noRelay = true
	return map[string]string{"direct": backend, "proxy": h.addr, "goroutines": g.addr}
}

// sink reads to EOF with a 256 KiB buffer and answers the byte count.
func sink(c net.Conn) {
	defer c.Close()
	n, _ := io.CopyBuffer(io.Discard, struct{ io.Reader }{c}, make([]byte, 256<<10))
	binary.Write(c, binary.BigEndian, n)
}

// BenchmarkProxyBulk: one connection, 1 MiB writes, client -> backend.
// Compare MB/s of direct and proxy.
func BenchmarkProxyBulk(b *testing.B) {
	backend := benchServer(b, sink)
	tg := targets(b, backend)
	chunk := make([]byte, 1<<20)
	for _, name := range []string{"direct", "proxy", "goroutines"} {
		b.Run(name, func(b *testing.B) {
			c := dial(b, "tcp", tg[name])
			defer c.Close()
			b.SetBytes(int64(len(chunk)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := c.Write(chunk); err != nil {
					b.Fatal(err)
				}
			}
			closeWrite(c)
			var n int64
			if err := binary.Read(c, binary.BigEndian, &n); err != nil || n != int64(b.N)*int64(len(chunk)) {
				b.Fatalf("backend got %d bytes (%v), want %d", n, err, int64(b.N)*int64(len(chunk)))
			}
		})
	}
}

// BenchmarkProxyRequest: small request/response latency, on one persistent
// connection ("keepalive") and with a new connection per request ("conn").
func BenchmarkProxyRequest(b *testing.B) {
	backend := benchServer(b, func(c net.Conn) {
		defer c.Close()
		buf := make([]byte, 64)
		for {
			if _, err := io.ReadFull(c, buf); err != nil {
				return
			}
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	})
	tg := targets(b, backend)
	req := make([]byte, 64)
	for _, name := range []string{"direct", "proxy", "goroutines"} {
		b.Run("keepalive/"+name, func(b *testing.B) {
			c := dial(b, "tcp", tg[name])
			defer c.Close()
			buf := make([]byte, 64)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				c.Write(req)
				if _, err := io.ReadFull(c, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	for _, name := range []string{"direct", "proxy", "goroutines"} {
		b.Run("conn/"+name, func(b *testing.B) {
			buf := make([]byte, 64)
			for i := 0; i < b.N; i++ {
				c := dial(b, "tcp", tg[name])
				c.Write(req)
				if _, err := io.ReadFull(c, buf); err != nil {
					b.Fatal(err)
				}
				c.Close()
			}
		})
	}
}
