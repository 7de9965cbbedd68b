// Package loadgen is sockd's load generator: it drives loopback servers with
// connection-per-request, kept-connection request/response, bulk, UDP and
// first-connection workloads, closed-loop at a fixed concurrency or open-loop
// at a fixed arrival rate, and summarises latency with HDR histograms.
//
// Open-loop latency is measured from the intended send time of each request
// (start + i/rate), not from when the generator got round to sending it, so a
// server stall shows up in every request that should have been sent during it
// (no coordinated omission).
//
// Every run is bounded by a duration, a count or both, and only loopback
// targets (127.0.0.0/8, ::1, Unix sockets) are accepted.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Workload selects what one request is.
type Workload string

const (
	// ConnPerRequest: connect, send Request, read the reply to EOF, close.
	ConnPerRequest Workload = "conn"
	// KeepAlive: request/response over a kept connection per worker; the
	// server must echo Request back.
	KeepAlive Workload = "keepalive"
	// Bulk: stream framed data over one connection per worker to a sink
	// (see ServeSink) until the duration or Bytes is reached; the sink
	// acknowledges the byte count at the end.
	Bulk Workload = "bulk"
	// UDP: datagram request/response over a connected UDP socket per worker;
	// the server must echo the datagram.
	UDP Workload = "udp"
	// FirstConn: the service is not running; BeforeSample makes it cold,
	// then connect -> first byte of the reply is measured. Sequential.
	FirstConn Workload = "first"
)

// Workloads lists every workload.
var Workloads = []Workload{ConnPerRequest, KeepAlive, Bulk, UDP, FirstConn}

// Config describes one run.
type Config struct {
	// Label names the run in tables and JSON.
	Label    string
	Workload Workload
	// Network is "tcp" (default; "udp" for the UDP workload), "tcp4",
	// "tcp6", "udp4", "udp6" or "unix".
	Network string
	// Addr is "ip:port" on a loopback address, or a Unix socket path.
	Addr string
	// Concurrency: closed loop, the number of workers each with one request
	// outstanding (default 1); open loop, the most requests in flight
	// (default 256). FirstConn always runs one at a time.
	Concurrency int
	// Rate > 0 selects open loop: requests are due at start + i/Rate.
	// Bulk and FirstConn are closed loop only.
	Rate float64
	// Duration and Count bound the run; at least one must be set. Count is
	// the number of requests (ignored by Bulk).
	Duration time.Duration
	Count    int64
	// Timeout bounds one request (default 5s).
	Timeout time.Duration
	// Request is the line sent (default "ping\n").
	Request []byte
	// MinReply is the fewest reply bytes a ConnPerRequest or FirstConn
	// request must get before EOF to count as a success (default 1); fewer is
	// a short read.
	MinReply int
	// Bytes bounds a Bulk connection (0: only Duration).
	Bytes int64
	// ChunkSize is the Bulk frame size (default 64 KiB).
	ChunkSize int
	// BeforeSample is called before each FirstConn sample, untimed, to
	// restart the service so that it is not running when the sample
	// connects. The sample's error is counted if it fails.
	BeforeSample func(ctx context.Context, i int64) error
}

// Defaults used when a Config field is zero.
const (
	DefaultTimeout             = 5 * time.Second
	DefaultOpenLoopConcurrency = 256
	DefaultChunkSize           = 64 << 10
)

// DefaultRequest is the line sent when Config.Request is empty.
var DefaultRequest = []byte("ping\n")

