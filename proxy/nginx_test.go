package proxy

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// nginxBackend runs a real nginx as the backend process, the way the
// supervisor would: Start spawns it once, Stop sends SIGTERM and waits, an
// exit is reported with BackendExited.
type nginxBackend struct {
	conf string
	srv  atomic.Pointer[Server] // set once the Server exists

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	starts int
}

func (b *nginxBackend) Start(env []string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd != nil {
		return nil
	}
	cmd := exec.Command("nginx", "-c", b.conf, "-e", "stderr")
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
func (b *nginxBackend) MainPID() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return 0
	}
	return b.cmd.Process.Pid
}

func (b *nginxBackend) startCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.starts
}

func (b *nginxBackend) Stop() {
	b.mu.Lock()
	cmd, exited := b.cmd, b.exited
	b.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-exited
	}
}

// nginx behind the proxy with the PROXY protocol (v1 and v2): nginx reports
// the client address it parsed; on-demand start, idle stop, start again.
func TestNginxProxyProtocol(t *testing.T) {
	if _, err := exec.LookPath("nginx"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("nginx not installed (apt-get install nginx-light)")
		}
		t.Skip("nginx not installed")
	}
	for _, version := range []string{"v1", "v2"} {
		t.Run(version, func(t *testing.T) {
			dir := t.TempDir()
			if os.Geteuid() == 0 {
				os.Chmod(dir, 0o755) // workers run as nobody
			}
			backend := freeAddr(t, "tcp")
			conf := filepath.Join(dir, "nginx.conf")
			err := os.WriteFile(conf, []byte(fmt.Sprintf(`daemon off;
master_process on;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log stderr error;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    server {
        listen %[2]s proxy_protocol;
        location / { return 200 "client=$proxy_protocol_addr:$proxy_protocol_port\n"; }
    }
}
`, dir, backend)), 0o644)
			if err != nil {
				t.Fatal(err)
			}
			be := &nginxBackend{conf: conf}
			h := startProxy(t, "tcp", Config{Backend: backend, ProxyProtocol: version,
				StopAfterIdle: 500 * time.Millisecond, ReadyTimeout: 10 * time.Second}, be)
			be.srv.Store(h.srv)
			defer be.Stop()

			get := func() {
				t.Helper()
				c := dial(t, "tcp", h.addr)
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				fmt.Fprintf(c, "GET / HTTP/1.0\r\nHost: x\r\n\r\n")
				r := bufio.NewReader(c)
				status, _ := r.ReadString('\n')
				var body string
				for {
					line, err := r.ReadString('\n')
					if strings.HasPrefix(line, "client=") {
						body = strings.TrimSpace(line)
					}
					if err != nil {
						break
					}
				}
				if want := "client=" + c.LocalAddr().String(); !strings.HasPrefix(status, "HTTP/1.1 200") || body != want {
					t.Fatalf("nginx answered %q / %q, want 200 and %q", status, body, want)
				}
			}
			get()
			if !waitFor(10*time.Second, func() bool { return h.srv.Stats().BackendStops == 1 }) {
				t.Fatal("nginx not stopped after StopAfterIdle")
			}
			if !waitFor(10*time.Second, func() bool {
				c, err := net.DialTimeout("tcp", backend, time.Second)
				if err == nil {
					c.Close()
				}
				return err != nil
			}) {
				t.Fatal("nginx still listening after the idle stop")
			}
			get()
			if be.startCount() != 2 {
				t.Errorf("nginx started %d times, want 2", be.startCount())
			}
		})
	}
}
