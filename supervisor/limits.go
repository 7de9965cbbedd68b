//go:build linux

package supervisor

import (
	"net/netip"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/sockd/sockd/job"
)

// limiter holds the SockdLimits state of one job whose connections sockd
// accepts (inetd nowait, internal, proxy) that is not kept in the job
// definition: per-source counts and the connection-rate bucket. Counts
// survive a reload of a changed job (the runJob is kept), so a reactivation
// never resets them.
//
// The loop uses it for inetd and internal jobs; a proxy job's goroutines use
// it concurrently (through proxyGate), so its admission state is guarded by
// mu and it keeps its own copy of the limits.
type limiter struct {
	mu          sync.Mutex
	cfg         job.Limits
	allow, deny []netip.Prefix
	perSource   map[netip.Addr]int
	tokens      float64
	last        time.Time

	// loop-owned
	refusals    lineLimit // "connection refused" lines, at most one a second
	lastRefusal refusal   // the newest refusal not yet in a line
}

// refusal is one refused connection, kept for a deferred log line.
type refusal struct {
	src     netip.Addr
	why     string
	fromSrc int // connections from src when it was refused
}

func newLimiter(l job.Limits, log func() *zap.Logger) *limiter {
	lm := &limiter{tokens: float64(l.Burst)}
	lm.refusals = lineLimit{every: time.Second, write: func(n uint64) {
		r := lm.lastRefusal
		log().Warn("connection refused: "+r.why+"; closed",
			zap.String("source", r.src.String()),
			zap.Int("source_connections", r.fromSrc),
			zap.Uint64("refused_since_last_line", n))
	}}
	lm.reconfigure(l, log)
	return lm
}

// limiter is the job's limiter, made on first use: a job that has served
// no connection (most of 10,000 held ones) keeps none. Loop goroutine only
// (a proxy gate takes it when it is made, on the loop).
func (rj *runJob) limiter() *limiter {
	if rj.limits == nil {
		rj.limits = newLimiter(rj.def.Limits, rj.log)
	}
	return rj.limits
}

// reconfigure applies new limits and keeps the counts.
func (lm *limiter) reconfigure(l job.Limits, log func() *zap.Logger) {
	allow := parsePrefixes(l.Allow, "Allow", log)
	deny := parsePrefixes(l.Deny, "Deny", log)
	lm.mu.Lock()
	defer lm.mu.Unlock()
	lm.cfg, lm.allow, lm.deny = l, allow, deny
	if lm.tokens > float64(l.Burst) {
		lm.tokens = float64(l.Burst)
	}
}

// parsePrefixes parses an Allow or Deny list. The loader refuses every
// entry it could not parse (job.ParseAccess), so none should fail here; one
// that does fails closed, never wider: a bad Allow entry leaves the list
// non-empty and matching nothing it did not name, a bad Deny entry denies
// every client.
func parsePrefixes(list []string, key string, log func() *zap.Logger) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		why := "it admits nobody, and clients the other entries do not name stay refused"
		if key == "Deny" {
			out = append(out, netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0"))
			why = "every client is denied"
		} else {
			out = append(out, netip.Prefix{}) // matches no address, keeps the list non-empty
		}
		log().Error("SockdLimits."+key+": not an address or CIDR prefix: "+why+" until the entry is fixed", zap.String("entry", s))
	}
	return out
}

