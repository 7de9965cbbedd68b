package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// serve runs handle for every connection on a fresh loopback listener until
// the test ends.
func serve(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return l.Addr().String()
}

// hello behaves like bench/progs/hello.c: reply one line, read the request,
// close.
func hello(c net.Conn) {
	c.Write([]byte("hello\n"))
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	c.Read(make([]byte, 512))
}

// echoLines echoes line by line; if stall is non-nil it is called before
// each reply.
func echoLines(stall func()) func(net.Conn) {
	return func(c net.Conn) {
		c.SetDeadline(time.Now().Add(20 * time.Second))
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				return
			}
			if stall != nil {
				stall()
			}
			if _, err := c.Write(line); err != nil {
				return
			}
		}
	}
}

func run(t *testing.T, cfg Config) *Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	r, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return r
}

func TestConnPerRequestCounts(t *testing.T) {
	addr := serve(t, hello)
	r := run(t, Config{Workload: ConnPerRequest, Addr: addr, Concurrency: 4, Count: 60})
	if r.Requests != 60 || r.Errors.Total() != 0 {
		t.Fatalf("requests=%d errors=%+v (%v), want 60 and none", r.Requests, r.Errors, r.ErrorExamples)
	}
	if r.Latency.Count != 60 || r.Latency.P50 <= 0 || r.Latency.Max < r.Latency.P99 || r.Throughput <= 0 {
		t.Fatalf("bad summary %+v throughput %v", r.Latency, r.Throughput)
	}
	// MinReply longer than "hello\n" makes every request a short read.
	r = run(t, Config{Workload: ConnPerRequest, Addr: addr, Count: 5, MinReply: 100})
	if r.Errors.ShortRead != 5 || r.Requests != 0 {
		t.Fatalf("MinReply 100: requests=%d errors=%+v, want 5 short reads", r.Requests, r.Errors)
	}
}

func TestKeepAliveCountAndDuration(t *testing.T) {
	var conns atomic.Int64
	addr := serve(t, func(c net.Conn) { conns.Add(1); echoLines(nil)(c) })
	r := run(t, Config{Workload: KeepAlive, Addr: addr, Concurrency: 3, Count: 300})
	if r.Requests != 300 || r.Errors.Total() != 0 {
		t.Fatalf("requests=%d errors=%+v, want 300 and none", r.Requests, r.Errors)
	}
	if n := conns.Load(); n != 3 {
		t.Fatalf("%d connections for 3 workers, want one kept connection each", n)
	}
	r = run(t, Config{Workload: KeepAlive, Addr: addr, Duration: 150 * time.Millisecond})
	if r.Requests == 0 || r.ElapsedSec < 0.15 || r.ElapsedSec > 2 {
		t.Fatalf("duration-bound run: %d requests in %.3fs", r.Requests, r.ElapsedSec)
	}
}

func closedPort(t *testing.T, network string) string {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := c.LocalAddr().String()
		c.Close()
		return addr
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestErrorsClassified(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		r := run(t, Config{Workload: ConnPerRequest, Addr: closedPort(t, "tcp"), Concurrency: 2, Count: 6})
		if r.Errors.Refused != 6 || r.Requests != 0 || r.Errors.Total() != 6 {
			t.Fatalf("errors=%+v requests=%d, want 6 refused", r.Errors, r.Requests)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		addr := serve(t, func(c net.Conn) {
			c.SetReadDeadline(time.Now().Add(3 * time.Second))
			io.Copy(io.Discard, c) // never answers
		})
		for _, w := range []Workload{ConnPerRequest, KeepAlive} {
			r := run(t, Config{Workload: w, Addr: addr, Concurrency: 3, Count: 3, Timeout: 100 * time.Millisecond})
			if r.Errors.Timeout != 3 || r.Errors.Total() != 3 {
				t.Fatalf("%s: errors=%+v (%v), want 3 timeouts", w, r.Errors, r.ErrorExamples)
			}
		}
	})
	t.Run("short read", func(t *testing.T) {
		addr := serve(t, func(c net.Conn) {
			// Read the request, then close without a reply.
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			c.Read(make([]byte, 64))
		})
		for _, w := range []Workload{ConnPerRequest, KeepAlive, FirstConn} {
			r := run(t, Config{Workload: w, Addr: addr, Count: 4})
			if r.Errors.ShortRead != 4 || r.Errors.Total() != 4 {
				t.Fatalf("%s: errors=%+v (%v), want 4 short reads", w, r.Errors, r.ErrorExamples)
			}
		}
	})
	t.Run("reset", func(t *testing.T) {
		addr := serve(t, func(c net.Conn) {
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			c.Read(make([]byte, 64))
			c.(*net.TCPConn).SetLinger(0) // close sends RST
		})
		r := run(t, Config{Workload: ConnPerRequest, Addr: addr, Count: 4})
		if r.Errors.Reset != 4 {
			t.Fatalf("errors=%+v (%v), want 4 resets", r.Errors, r.ErrorExamples)
		}
	})
	t.Run("udp refused", func(t *testing.T) {
		r := run(t, Config{Workload: UDP, Addr: closedPort(t, "udp"), Count: 3, Timeout: time.Second})
		if r.Errors.Refused != 3 {
			t.Fatalf("errors=%+v (%v), want 3 refused", r.Errors, r.ErrorExamples)
		}
	})
	for err, want := range map[error]ErrorKind{
		io.ErrUnexpectedEOF:             ShortRead,
		errors.New("something else"):    Other,
		context.DeadlineExceeded:        Timeout,
		&net.OpError{Err: ErrShortRead}: ShortRead,
	} {
		if got := Classify(err); got != want {
			t.Errorf("Classify(%v) = %s, want %s", err, got, want)
		}
	}
}

