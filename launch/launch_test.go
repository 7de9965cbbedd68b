package launch_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sockd/sockd/job"
	"github.com/sockd/sockd/launch"
	"github.com/sockd/sockd/spawn"
)

// The test binary is also the service: with GO_WANT_HELPER_PROCESS=1 it
// activates sockets through the package and prints what it got.
func TestMain(m *testing.M) {
	if os.Getenv("GO_WANT_HELPER_PROCESS") == "1" {
		fmt.Print(activateReport())
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func errName(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, syscall.EALREADY):
		return "EALREADY"
	case errors.Is(err, syscall.ENOENT):
		return "ENOENT"
	case errors.Is(err, syscall.ESRCH):
		return "ESRCH"
	}
	return err.Error()
}

func activateReport() string {
	var b strings.Builder
	names, err := launch.Names()
	fmt.Fprintf(&b, "names=%s err=%s label=%s\n", strings.Join(names, ","), errName(err), launch.Label())
	dual, err := launch.Listeners("Dual")
	fmt.Fprintf(&b, "dual=%d err=%s\n", len(dual), errName(err))
	_, err = launch.ActivateSocket("Dual")
	fmt.Fprintf(&b, "again=%s\n", errName(err))
	_, err = launch.ActivateSocket("Nope")
	fmt.Fprintf(&b, "nope=%s\n", errName(err))
	pcs, err := launch.PacketConns("Udp")
	fmt.Fprintf(&b, "udp=%d err=%s\n", len(pcs), errName(err))
	for _, l := range dual {
		go func(l net.Listener) {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				fmt.Fprintf(c, "hello from %s\n", l.Addr())
				c.Close()
			}
		}(l)
	}
	if len(dual) > 0 {
		time.Sleep(3 * time.Second) // serve the parent's probes
	}
	return b.String()
}

func fdOf(t *testing.T, f interface{ File() (*os.File, error) }) *os.File {
	t.Helper()
	file, err := f.File()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { file.Close() })
	return file
}

// start runs the test binary as a service the way sockd does: the sockets
// as fds 3.., LISTEN_FDS/LISTEN_FDNAMES, and LISTEN_PID set in the child
// (or a wrong LISTEN_PID when wrongPID).
func start(t *testing.T, files []*os.File, names []string, wrongPID bool) (string, []net.Listener) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	j := &job.Job{Label: "test.launch", Path: exe, Argv: []string{exe}, InitGroups: true}
	tpl, _, err := spawn.NewTemplate(j, spawn.Options{BaseEnv: []string{"GO_WANT_HELPER_PROCESS=1", "PATH=/usr/bin:/bin"}})
	if err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	fds := []int{int(devnull.Fd()), int(w.Fd()), 2}
	for _, f := range files {
		fds = append(fds, int(f.Fd()))
	}
	env := []string{fmt.Sprintf("LISTEN_FDS=%d", len(files)), "LISTEN_FDNAMES=" + strings.Join(names, ":"), "LAUNCH_JOB_LABEL=test.launch"}
	if wrongPID {
		env = append(env, "LISTEN_PID=1")
	}
	p, err := tpl.Start(fds, env, !wrongPID)
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = p.Signal(syscall.SIGKILL)
		for i := 0; i < 100; i++ {
			if _, done, _ := p.Reap(); done {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(out), nil
}

func TestActivateByName(t *testing.T) {
	l4, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l4.Close()
	l6, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skip("no IPv6 loopback")
	}
	defer l6.Close()
	u, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	files := []*os.File{fdOf(t, l4.(*net.TCPListener)), fdOf(t, l6.(*net.TCPListener)), fdOf(t, u.(*net.UDPConn))}

	done := make(chan string, 1)
	go func() {
		out, _ := start(t, files, []string{"Dual", "Dual", "Udp"}, false)
		done <- out
	}()
	// The service answers on both addresses of the Dual key.
	for _, addr := range []string{l4.Addr().String(), l6.Addr().String()} {
		var got string
		for i := 0; i < 100; i++ {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				b, _ := io.ReadAll(c)
				c.Close()
				got = string(b)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if !strings.HasPrefix(got, "hello from ") {
			t.Errorf("%s answered %q", addr, got)
		}
	}
	out := <-done
	want := "names=Dual,Udp err=ok label=test.launch\ndual=2 err=ok\nagain=EALREADY\nnope=ENOENT\nudp=1 err=ok\n"
	if out != want {
		t.Errorf("service reported:\n%s\nwant:\n%s", out, want)
	}
}

func TestWrongListenPID(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	out, _ := start(t, []*os.File{fdOf(t, l.(*net.TCPListener))}, []string{"Dual"}, true)
	if !strings.Contains(out, "names= err=ESRCH") || !strings.Contains(out, "dual=0 err=ESRCH") {
		t.Errorf("a LISTEN_PID for another process must be ignored; got:\n%s", out)
	}
}

func TestIdleTimeout(t *testing.T) {
	t.Setenv("LAUNCH_TIMEOUT", "45")
	if d, ok := launch.IdleTimeout(); !ok || d != 45*time.Second {
		t.Fatalf("IdleTimeout = %v, %t; want 45s", d, ok)
	}
	t.Setenv("LAUNCH_TIMEOUT", "")
	if _, ok := launch.IdleTimeout(); ok {
		t.Fatal("IdleTimeout without LAUNCH_TIMEOUT reported ok")
	}
}