func (c *Config) normalize() error {
	switch c.Workload {
	case ConnPerRequest, KeepAlive, Bulk, FirstConn:
		if c.Network == "" {
			c.Network = "tcp"
		}
	case UDP:
		if c.Network == "" {
			c.Network = "udp"
		}
	case "":
		return errors.New("loadgen: no workload")
	default:
		return fmt.Errorf("loadgen: unknown workload %q", c.Workload)
	}
	if err := CheckLoopback(c.Network, c.Addr); err != nil {
		return err
	}
	switch c.Network {
	case "udp", "udp4", "udp6":
		if c.Workload != UDP {
			return fmt.Errorf("loadgen: workload %s needs a stream network, not %s", c.Workload, c.Network)
		}
	default:
		if c.Workload == UDP {
			return fmt.Errorf("loadgen: workload udp needs a udp network, not %s", c.Network)
		}
	}
	if c.Duration <= 0 && (c.Count <= 0 || c.Workload == Bulk) && (c.Bytes <= 0 || c.Workload != Bulk) {
		return errors.New("loadgen: unbounded run: set a duration or a count (bulk: duration or bytes)")
	}
	if c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0) {
		return fmt.Errorf("loadgen: bad rate %v", c.Rate)
	}
	if c.Concurrency < 0 {
		return fmt.Errorf("loadgen: bad concurrency %d", c.Concurrency)
	}
	if c.Concurrency == 0 {
		c.Concurrency = 1
		if c.Rate > 0 {
			c.Concurrency = DefaultOpenLoopConcurrency
		}
	}
	if c.Workload == FirstConn {
		c.Concurrency = 1
	}
	if c.Workload == FirstConn || c.Workload == Bulk {
		c.Rate = 0 // closed loop only
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if len(c.Request) == 0 {
		c.Request = DefaultRequest
	}
	if c.MinReply <= 0 {
		c.MinReply = 1
	}
	if c.ChunkSize <= 0 {
		c.ChunkSize = DefaultChunkSize
	}
	return nil
}

// Histogram range: 1 µs resolution up to 100 s, 3 significant digits.
const (
	histMin = int64(time.Microsecond)
	histMax = int64(100 * time.Second)
)

// NewHistogram returns an empty latency histogram (nanoseconds) of the shape
// Run uses, for merging results of several runs.
func NewHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(histMin, histMax, 3)
}

// schedule hands out request slots to workers. Closed loop: a slot is
// claimed when a worker is free and its time is "now". Open loop: a pacer
// goroutine releases slot i at start + i/rate into a queue; the intended time
// travels with the slot, so a slot that waits in the queue for a free worker
// is charged for the wait.
type schedule struct {
	start    time.Time
	deadline time.Time // zero: no duration bound
	hardStop time.Time // open loop: slots not sent by then are missed
	rate     float64
	count    int64 // 0: no count bound
	next     atomic.Int64
	slots    chan time.Time // open loop
}

// pace runs the open-loop pacer until the schedule is exhausted or ctx ends.
func (s *schedule) pace(ctx context.Context) {
	defer close(s.slots)
	lockPacerThread()
	for i := int64(0); s.count <= 0 || i < s.count; i++ {
		intended := s.start.Add(time.Duration(float64(i) * float64(time.Second) / s.rate))
		if !s.deadline.IsZero() && !intended.Before(s.deadline) {
			return
		}
		if d := time.Until(intended); d > 0 {
			preciseSleep(d)
		}
		select {
		case s.slots <- intended:
		case <-ctx.Done():
			return
		}
	}
}

// claim returns the next slot's intended send time; ok is false when the
// run is over. missed is true for an open-loop slot that was due but can no
// longer be sent before the hard stop.
func (s *schedule) claim(ctx context.Context) (intended time.Time, ok, missed bool) {
	if s.slots != nil {
		select {
		case intended, ok = <-s.slots:
		case <-ctx.Done():
			return time.Time{}, false, false
		}
		if ok && !s.hardStop.IsZero() && time.Now().After(s.hardStop) {
			return intended, true, true
		}
		return intended, ok, false
	}
	i := s.next.Add(1) - 1
	if s.count > 0 && i >= s.count {
		return time.Time{}, false, false
	}
	now := time.Now()
	if !s.deadline.IsZero() && !now.Before(s.deadline) {
		return now, false, false
	}
	return now, true, false
}