// TestOpenLoopIncludesStall: one 200 ms stall of the server must show in the
// latency of every request that was due during it, measured from its
// intended send time, not just in the one request that hit it.
func TestOpenLoopIncludesStall(t *testing.T) {
	const stall = 200 * time.Millisecond
	var n atomic.Int64
	addr := serve(t, echoLines(func() {
		if n.Add(1) == 40 {
			time.Sleep(stall)
		}
	}))
	r := run(t, Config{Workload: KeepAlive, Addr: addr, Concurrency: 1, Rate: 200, Duration: time.Second})
	if r.Errors.Total() != 0 || r.Missed != 0 {
		t.Fatalf("errors=%+v missed=%d", r.Errors, r.Missed)
	}
	if r.Requests < 190 || r.Requests > 200 {
		t.Fatalf("requests=%d, want ~200 at 200/s for 1s", r.Requests)
	}
	stallUS := float64(stall / time.Microsecond)
	if r.Latency.Max < stallUS || r.Latency.P999 < stallUS {
		t.Fatalf("p99.9=%v max=%v µs, want >= %v (stall measured from intended time)", r.Latency.P999, r.Latency.Max, stallUS)
	}
	// About 40 requests were due during the stall with latencies 5..200 ms;
	// a generator with coordinated omission would show only one.
	if r.Latency.P90 < 20_000 {
		t.Fatalf("p90=%vµs, want >= 20ms: the requests queued behind the stall are missing", r.Latency.P90)
	}
	if !r.OpenLoop || r.Rate != 200 {
		t.Fatalf("open loop not recorded: %+v", r)
	}
}

func TestUDP(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(buf[:n], from)
		}
	}()
	r := run(t, Config{Workload: UDP, Addr: pc.LocalAddr().String(), Concurrency: 2, Count: 100})
	if r.Requests != 100 || r.Errors.Total() != 0 {
		t.Fatalf("requests=%d errors=%+v (%v)", r.Requests, r.Errors, r.ErrorExamples)
	}
}

func TestBulk(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go ServeSink(l)
	r := run(t, Config{Workload: Bulk, Addr: l.Addr().String(), Concurrency: 2, Duration: 200 * time.Millisecond})
	if r.Requests != 2 || r.Errors.Total() != 0 || r.Bytes <= 0 || r.MiBps <= 0 {
		t.Fatalf("requests=%d bytes=%d MiB/s=%.1f errors=%+v (%v)", r.Requests, r.Bytes, r.MiBps, r.Errors, r.ErrorExamples)
	}
	// Byte-bounded, with a partial last frame.
	r = run(t, Config{Workload: Bulk, Addr: l.Addr().String(), Bytes: 1<<20 + 123})
	if r.Bytes != 1<<20+123 || r.Errors.Total() != 0 {
		t.Fatalf("bytes=%d errors=%+v (%v), want %d", r.Bytes, r.Errors, r.ErrorExamples, 1<<20+123)
	}
}

