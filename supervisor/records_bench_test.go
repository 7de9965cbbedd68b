//go:build linux

package supervisor

import (
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/sys/unix"

	"github.com/sockd/sockd/internal/linelog"
	"github.com/sockd/sockd/job"
	"github.com/sockd/sockd/listener"
	"github.com/sockd/sockd/spawn"
)

// BenchmarkRecordChildEnd is one connection record from the accept to the
// line in a log file: what --log-connections adds to each connection of
// an inetd-nowait job (console format, as sockd writes to a file; the
// write is about half of it).
func BenchmarkRecordChildEnd(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "log"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	s := &Supervisor{log: zap.NewNop(), connLog: linelog.New(zapcore.Lock(f), linelog.Console, zapcore.InfoLevel)}
	rj := &runJob{s: s, def: &job.Job{Label: "bench.job"}}
	sk := &listener.Socket{Addr: "127.0.0.1:8080"}
	peer := &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: 43210}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := newConnRecord(sk, -1, peer)
		rj.recordChildEnd(r, 12345, spawn.ExitStatus{})
	}
}