// worker state accumulated without locks, merged at the end.
type tally struct {
	hist     *hdrhistogram.Histogram
	ok       int64
	bytes    int64
	missed   int64
	errs     ErrorCounts
	examples map[ErrorKind]string
}

func newTally() *tally {
	return &tally{hist: NewHistogram(), examples: map[ErrorKind]string{}}
}

func (t *tally) record(d time.Duration) {
	v := int64(d)
	if v < histMin {
		v = histMin
	}
	if v > histMax {
		v = histMax
	}
	_ = t.hist.RecordValue(v) // in range by construction
	t.ok++
}

func (t *tally) fail(err error) {
	k := Classify(err)
	t.errs.add(k)
	if _, seen := t.examples[k]; !seen {
		t.examples[k] = err.Error()
	}
}

// Run executes one run and returns its summary. It returns an error only
// for a bad configuration; request failures are counted in the result.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	start := time.Now()
	s := &schedule{start: start, rate: cfg.Rate}
	if cfg.Workload != Bulk {
		s.count = cfg.Count
	}
	if cfg.Duration > 0 {
		s.deadline = start.Add(cfg.Duration)
		if cfg.Rate > 0 {
			s.hardStop = s.deadline.Add(cfg.Timeout)
		}
	}
	if cfg.Rate > 0 && cfg.Workload != Bulk && cfg.Workload != FirstConn {
		s.slots = make(chan time.Time, 1<<16)
		go s.pace(ctx)
	}

	tallies := make([]*tally, cfg.Concurrency)
	var wg sync.WaitGroup
	for w := range cfg.Concurrency {
		t := newTally()
		tallies[w] = t
		wg.Add(1)
		go func() {
			defer wg.Done()
			runWorker(ctx, &cfg, s, t)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)

	res := &Result{
		Label:       cfg.Label,
		Workload:    cfg.Workload,
		Network:     cfg.Network,
		Addr:        cfg.Addr,
		Concurrency: cfg.Concurrency,
		Rate:        cfg.Rate,
		OpenLoop:    cfg.Rate > 0,
		ElapsedSec:  elapsed.Seconds(),
		hist:        NewHistogram(),
	}
	for _, t := range tallies {
		res.hist.Merge(t.hist)
		res.Requests += t.ok
		res.Bytes += t.bytes
		res.Missed += t.missed
		res.Errors.merge(t.errs)
		for k, v := range t.examples {
			if res.ErrorExamples == nil {
				res.ErrorExamples = map[ErrorKind]string{}
			}
			if _, seen := res.ErrorExamples[k]; !seen {
				res.ErrorExamples[k] = v
			}
		}
	}
	res.finish()
	return res, nil
}

func runWorker(ctx context.Context, cfg *Config, s *schedule, t *tally) {
	switch cfg.Workload {
	case ConnPerRequest:
		buf := make([]byte, 4096)
		loop(ctx, cfg, s, t, func(ctx context.Context) error { return connRequest(ctx, cfg, buf) })
	case KeepAlive:
		k := &keepConn{cfg: cfg, buf: make([]byte, max(4096, len(cfg.Request)))}
		defer k.close()
		loop(ctx, cfg, s, t, k.request)
	case UDP:
		u := &udpConn{cfg: cfg, buf: make([]byte, 65536)}
		defer u.close()
		loop(ctx, cfg, s, t, u.request)
	case Bulk:
		bulkWorker(ctx, cfg, s, t)
	case FirstConn:
		buf := make([]byte, 4096)
		for {
			_, ok, _ := s.claim(ctx)
			if !ok || ctx.Err() != nil {
				return
			}
			i := s.next.Load() - 1
			if cfg.BeforeSample != nil {
				if err := cfg.BeforeSample(ctx, i); err != nil {
					if ctx.Err() != nil {
						return
					}
					t.fail(fmt.Errorf("before sample %d: %w", i, err))
					continue
				}
			}
			d, err := firstRequest(ctx, cfg, buf)
			if err != nil {
				if ctx.Err() == nil {
					t.fail(err)
				}
				continue
			}
			t.record(d)
		}
	}
}

