package listener

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"golang.org/x/sys/unix"

	"github.com/sockd/sockd/job"
)

func syncOK(t *testing.T, r *Registry, jobs ...*job.Job) map[string][]*Socket {
	t.Helper()
	got, errs := r.Sync(jobs)
	if len(errs) > 0 {
		t.Fatalf("Sync errors: %v", errs)
	}
	return got
}

// serve accepts and closes connections on a listening fd until stop closes.
func serve(fd int, stop <-chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	for {
		select {
		case <-stop:
			return
		default:
		}
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 20)
		if err != nil || n == 0 {
			continue
		}
		for range 64 {
			nfd, _, err := unix.Accept4(fd, unix.SOCK_CLOEXEC)
			if err != nil {
				break
			}
			unix.Close(nfd)
		}
	}
}

// TestSyncKeepsUnchanged reloads 50 times while other jobs come and go and
// checks that clients of the unchanged job are never refused.
func TestSyncKeepsUnchanged(t *testing.T) {
	r := NewRegistry(zaptest.NewLogger(t))
	defer r.CloseAll()
	dir := t.TempDir()
	webPath := filepath.Join(dir, "web.sock")
	web := func() *job.Job { // a fresh, equal definition each reload
		return newJob("org.example.web",
			spec{group: "Listeners", network: "tcp4", addr: "127.0.0.1:0"},
			spec{group: "Listeners", network: "unix", addr: webPath, mode: mode(0o666)},
		)
	}
	got := syncOK(t, r, web())
	first := got["org.example.web"]
	if len(first) != 2 {
		t.Fatalf("got %d sockets, want 2", len(first))
	}
	tcpAddr := first[0].Addr

	stop := make(chan struct{})
	var servers, clients sync.WaitGroup
	for _, s := range first {
		servers.Add(1)
		go serve(s.Fd, stop, &servers)
	}
	defer func() { close(stop); servers.Wait() }()
	var ok, refused, other atomic.Int64
	var otherErr atomic.Value
	reloading := make(chan struct{})
	dial := func(network, addr string) {
		defer clients.Done()
		// Connect for as long as the reloads run (bounded: 15s, 1e6 dials).
		deadline := time.Now().Add(15 * time.Second)
		for i := 0; i < 1000000 && time.Now().Before(deadline); i++ {
			select {
			case <-reloading:
				return
			default:
			}
			c, err := net.DialTimeout(network, addr, 5*time.Second)
			switch {
			case err == nil:
				ok.Add(1)
				c.Close()
			case errors.Is(err, unix.ECONNREFUSED):
				refused.Add(1)
			default:
				// Not what this test is about (e.g. a SYN lost under
				// load); reported, not failed.
				other.Add(1)
				otherErr.Store(err)
			}
		}
	}
	clients.Add(2)
	go dial("tcp4", tcpAddr)
	go dial("unix", webPath)

	for i := range 50 {
		jobs := []*job.Job{web()}
		if i%2 == 0 {
			jobs = append(jobs, newJob(fmt.Sprintf("org.example.other%d", i),
				spec{group: "L", network: "tcp4", addr: "127.0.0.1:0"},
				spec{group: "L", network: "unixgram", addr: filepath.Join(dir, fmt.Sprintf("o%d.sock", i))},
				spec{group: "U", network: "udp4", addr: "127.0.0.1:0"},
			))
		}
		if i%3 == 0 {
			jobs = append([]*job.Job{newJob("org.example.another", spec{group: "L", network: "unix", addr: filepath.Join(dir, "a.sock")})}, jobs...)
		}
		got := syncOK(t, r, jobs...)
		now := got["org.example.web"]
		if len(now) != 2 || now[0] != first[0] || now[1] != first[1] || now[0].Fd != first[0].Fd || now[1].Fd != first[1].Fd {
			t.Fatalf("reload %d: web sockets changed: %v -> %v", i, first, now)
		}
		if want := 2 + 3*boolInt(i%2 == 0) + boolInt(i%3 == 0); r.Len() != want {
			t.Fatalf("reload %d: Len = %d, want %d", i, r.Len(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(reloading)
	clients.Wait()

	t.Logf("%d connections during 50 reloads, %d refused, %d other errors", ok.Load(), refused.Load(), other.Load())
	if err, _ := otherErr.Load().(error); err != nil {
		t.Logf("last other client error: %v", err)
	}
	if refused.Load() != 0 {
		t.Fatalf("%d connections refused during reloads", refused.Load())
	}
	if ok.Load() == 0 {
		t.Fatal("no client connected")
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestSyncKeptEndpointUpdated(t *testing.T) {
	r := NewRegistry(nil)
	defer r.CloseAll()
	j1 := newJob("t.a", spec{group: "L", network: "tcp4", addr: "127.0.0.1:0"})
	s1 := syncOK(t, r, j1)["t.a"][0]
	j2 := newJob("t.a", spec{group: "L", network: "tcp4", addr: "127.0.0.1:0"})
	s2 := syncOK(t, r, j2)["t.a"][0]
	if s1 != s2 {
		t.Fatal("unchanged socket was reopened")
	}
	if s2.Endpoint != j2.Endpoints()[0] {
		t.Fatal("kept socket's Endpoint still points at the old definition")
	}
}

func TestSyncChangedRebinds(t *testing.T) {
	r := NewRegistry(zaptest.NewLogger(t))
	defer r.CloseAll()
	path := filepath.Join(t.TempDir(), "s.sock")
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)

	got := syncOK(t, r,
		newJob("t.a", spec{group: "L", network: "unix", addr: path}, spec{group: "T", network: "tcp4", addr: addr}))
	old := got["t.a"]
	if st := lstat(t, path); st.Mode&0o777 != 0o700 {
		t.Fatalf("mode %o, want 0700", st.Mode&0o777)
	}

	// Same path, new mode; the TCP address moves to another job.
	got = syncOK(t, r,
		newJob("t.a", spec{group: "L", network: "unix", addr: path, mode: mode(0o666)}),
		newJob("t.b", spec{group: "T", network: "tcp4", addr: addr}))
	if len(got["t.a"]) != 1 || got["t.a"][0] == old[0] {
		t.Fatal("changed Unix socket was not reopened")
	}
	if st := lstat(t, path); st.Mode&0o777 != 0o666 {
		t.Fatalf("mode %o after reload, want 0666", st.Mode&0o777)
	}
	if len(got["t.b"]) != 1 || got["t.b"][0].Addr != addr || got["t.b"][0].Label != "t.b" {
		t.Fatalf("t.b sockets %v, want %s", got["t.b"], addr)
	}
	if !old[0].closed.Load() || !old[1].closed.Load() {
		t.Fatal("replaced sockets not closed")
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func TestSyncRemovedJob(t *testing.T) {
	r := NewRegistry(nil)
	defer r.CloseAll()
	dir := t.TempDir()
	path := filepath.Join(dir, "gone.sock")
	got := syncOK(t, r,
		newJob("t.keep", spec{group: "L", network: "tcp4", addr: "127.0.0.1:0"}),
		newJob("t.gone", spec{group: "L", network: "unix", addr: path}, spec{group: "T", network: "tcp4", addr: "127.0.0.1:0"}))
	gone := got["t.gone"]
	keep := got["t.keep"][0]

	got = syncOK(t, r, newJob("t.keep", spec{group: "L", network: "tcp4", addr: "127.0.0.1:0"}))
	for _, s := range gone {
		if fdOpen(s.Fd) {
			t.Errorf("%v: fd still open", s)
		}
	}
	if exists(path) {
		t.Error("removed job's Unix path still exists")
	}
	if _, err := net.Dial("tcp4", gone[1].Addr); !errors.Is(err, unix.ECONNREFUSED) {
		t.Errorf("dial removed job's port: %v, want ECONNREFUSED", err)
	}
	if _, ok := got["t.gone"]; ok || r.Sockets("t.gone") != nil {
		t.Error("removed job still has sockets")
	}
	if got["t.keep"][0] != keep || r.Len() != 1 {
		t.Errorf("kept job changed: %v, Len %d", got["t.keep"], r.Len())
	}
}

func TestSyncFailureIsolated(t *testing.T) {
	r := NewRegistry(zaptest.NewLogger(t))
	defer r.CloseAll()
	dir := t.TempDir()
	good := func() *job.Job {
		return newJob("t.good",
			spec{group: "A", network: "tcp4", addr: "127.0.0.1:0"},
			spec{group: "B", network: "unix", addr: filepath.Join(dir, "good.sock")})
	}
	bad := newJob("t.bad",
		spec{group: "A", network: "tcp4", addr: "127.0.0.1:0"},
		spec{group: "B", network: "unix", addr: filepath.Join(dir, "missing", "bad.sock")},
		spec{group: "C", network: "udp4", addr: "127.0.0.1:0"})
	got, errs := r.Sync([]*job.Job{good(), bad})
	if len(errs) != 1 || errs["t.bad"] == nil {
		t.Fatalf("errs = %v, want only t.bad", errs)
	}
	if !errors.Is(errs["t.bad"], unix.ENOENT) ||
		!strings.Contains(errs["t.bad"].Error(), "job t.bad: socket B (Sockets.B[0]) ") {
		t.Errorf("t.bad error: %v", errs["t.bad"])
	}
	if n := len(got["t.bad"]); n != 2 || got["t.bad"][0].Network != "tcp4" || got["t.bad"][1].Network != "udp4" {
		t.Errorf("t.bad sockets %v, want its tcp4 and udp4 in order", got["t.bad"])
	}
	goodSocks := got["t.good"]
	if len(goodSocks) != 2 || goodSocks[0].Network != "tcp4" || goodSocks[1].Network != "unix" {
		t.Fatalf("t.good sockets %v", goodSocks)
	}

	// A later failure of t.bad leaves t.good's sockets alone.
	got, errs = r.Sync([]*job.Job{bad, good()})
	if len(errs) != 1 || errs["t.bad"] == nil {
		t.Fatalf("errs = %v, want only t.bad", errs)
	}
	if got["t.good"][0] != goodSocks[0] || got["t.good"][1] != goodSocks[1] {
		t.Fatal("t.good sockets reopened")
	}

	// Duplicate labels: the second definition gets an error, no sockets.
	_, errs = r.Sync([]*job.Job{good(), good()})
	if len(errs) != 1 || !strings.Contains(fmt.Sprint(errs["t.good"]), "defined more than once") {
		t.Fatalf("errs = %v, want a duplicate-label error", errs)
	}
	if r.Len() != 2 {
		t.Fatalf("Len = %d, want 2", r.Len())
	}
}

func TestSyncHandoffOrder(t *testing.T) {
	r := NewRegistry(nil)
	defer r.CloseAll()
	dir := t.TempDir()
	j := newJob("t.order",
		spec{group: "A", network: "unix", addr: filepath.Join(dir, "a0")},
		spec{group: "A", network: "tcp4", addr: "127.0.0.1:0"},
		spec{group: "B", network: "udp4", addr: "127.0.0.1:0"},
		spec{group: "C", network: "unixpacket", addr: filepath.Join(dir, "c0")})
	got := syncOK(t, r, j)["t.order"]
	eps := j.Endpoints()
	if len(got) != len(eps) {
		t.Fatalf("%d sockets, want %d", len(got), len(eps))
	}
	for i := range eps {
		if got[i].Endpoint != eps[i] {
			t.Errorf("socket %d is %v, want endpoint %s", i, got[i], eps[i].ID())
		}
	}
	if rs := r.Sockets("t.order"); len(rs) != len(got) || rs[2] != got[2] {
		t.Errorf("Sockets = %v, want %v", rs, got)
	}
}

func TestCloseAll(t *testing.T) {
	r := NewRegistry(nil)
	dir := t.TempDir()
	baseline := countFds(t)
	var paths []string
	var jobs []*job.Job
	for i := range 5 {
		p := filepath.Join(dir, fmt.Sprintf("s%d.sock", i))
		paths = append(paths, p)
		jobs = append(jobs, newJob(fmt.Sprintf("t.j%d", i),
			spec{group: "L", network: "tcp4", addr: "127.0.0.1:0"},
			spec{group: "L", network: "unix", addr: p},
			spec{group: "U", network: "udp4", addr: "127.0.0.1:0"},
			spec{group: "U", network: "unixgram", addr: p + "g"}))
		paths = append(paths, p+"g")
	}
	got := syncOK(t, r, jobs...)
	if r.Len() != 20 || countFds(t) != baseline+20 {
		t.Fatalf("Len %d, fds %d (baseline %d), want 20 more", r.Len(), countFds(t), baseline)
	}
	if err := r.CloseAll(); err != nil {
		t.Fatal(err)
	}
	if n := countFds(t); n != baseline {
		t.Fatalf("%d fds open after CloseAll, baseline %d", n, baseline)
	}
	for _, p := range paths {
		if exists(p) {
			t.Errorf("%s still exists", p)
		}
	}
	for _, socks := range got {
		for _, s := range socks {
			if fdOpen(s.Fd) {
				t.Errorf("%v still open", s)
			}
		}
	}
	if r.Len() != 0 {
		t.Fatalf("Len = %d after CloseAll", r.Len())
	}
	// The registry can be used again.
	syncOK(t, r, jobs[0])
	if err := r.CloseAll(); err != nil {
		t.Fatal(err)
	}
}
