//go:build linux

package supervisor

import (
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// proxyGate applies a proxy job's SockdLimits for its proxy.Server, whose
// goroutines call it concurrently: the same limiter, refusal lines and
// counters as an inetd job's. Refusals are handed to the loop, which owns
// the counters and the log line limits.
type proxyGate struct {
	rj        *runJob
	lm        *limiter
	lastPause atomic.Int64 // unix nanoseconds of the last pause line
}

func newProxyGate(rj *runJob) *proxyGate { return &proxyGate{rj: rj, lm: rj.limiter()} }

// Admit implements proxy.Gate. The proxy gives addresses as the inetd
// path does (sockaddrIPPort: unmapped, no zone); the gate makes sure of it,
// since Allow and Deny prefixes never contain a zoned address.
func (g *proxyGate) Admit(src netip.Addr, flow bool) bool {
	src = limitAddr(src)
	if flow {
		// A datagram cannot wait in a backlog: a new flow over the rate is
		// refused (its datagram dropped).
		if _, ok := g.lm.rateCheck(time.Now()); !ok {
			g.refuse(src, "connection rate limit reached (Rate "+strconv.FormatFloat(g.lm.rate(), 'g', -1, 64)+"/s)", 0)
			return false
		}
	}
	if src.IsValid() {
		if why, n := g.lm.admitCount(src); why != "" {
			g.refuse(src, why, n)
			return false
		}
	}
	g.lm.spend()
	return true
}

// Done implements proxy.Gate.
func (g *proxyGate) Done(src netip.Addr) {
	src = limitAddr(src)
	if src.IsValid() {
		g.lm.dropSource(src)
	}
}

// Count implements proxy.Gate: an adopted connection counts as its
// client's, as it did in the image that admitted it.
func (g *proxyGate) Count(src netip.Addr) {
	src = limitAddr(src)
	if src.IsValid() {
		g.lm.addSource(src)
	}
}

// Pace implements proxy.Gate: the spawn-rate pause of inetd jobs, for
// accepted connections.
func (g *proxyGate) Pace() time.Duration {
	pause, ok := g.lm.rateCheck(time.Now())
	if ok {
		return 0
	}
	now := time.Now().UnixNano()
	if last := g.lastPause.Load(); now-last >= int64(pause) && g.lastPause.CompareAndSwap(last, now) {
		rate := g.lm.rate()
		g.rj.s.loop.post(func() {
			g.rj.log().Warn("limit reached: connection rate; not accepting, clients wait in the backlog",
				zap.Float64("rate_per_s", rate), zap.Duration("paused_for", pause))
		})
	}
	return pause
}

func (g *proxyGate) refuse(src netip.Addr, why string, fromSrc int) {
	rj := g.rj
	rj.s.loop.post(func() { rj.refused(netip.AddrPortFrom(src, 0), why, fromSrc) })
}

// limitAddr is a client address as SockdLimits match it: IPv4-mapped
// addresses unmapped, no zone.
func limitAddr(a netip.Addr) netip.Addr { return a.Unmap().WithZone("") }
