package proxy

import (
	"encoding/binary"
	"testing"
	"time"
)

// TestBulkThenReply: rounds of a client that streams 1 to 7 MiB, shuts down
// its write side and reads the backend's byte count. Every byte reaches the
// backend, the client's EOF reaches it after the last byte, and the reply
// comes back after it: no round may end early or hang until the idle
// timeout.
func TestBulkThenReply(t *testing.T) {
	backend := benchServerTB(t, sink)
	h := startProxy(t, "tcp", Config{Backend: backend, IdleTimeout: time.Minute}, &fakeBackend{})
	chunk := make([]byte, 1<<20)
	for i := 0; i < 60; i++ {
		c := dial(t, "tcp", h.addr)
		c.SetDeadline(time.Now().Add(20 * time.Second))
		n := 1 + i%7
		for j := 0; j < n; j++ {
			if _, err := c.Write(chunk); err != nil {
				t.Fatalf("round %d: write: %v", i, err)
			}
		}
		closeWrite(c)
		var got int64
		if err := binary.Read(c, binary.BigEndian, &got); err != nil || got != int64(n)<<20 {
			t.Fatalf("round %d: backend counted %d (%v), want %d", i, got, err, n<<20)
		}
		c.Close()
	}
}
