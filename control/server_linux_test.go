//go:build linux

package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func startServer(t *testing.T, path string, h Handler) *Server {
	t.Helper()
	s, err := Listen(path, h, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		s.Close()
	})
	return s
}

// TestRoundTrip: a request reaches the handler with the peer's real
// credentials, and the answer comes back.
func TestRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "control.sock")
	startServer(t, path, func(_ context.Context, p Peer, req Request) Response {
		if p.Pid != os.Getpid() || p.Uid != os.Geteuid() {
			return Errorf(Failed, "peer %v, want this process", p)
		}
		return Response{Status: OK, Jobs: []Job{{Label: req.Labels[0], State: "running", Pid: 42}}}
	})
	resp, err := Do(path, Request{Cmd: CmdPrint, Labels: []string{"org.x"}}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != OK || len(resp.Jobs) != 1 || resp.Jobs[0].Pid != 42 {
		t.Fatalf("%+v", resp)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	want := os.FileMode(0o600)
	if os.Geteuid() == 0 {
		want = 0o666
	}
	if fi.Mode().Perm() != want {
		t.Errorf("socket mode %o, want %o", fi.Mode().Perm(), want)
	}
}

// TestUnknownAndMalformed: an unknown command and a malformed request are
// usage errors that never reach the handler.
func TestUnknownAndMalformed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "control.sock")
	startServer(t, path, func(context.Context, Peer, Request) Response {
		t.Error("the handler was called")
		return Response{Status: OK}
	})
	resp, err := Do(path, Request{Cmd: "rm-rf"}, time.Second)
	if err != nil || resp.Status != BadRequest {
		t.Fatalf("%+v %v", resp, err)
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("{not json\n"))
	buf := make([]byte, 512)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _ := c.Read(buf)
	c.Close()
	if !strings.Contains(string(buf[:n]), `"usage"`) {
		t.Errorf("answer to a malformed request: %s", buf[:n])
	}
}

// TestSecondServerRefused: a live control socket is not taken over, a dead
// one is replaced, and anything else in the way is left alone.
func TestSecondServerRefused(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "control.sock")
	startServer(t, path, func(context.Context, Peer, Request) Response { return Response{Status: OK} })
	if _, err := Listen(path, nil, nil); err == nil || !strings.Contains(err.Error(), "another sockd") {
		t.Fatalf("second Listen: %v", err)
	}
	file := filepath.Join(dir, "file.sock")
	os.WriteFile(file, []byte("x"), 0o644)
	if _, err := Listen(file, nil, nil); err == nil || !strings.Contains(err.Error(), "left untouched") {
		t.Fatalf("Listen over a file: %v", err)
	}
	dead := filepath.Join(dir, "dead.sock")
	l, err := net.Listen("unix", dead)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	startServer(t, dead, func(context.Context, Peer, Request) Response { return Response{Status: OK} })
}

// TestUnreachable: no daemon is an *UnreachableError.
func TestUnreachable(t *testing.T) {
	_, err := Do(filepath.Join(t.TempDir(), "none.sock"), Request{Cmd: CmdList}, time.Second)
	var ue *UnreachableError
	if !errors.As(err, &ue) {
		t.Fatalf("err = %v, want UnreachableError", err)
	}
}

// TestOthersCannotStarveRoot: connections other users hold open take only
// the slots of other users (and are answered "busy" beyond them, at
// once); root is still served. Any local user may connect to root's
// socket, so holding 32 connections used to stall every control request
// for 30 s at a time.
func TestOthersCannotStarveRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: another user's connections against root's socket")
	}
	py, err1 := exec.LookPath("/usr/bin/python3") // not a shim in root's home
	sp, err2 := exec.LookPath("setpriv")
	if err1 != nil || err2 != nil {
		t.Skip("needs python3 and setpriv to hold connections as another user")
	}
	dir, err := os.MkdirTemp("", "sockd-ctl-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	path := filepath.Join(dir, "control.sock")
	startServer(t, path, func(context.Context, Peer, Request) Response { return Response{Status: OK} })
	hold := fmt.Sprintf(`import socket, sys, time
socks = []
for _ in range(%d):
    s = socket.socket(socket.AF_UNIX)
    s.connect(%q)
    socks.append(s)
print("held", flush=True)
time.sleep(20)`, 40, path)
	cmd := exec.Command(sp, "--reuid=65534", "--regid=65534", "--clear-groups", py, "-c", hold)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line := make([]byte, 5)
	if _, err := io.ReadFull(out, line); err != nil || string(line) != "held\n"[:5] {
		t.Fatalf("holder: %q %v", line, err)
	}
	t0 := time.Now()
	resp, err := Do(path, Request{Cmd: CmdList}, 10*time.Second)
	if err != nil || resp.Status != OK {
		t.Fatalf("root's request with others holding connections: %+v %v", resp, err)
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("root waited %v behind other users' connections", d)
	}
}

// TestDoRaw: DoRaw returns the answer's bytes as the server wrote them,
// with its status and error, for a large answer too.
func TestDoRaw(t *testing.T) {
	path := filepath.Join(t.TempDir(), "control.sock")
	jobs := make([]Job, 5000)
	for i := range jobs {
		jobs[i] = Job{Label: fmt.Sprintf("org.x.%d", i), State: "waiting"}
	}
	startServer(t, path, func(_ context.Context, _ Peer, req Request) Response {
		if req.Cmd == CmdList {
			return Response{Status: OK, Jobs: jobs}
		}
		return Errorf(NoSuchJob, "no job %s", req.Labels[0])
	})
	raw, resp, err := DoRaw(path, Request{Cmd: CmdList}, 5*time.Second)
	if err != nil || resp.Status != OK || resp.Error != "" {
		t.Fatalf("%+v %v", resp, err)
	}
	var full Response
	if err := json.Unmarshal(raw, &full); err != nil || len(full.Jobs) != len(jobs) || full.Jobs[4999].Label != "org.x.4999" {
		t.Fatalf("raw answer: %v, %d jobs", err, len(full.Jobs))
	}
	raw, resp, err = DoRaw(path, Request{Cmd: CmdPrint, Labels: []string{"org.y"}}, 5*time.Second)
	if err != nil || resp.Status != NoSuchJob || resp.Error != "no job org.y" || !strings.HasPrefix(string(raw), `{"status":"no-such-job"`) {
		t.Fatalf("%+v %v %q", resp, err, raw)
	}
}
