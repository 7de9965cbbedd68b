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

// targets returns the backend address itself ("direct") and a proxy in
// front of it ("proxy"), so results read as a ratio.
func targets(b *testing.B, backend string) map[string]string {
	h := startProxy(b, "tcp", Config{Backend: backend, IdleTimeout: time.Minute}, &fakeBackend{})
	return map[string]string{"direct": backend, "proxy": h.addr}
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
	for _, name := range []string{"direct", "proxy"} {
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
	for _, name := range []string{"direct", "proxy"} {
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
	for _, name := range []string{"direct", "proxy"} {
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
