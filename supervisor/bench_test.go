//go:build linux

package supervisor

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/sockd/sockd/job"
	"github.com/sockd/sockd/listener"
)

func inetdJob(b testing.TB, port int, prog ...string) *job.Job {
	b.Helper()
	args := ""
	for _, a := range prog {
		args += "<string>" + a + "</string>"
	}
	plist := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict>
<key>Label</key><string>bench.job</string>
<key>ProgramArguments</key><array>%s</array>
<key>inetdCompatibility</key><dict><key>Wait</key><false/></dict>
<key>SockdLimits</key><dict><key>MaxChildren</key><integer>1024</integer></dict>
<key>Sockets</key><dict><key>Listeners</key><dict>
<key>SockNodeName</key><string>127.0.0.1</string><key>SockServiceName</key><string>%d</string>
</dict></dict></dict></plist>`, args, port)
	j, diags := job.Decode([]byte(plist), "bench.plist")
	if j == nil {
		b.Fatalf("decode: %v", diags)
	}
	return j
}

func freeTCPPort(b testing.TB) int {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// BenchmarkAcceptSpawn is the whole per-connection path of an inetd-nowait
// job: accept, environment, spawn of /bin/echo, reap, measured from the
// client (connect, read the reply to EOF), one connection at a time.
func BenchmarkAcceptSpawn(b *testing.B) {
	port := freeTCPPort(b)
	j := inetdJob(b, port, "/bin/echo", "ok")
	s, err := New(Config{Load: func() ([]*job.Job, job.Diags) { return []*job.Job{j}, nil }, Log: zap.NewNop()})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for i := 0; i < 100; i++ { // wait until bound
		if c, err := net.Dial("tcp4", addr); err == nil {
			_, _ = io.ReadAll(c)
			c.Close()
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c, err := net.Dial("tcp4", addr)
		if err != nil {
			b.Fatal(err)
		}
		out, err := io.ReadAll(c)
		c.Close()
		if err != nil || string(out) != "ok\n" {
			b.Fatalf("reply %q: %v", out, err)
		}
	}
}

// BenchmarkConnEnv is the environment built for each connection.
func BenchmarkConnEnv(b *testing.B) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("tcp4", l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	sc, err := l.Accept()
	if err != nil {
		b.Fatal(err)
	}
	defer sc.Close()
	raw, _ := sc.(*net.TCPConn).SyscallConn()
	var fd int
	_ = raw.Control(func(f uintptr) { fd = int(f) })
	peer, err := unix.Getpeername(fd)
	if err != nil {
		b.Fatal(err)
	}
	sk := &listener.Socket{Addr: l.Addr().String(), Network: "tcp4"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		env := connEnv("bench.job", sk, nil, fd, peer)
		if len(env) != 8 {
			b.Fatalf("env %v", env)
		}
	}
}

// BenchmarkAdmit is the limit check done before each spawn: deny and allow
// lists and the per-source count.
func BenchmarkAdmit(b *testing.B) {
	s := &Supervisor{log: zap.NewNop()}
	j := &job.Job{Label: "bench", Limits: job.Limits{
		MaxPerSource: 10,
		Allow:        []string{"127.0.0.0/8", "10.0.0.0/8", "192.168.0.0/16", "::1"},
		Deny:         []string{"127.0.0.66", "10.1.2.0/24"},
	}}
	rj := newRunJob(s, j, nil)
	src := netip.MustParseAddr("127.0.0.1")
	rj.limiter().addSource(src)
	rj.limiter().addSource(src)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if why := rj.admit(src, true); why != "" {
			b.Fatal(why)
		}
	}
}

// BenchmarkStartup1000 loads and binds 1,000 inetd jobs on Unix sockets:
// what sockd serve does before READY=1 (job decoding excluded).
func BenchmarkStartup1000(b *testing.B) {
	// Socket nodes on tmpfs: on a disk file system each bind is an inode
	// creation that can cost a millisecond (measured here on ext4).
	dir, err := os.MkdirTemp("/dev/shm", "sockd-bench-")
	if err != nil {
		dir = b.TempDir()
	}
	defer os.RemoveAll(dir)
	var jobs []*job.Job
	for i := 0; i < 1000; i++ {
		plist := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict>
<key>Label</key><string>scale.%d</string>
<key>ProgramArguments</key><array><string>/bin/echo</string><string>ok</string></array>
<key>inetdCompatibility</key><dict><key>Wait</key><false/></dict>
<key>Sockets</key><dict><key>L</key><dict><key>SockPathName</key><string>%s/s%d.sock</string></dict></dict>
</dict></plist>`, i, dir, i)
		j, diags := job.Decode([]byte(plist), "scale.plist")
		if j == nil {
			b.Fatal(diags)
		}
		jobs = append(jobs, j)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s, err := New(Config{Load: func() ([]*job.Job, job.Diags) { return jobs, nil }, Log: zap.NewNop()})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		for s.JobCount() != 1000 {
			time.Sleep(time.Millisecond)
		}
		cancel()
		<-done
	}
}
