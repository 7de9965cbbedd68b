//go:build linux

package supervisor

import (
	"net/netip"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/sockd/sockd/job"
)

// limiter holds the SockdLimits state of one inetd-nowait job that is not
// kept in the job definition: per-source counts and the spawn-rate bucket.
// Counts survive a reload of a changed job (the runJob is kept), so a
// reactivation never resets them.
type limiter struct {
	allow, deny  []netip.Prefix
	perSource    map[netip.Addr]int
	tokens       float64
	last         time.Time
	refuseLog    time.Time   // last "refused" log line (at most one a second)
	refusedSince uint64      // refusals not yet in a log line
	lastRefusal  refusal     // the newest of those
	refuseFlush  *time.Timer // logs them when the second is over
}

// refusal is one refused connection, kept for a deferred log line.
type refusal struct {
	src     netip.Addr
	why     string
	fromSrc int // connections from src when it was refused
}

func newLimiter(l job.Limits, log func() *zap.Logger) *limiter {
	lm := &limiter{tokens: float64(l.Burst)}
	lm.allow = parsePrefixes(l.Allow, "Allow", log)
	lm.deny = parsePrefixes(l.Deny, "Deny", log)
	return lm
}

// reconfigure applies new limits and keeps the counts.
func (lm *limiter) reconfigure(l job.Limits, log func() *zap.Logger) {
	lm.allow = parsePrefixes(l.Allow, "Allow", log)
	lm.deny = parsePrefixes(l.Deny, "Deny", log)
	if lm.tokens > float64(l.Burst) {
		lm.tokens = float64(l.Burst)
	}
}

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
		log().Warn("SockdLimits."+key+": not an address or CIDR prefix; ignored", zap.String("entry", s))
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
		return "" // Unix sockets carry no source address
	}
	lm := rj.limits
	if matchAny(lm.deny, src) {
		return "source denied by SockdLimits.Deny"
	}
	if len(lm.allow) > 0 && !matchAny(lm.allow, src) {
		return "source not in SockdLimits.Allow"
	}
	if max := rj.def.Limits.MaxPerSource; max > 0 && lm.perSource[src] >= max {
		return "per-source limit reached (MaxPerSource " + itoa(max) + ")"
	}
	return ""
}

// refuse logs a refused connection at most once a second per job. Refusals
// within the second after a line are counted and logged together when the
// second is over, as one line for the newest with the count.
func (rj *runJob) refuse(src netip.Addr, why string) {
	rj.stats.refused++
	lm := rj.limits
	lm.refusedSince++
	lm.lastRefusal = refusal{src, why, lm.perSource[src]}
	rj.flushRefusals()
}

// flushRefusals logs the refusals counted so far if the last line is a
// second old, or arms a timer for when it will be. The timer's function
// checks again: a line may have been written while it waited in the
// loop's queue.
func (rj *runJob) flushRefusals() {
	lm := rj.limits
	if lm.refusedSince == 0 {
		return
	}
	wait := time.Second - time.Since(lm.refuseLog)
	if wait <= 0 {
		rj.logRefusals()
		return
	}
	if lm.refuseFlush == nil {
		lm.refuseFlush = rj.s.loop.after(wait, func() {
			lm.refuseFlush = nil
			rj.flushRefusals()
		})
	}
}

// logRefusals writes the line for the refusals counted since the last one
// (now, whatever the time since the last line: retirement and shutdown
// call it so that no count is lost).
func (rj *runJob) logRefusals() {
	lm := rj.limits
	if lm == nil || lm.refusedSince == 0 {
		return
	}
	if lm.refuseFlush != nil {
		lm.refuseFlush.Stop()
		lm.refuseFlush = nil
	}
	r := lm.lastRefusal
	rj.log().Warn("connection refused: "+r.why+"; closed",
		zap.String("source", r.src.String()),
		zap.Int("source_connections", r.fromSrc),
		zap.Uint64("refused_since_last_line", lm.refusedSince))
	lm.refuseLog = time.Now()
	lm.refusedSince = 0
}

// rateOK applies the spawn-rate limit before a connection is accepted:
// with the bucket empty it pauses accepting for Limits.Pause (clients wait in
// the backlog) and reports false; accepting resumes by itself.
func (rj *runJob) rateOK() bool {
	l := rj.def.Limits
	if l.Rate <= 0 {
		return true
	}
	lm := rj.limits
	now := time.Now()
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
		return true
	}
	pause := l.Pause
	if pause <= 0 {
		pause = 5 * time.Second
	}
	rj.holdAccept("spawn rate", zap.Float64("rate_per_s", l.Rate), zap.Int("burst", l.Burst),
		zap.Duration("paused_for", pause))
	rj.holdTimer = rj.s.loop.after(pause, func() {
		rj.holdTimer = nil
		if rj.acceptHold == "spawn rate" {
			rj.acceptHold = ""
			rj.log().Info("spawn-rate pause over; accepting again")
			rj.watchSockets()
		}
	})
	return false
}

// rateSpend takes one token for a spawned child.
func (rj *runJob) rateSpend() {
	if rj.def.Limits.Rate > 0 {
		rj.limits.tokens--
	}
}

// addSource counts one more connection from src.
func (lm *limiter) addSource(src netip.Addr) {
	if lm.perSource == nil {
		lm.perSource = map[netip.Addr]int{}
	}
	lm.perSource[src]++
}

// dropSource counts one connection from src less.
func (lm *limiter) dropSource(src netip.Addr) {
	if n := lm.perSource[src] - 1; n > 0 {
		lm.perSource[src] = n
	} else {
		delete(lm.perSource, src)
	}
}