func matchAny(list []netip.Prefix, a netip.Addr) bool {
	for _, p := range list {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// admit decides whether a connection from src may be served. It returns
// the reason for a refusal, or "" to serve.
func (rj *runJob) admit(src netip.Addr, ok bool) string {
	if !ok {
		return "" // Unix sockets carry no source address (load refuses address limits on them)
	}
	lm := rj.limiter()
	lm.mu.Lock()
	defer lm.mu.Unlock()
	return lm.checkLocked(src)
}

func (lm *limiter) checkLocked(src netip.Addr) string {
	if matchAny(lm.deny, src) {
		return whyDeny
	}
	if len(lm.allow) > 0 && !matchAny(lm.allow, src) {
		return whyAllow
	}
	if max := lm.cfg.MaxPerSource; max > 0 && lm.perSource[src] >= max {
		return whyPerSource + itoa(max) + ")"
	}
	return ""
}

// refuseReason is the kind of a refusal by a limit: the reason label of
// sockd_job_refusals_total. The texts that log it (why) are made from the
// constants below, so that reasonOf knows each one.
type refuseReason uint8

const (
	refuseOther     refuseReason = iota // none of the below (not expected)
	refuseDeny                          // SockdLimits.Deny
	refuseAllow                         // not in SockdLimits.Allow
	refusePerSource                     // SockdLimits.MaxPerSource
	refuseRate                          // SockdLimits.Rate (datagrams, UDP flows)
	numRefuseReasons
)

// The refusal texts, one per reason (the last two go on with the limit;
// the rate's is written by admitDatagram and proxyGate.Admit).
const (
	whyDeny      = "source denied by SockdLimits.Deny"
	whyAllow     = "source not in SockdLimits.Allow"
	whyPerSource = "per-source limit reached (MaxPerSource "
	whyRate      = "connection rate limit reached (Rate "
)

var (
	refuseLabels = [numRefuseReasons]string{"other", "deny", "allow", "per_source", "rate"}
	refuseKeys   = [numRefuseReasons]string{"", "SockdLimits.Deny", "SockdLimits.Allow", "SockdLimits.MaxPerSource", "SockdLimits.Rate"}
)

func (r refuseReason) label() string { return refuseLabels[r] }

// key is the SockdLimits key of the limit that refused ("" for other).
func (r refuseReason) key() string { return refuseKeys[r] }

// reasonOf is the reason of a refusal text.
func reasonOf(why string) refuseReason {
	switch {
	case why == whyDeny:
		return refuseDeny
	case why == whyAllow:
		return refuseAllow
	case strings.HasPrefix(why, whyPerSource):
		return refusePerSource
	case strings.HasPrefix(why, whyRate):
		return refuseRate
	}
	return refuseOther
}

// admitCount is admit and, when it admits, addSource, in one step (for
// callers that run concurrently).
func (lm *limiter) admitCount(src netip.Addr) (why string, fromSrc int) {
	lm.mu.Lock()
	defer lm.mu.Unlock()
	if why := lm.checkLocked(src); why != "" {
		return why, lm.perSource[src]
	}
	lm.addSourceLocked(src)
	return "", 0
}

// refuse counts a refused connection and logs it: at most one line a
// second per job, the newest refusal with the count since the last line.
//
// peer is the client's address and port (port 0 where it is not known);
// a job with records writes a refusal record for it.
func (rj *runJob) refuse(peer netip.AddrPort, why string) {
	lm := rj.limiter()
	lm.mu.Lock()
	n := lm.perSource[peer.Addr()]
	lm.mu.Unlock()
	rj.refused(peer, why, n)
}

// refused is refuse with the source's connection count at refusal time.
func (rj *runJob) refused(peer netip.AddrPort, why string, fromSrc int) {
	src := peer.Addr()
	reason := reasonOf(why)
	rj.stats.refused++
	rj.stats.refusedBy[reason]++
	if rj.records() {
		rj.recordRefusal(peer, why, reason)
	}
	lm := rj.limiter()
	lm.lastRefusal = refusal{src, why, fromSrc}
	lm.refusals.note(rj.s.loop)
}

// rateCheck refills the bucket and reports whether a token is there; if not,
// how long accepting pauses.
func (lm *limiter) rateCheck(now time.Time) (time.Duration, bool) {
	lm.mu.Lock()
	defer lm.mu.Unlock()
	l := lm.cfg
	if l.Rate <= 0 {
		return 0, true
	}
	if lm.last.IsZero() {
		lm.tokens = float64(l.Burst)
	} else {
		lm.tokens += now.Sub(lm.last).Seconds() * l.Rate
	}
	if max := float64(l.Burst); lm.tokens > max {
		lm.tokens = max
	}
	lm.last = now
	if lm.tokens >= 1 {
		return 0, true
	}
	if l.Pause <= 0 {
		return 5 * time.Second, false
	}
	return l.Pause, false
}

// rate is the configured connection rate (per second).
func (lm *limiter) rate() float64 {
	lm.mu.Lock()
	defer lm.mu.Unlock()
	return lm.cfg.Rate
}

// rateSpend takes one token for a spawned child.
func (rj *runJob) rateSpend() { rj.limiter().spend() }

func (lm *limiter) spend() {
	lm.mu.Lock()
	if lm.cfg.Rate > 0 {
		lm.tokens--
	}
	lm.mu.Unlock()
}

// addSource counts one more connection from src.
func (lm *limiter) addSource(src netip.Addr) {
	lm.mu.Lock()
	lm.addSourceLocked(src)
	lm.mu.Unlock()
}

func (lm *limiter) addSourceLocked(src netip.Addr) {
	if lm.perSource == nil {
		lm.perSource = map[netip.Addr]int{}
	}
	lm.perSource[src]++
}

// dropSource counts one connection from src less.
func (lm *limiter) dropSource(src netip.Addr) {
	lm.mu.Lock()
	defer lm.mu.Unlock()
	if n := lm.perSource[src] - 1; n > 0 {
		lm.perSource[src] = n
	} else {
		delete(lm.perSource, src)
	}
}