func TestFirstConnRestartsService(t *testing.T) {
	// The "service" is restarted before each sample: a new listener on the
	// same address, which answers after a 5 ms start-up delay.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	var (
		mu       sync.Mutex
		cur      net.Listener
		restarts int64
	)
	defer func() {
		mu.Lock()
		if cur != nil {
			cur.Close()
		}
		mu.Unlock()
	}()
	before := func(ctx context.Context, i int64) error {
		mu.Lock()
		defer mu.Unlock()
		if cur != nil {
			cur.Close()
		}
		nl, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		cur = nl
		restarts++
		go func() {
			c, err := nl.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			time.Sleep(5 * time.Millisecond)
			hello(c)
		}()
		return nil
	}
	r := run(t, Config{Workload: FirstConn, Addr: addr, Count: 8, Concurrency: 4, BeforeSample: before})
	if r.Requests != 8 || restarts != 8 || r.Errors.Total() != 0 || r.Concurrency != 1 {
		t.Fatalf("requests=%d restarts=%d C=%d errors=%+v (%v)", r.Requests, restarts, r.Concurrency, r.Errors, r.ErrorExamples)
	}
	if r.Latency.P50 < 5000 {
		t.Fatalf("p50=%vµs, want >= 5ms start-up delay included", r.Latency.P50)
	}
}

func TestJSONAndTable(t *testing.T) {
	addr := serve(t, hello)
	r := run(t, Config{Label: "hello", Workload: ConnPerRequest, Addr: addr, Count: 10})
	var buf bytes.Buffer
	if err := WriteJSON(&buf, []*Result{r}); err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("unmarshal %s: %v", buf.Bytes(), err)
	}
	if len(got) != 1 {
		t.Fatalf("%d entries", len(got))
	}
	m := got[0]
	for _, k := range []string{"label", "workload", "network", "addr", "concurrency", "open_loop", "elapsed_s", "requests", "errors", "throughput_per_s", "latency_us"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, buf.Bytes())
		}
	}
	if m["workload"] != "conn" || m["requests"] != float64(10) {
		t.Errorf("workload/requests = %v/%v", m["workload"], m["requests"])
	}
	lat, _ := m["latency_us"].(map[string]any)
	for _, k := range []string{"count", "mean", "p50", "p90", "p99", "p99_9", "max"} {
		if _, ok := lat[k]; !ok {
			t.Errorf("latency_us lacks %q", k)
		}
	}
	errs, _ := m["errors"].(map[string]any)
	for _, k := range ErrorKinds {
		if _, ok := errs[string(k)]; !ok {
			t.Errorf("errors lacks %q", k)
		}
	}
	buf.Reset()
	if err := WriteTable(&buf, []*Result{r}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(buf.Bytes(), []byte("hello")) || !bytes.Contains(buf.Bytes(), []byte("p99.9")) {
		t.Errorf("table:\n%s", buf.Bytes())
	}
}

func TestConfigChecks(t *testing.T) {
	for _, tc := range []struct {
		cfg Config
		ok  bool
	}{
		{Config{Workload: ConnPerRequest, Addr: "127.0.0.1:80", Count: 1}, true},
		{Config{Workload: ConnPerRequest, Addr: "127.8.9.1:80", Count: 1}, true},
		{Config{Workload: ConnPerRequest, Network: "tcp6", Addr: "[::1]:80", Count: 1}, true},
		{Config{Workload: ConnPerRequest, Addr: "localhost:80", Count: 1}, true},
		{Config{Workload: ConnPerRequest, Network: "unix", Addr: "/tmp/x.sock", Count: 1}, true},
		{Config{Workload: ConnPerRequest, Addr: "10.0.0.1:80", Count: 1}, false},
		{Config{Workload: ConnPerRequest, Addr: "[::ffff:8.8.8.8]:80", Count: 1}, false},
		{Config{Workload: ConnPerRequest, Addr: "example.com:80", Count: 1}, false},
		{Config{Workload: ConnPerRequest, Addr: ":80", Count: 1}, false},
		{Config{Workload: ConnPerRequest, Addr: "127.0.0.1:80"}, false}, // unbounded
		{Config{Workload: Bulk, Addr: "127.0.0.1:80", Count: 5}, false}, // count does not bound bulk
		{Config{Workload: UDP, Network: "tcp", Addr: "127.0.0.1:80", Count: 1}, false},
		{Config{Workload: "nope", Addr: "127.0.0.1:80", Count: 1}, false},
	} {
		c := tc.cfg
		err := c.normalize()
		if (err == nil) != tc.ok {
			t.Errorf("%+v: err=%v, want ok=%t", tc.cfg, err, tc.ok)
		}
	}
}
