//go:build linux

package supervisor

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/sockd/sockd/job"
)

// TestProxyGateConcurrent: many goroutines admit and release clients from
// one source through a proxy job's gate at once (as the proxy's accept
// loops and flows do): MaxPerSource holds exactly, the counts return to
// zero, and Deny refuses (run it with -race).
func TestProxyGateConcurrent(t *testing.T) {
	s := &Supervisor{log: zap.NewNop()}
	j := &job.Job{Label: "gate", Limits: job.Limits{MaxPerSource: 5, Deny: []string{"10.0.0.0/8"}}}
	rj := newRunJob(s, j, nil)
	g := &proxyGate{rj: rj, lm: rj.limiter()}
	src := netip.MustParseAddr("127.0.0.1")
	var mu sync.Mutex
	held, maxHeld := 0, 0
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				if why, _ := g.lm.admitCount(src); why != "" {
					continue
				}
				mu.Lock()
				held++
				maxHeld = max(maxHeld, held)
				mu.Unlock()
				mu.Lock()
				held--
				mu.Unlock()
				g.Done(src)
			}
		}()
	}
	wg.Wait()
	if maxHeld > 5 || maxHeld == 0 {
		t.Fatalf("at most %d clients held at once, want 1..5 (MaxPerSource 5)", maxHeld)
	}
	if n := rj.limiter().perSource[src]; n != 0 {
		t.Fatalf("per-source count %d after every client ended, want 0", n)
	}
	if why, _ := g.lm.admitCount(netip.MustParseAddr("10.1.2.3")); why != "source denied by SockdLimits.Deny" {
		t.Fatalf("denied source: %q", why)
	}
}

// TestLimiterRate: the bucket gives Burst tokens, then a pause of
// PauseSeconds, and refills at Rate (fake clock: the times passed in).
func TestLimiterRate(t *testing.T) {
	lm := newLimiter(job.Limits{Rate: 2, Burst: 2, Pause: 3 * time.Second}, func() *zap.Logger { return zap.NewNop() })
	t0 := time.Unix(1000, 0)
	for i := 0; i < 2; i++ {
		if _, ok := lm.rateCheck(t0); !ok {
			t.Fatalf("token %d missing", i)
		}
		lm.spend()
	}
	if pause, ok := lm.rateCheck(t0); ok || pause != 3*time.Second {
		t.Fatalf("empty bucket: ok %t pause %v, want a 3s pause", ok, pause)
	}
	if _, ok := lm.rateCheck(t0.Add(500 * time.Millisecond)); !ok {
		t.Fatal("no token 0.5s later at Rate 2/s")
	}
}

// TestProxyGateZone: a link-local client is judged without its zone, and
// an IPv4-mapped one as IPv4: Deny fe80::/10 and 10.0.0.0/8 refuse them,
// and the per-source count is released under the same address.
func TestProxyGateZone(t *testing.T) {
	l, err := newLoop() // refusals are posted to it; it need not run
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	s := &Supervisor{log: zap.NewNop(), loop: l}
	j := &job.Job{Label: "gate", Limits: job.Limits{Deny: []string{"fe80::/10", "10.0.0.0/8"}, MaxPerSource: 1}}
	rj := newRunJob(s, j, nil)
	g := &proxyGate{rj: rj, lm: rj.limiter()}
	for _, a := range []string{"fe80::1%eth0", "::ffff:10.1.2.3"} {
		if g.Admit(netip.MustParseAddr(a), false) {
			t.Errorf("%s admitted despite Deny fe80::/10, 10.0.0.0/8", a)
		}
	}
	ok := netip.MustParseAddr("2001:db8::1%eth0")
	if !g.Admit(ok, false) {
		t.Fatalf("%s refused", ok)
	}
	g.Done(ok)
	if n := rj.limiter().perSource[netip.MustParseAddr("2001:db8::1")]; n != 0 {
		t.Errorf("per-source count %d after Done, want 0", n)
	}
}