// loop runs requests for the closed- or open-loop schedule.
func loop(ctx context.Context, cfg *Config, s *schedule, t *tally, do func(context.Context) error) {
	for {
		intended, ok, missed := s.claim(ctx)
		if !ok || ctx.Err() != nil {
			return
		}
		if missed {
			t.missed++
			continue
		}
		err := do(ctx)
		done := time.Now()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			t.fail(err)
			continue
		}
		// Closed loop: intended is the claim time, just before sending.
		t.record(done.Sub(intended))
	}
}

// dial connects with the request timeout.
func dial(ctx context.Context, cfg *Config, deadline time.Time) (net.Conn, error) {
	d := net.Dialer{Deadline: deadline}
	return d.DialContext(ctx, cfg.Network, cfg.Addr)
}

// ErrShortRead reports a reply shorter than expected (including an empty
// reply or EOF in the middle of an echo).
var ErrShortRead = errors.New("short read")

func connRequest(ctx context.Context, cfg *Config, buf []byte) error {
	deadline := time.Now().Add(cfg.Timeout)
	c, err := dial(ctx, cfg, deadline)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDeadline(deadline); err != nil {
		return err
	}
	if _, err := c.Write(cfg.Request); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	n, err := readToEOF(c, buf)
	if err != nil {
		return fmt.Errorf("read after %d bytes: %w", n, err)
	}
	if n < cfg.MinReply {
		return fmt.Errorf("%w: %d bytes before EOF, want at least %d", ErrShortRead, n, cfg.MinReply)
	}
	return nil
}

func readToEOF(c net.Conn, buf []byte) (int, error) {
	total := 0
	for {
		n, err := c.Read(buf)
		total += n
		if err != nil {
			if errors.Is(err, io.EOF) {
				return total, nil
			}
			return total, err
		}
	}
}

// firstRequest measures connect -> first reply byte, then drains the reply.
func firstRequest(ctx context.Context, cfg *Config, buf []byte) (time.Duration, error) {
	t0 := time.Now()
	deadline := t0.Add(cfg.Timeout)
	c, err := dial(ctx, cfg, deadline)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if err := c.SetDeadline(deadline); err != nil {
		return 0, err
	}
	if _, err := c.Write(cfg.Request); err != nil {
		return 0, fmt.Errorf("write: %w", err)
	}
	n, err := c.Read(buf)
	d := time.Since(t0)
	if n == 0 {
		if err == nil || errors.Is(err, io.EOF) {
			return 0, fmt.Errorf("%w: EOF before the first byte", ErrShortRead)
		}
		return 0, fmt.Errorf("read: %w", err)
	}
	return d, nil
}

// keepConn is one worker's kept connection for KeepAlive.
type keepConn struct {
	cfg *Config
	c   net.Conn
	buf []byte
}

func (k *keepConn) close() {
	if k.c != nil {
		k.c.Close()
		k.c = nil
	}
}

func (k *keepConn) request(ctx context.Context) error {
	deadline := time.Now().Add(k.cfg.Timeout)
	if k.c == nil {
		c, err := dial(ctx, k.cfg, deadline)
		if err != nil {
			return err
		}
		k.c = c
	}
	err := k.exchange(deadline)
	if err != nil {
		k.close() // the stream is out of step; start afresh
	}
	return err
}

func (k *keepConn) exchange(deadline time.Time) error {
	if err := k.c.SetDeadline(deadline); err != nil {
		return err
	}
	if _, err := k.c.Write(k.cfg.Request); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	want := len(k.cfg.Request)
	got := 0
	for got < want {
		n, err := k.c.Read(k.buf[:min(len(k.buf), want-got)])
		got += n
		if err != nil {
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("%w: EOF after %d of %d echoed bytes", ErrShortRead, got, want)
			}
			return fmt.Errorf("read: %w", err)
		}
	}
	return nil
}
