//go:build linux

package supervisor

import (
	"errors"
	"net/netip"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/sockd/sockd/listener"
	"github.com/sockd/sockd/spawn"
)

// acceptBatch bounds how many connections one readiness event accepts, so
// one busy job cannot starve the others.
const acceptBatch = 32

// Accept back-off on resource exhaustion (EMFILE, ENFILE, ENOBUFS, ENOMEM):
// a growing delay, capped, so sockd never busy-loops while starved.
const (
	backoffMin = 10 * time.Millisecond
	backoffMax = time.Second
)

// acceptReady accepts pending connections of an inetd-nowait job and starts
// one child per connection with the connection on fds 0, 1 and 2.
func (rj *runJob) acceptReady(sk *listener.Socket) {
	for i := 0; i < acceptBatch; i++ {
		if rj.def.Limits.MaxChildren > 0 && len(rj.conns) >= rj.def.Limits.MaxChildren {
			rj.holdAccept("max children", zap.Int("running", len(rj.conns)), zap.Int("limit", rj.def.Limits.MaxChildren))
			return
		}
		if !rj.rateOK() {
			return
		}
		cfd, peer, err := acceptConn(sk.Fd)
		if err != nil {
			switch {
			case errors.Is(err, unix.EAGAIN):
				rj.backoff = 0
			case errors.Is(err, unix.ECONNABORTED), errors.Is(err, unix.EPROTO), errors.Is(err, unix.EPERM):
				continue // the client went away before we took it
			case errors.Is(err, unix.EMFILE), errors.Is(err, unix.ENFILE), errors.Is(err, unix.ENOBUFS), errors.Is(err, unix.ENOMEM):
				rj.exhausted(sk, err)
			default:
				rj.log().Error("accept", zap.Stringer("socket", sk), zap.Error(err))
			}
			return
		}
		rj.backoff = 0
		rj.stats.accepted++
		rj.serveConn(sk, cfd, peer)
	}
}

// serveConn starts the child for one accepted connection and closes
// sockd's copy of it.
func (rj *runJob) serveConn(sk *listener.Socket, cfd int, peer unix.Sockaddr) {
	defer unix.Close(cfd)
	src, _, hasSrc := sockaddrIPPort(peer)
	if why := rj.admit(src, hasSrc); why != "" {
		rj.refuse(src, why)
		return
	}
	env := connEnv(rj.def.Label, sk, rj.boundLocal(sk), cfd, peer)
	p, err := rj.tmpl.Start([]int{cfd, cfd, cfd}, env, false)
	if err != nil {
		rj.stats.spawnFailed++
		rj.spawnFailed(err)
		return
	}
	rj.rateSpend()
	rj.stats.spawned++
	c := &child{p: p, src: src}
	if hasSrc {
		rj.limits.addSource(src)
	}
	if rj.conns == nil {
		rj.conns = map[int]*child{}
	}
	rj.conns[p.Pid] = c
	rj.s.watchChild(p, rj.def.AbandonProcessGroup, func(st spawn.ExitStatus) { rj.connExited(c, st) })
}

// spawnFailed logs a per-connection start failure at most once a second
// with the count of failures since the last line.
func (rj *runJob) spawnFailed(err error) {
	if time.Since(rj.failLogged) < time.Second {
		return
	}
	rj.failLogged = time.Now()
	rj.log().Error("cannot start child for connection; connection closed",
		zap.Error(err), zap.Uint64("failures_total", rj.stats.spawnFailed))
}

func (rj *runJob) connExited(c *child, st spawn.ExitStatus) {
	if c.kill != nil {
		c.kill.Stop()
	}
	delete(rj.conns, c.p.Pid)
	if c.src.IsValid() {
		rj.limits.dropSource(c.src)
	}
	rj.stats.exits++
	if ce := rj.log().Check(zap.DebugLevel, "connection child exited"); ce != nil {
		ce.Write(zap.Int("pid", c.p.Pid), zap.Stringer("status", st), zap.Duration("ran", time.Since(c.p.Started)))
	}
	if rj.retiring {
		rj.s.retiredDone(rj)
		return
	}
	if rj.s.shuttingDown {
		rj.s.maybeFinish()
		return
	}
	if rj.acceptHold == "max children" && len(rj.conns) < rj.def.Limits.MaxChildren {
		rj.log().Info("below max children again; accepting", zap.Int("running", len(rj.conns)))
		rj.acceptHold = ""
		rj.watchSockets()
	}
}

// holdAccept stops watching the job's listeners; the kernel backlog holds
// new clients until accepting resumes.
func (rj *runJob) holdAccept(why string, fields ...zap.Field) {
	if rj.acceptHold == why {
		return
	}
	rj.acceptHold = why
	rj.unwatchSockets()
	rj.log().Warn("limit reached: "+why+"; not accepting, clients wait in the backlog", fields...)
}

// exhausted handles EMFILE/ENFILE/ENOBUFS/ENOMEM on accept: pause accepting
// with a growing, capped delay and resume by itself.
func (rj *runJob) exhausted(sk *listener.Socket, err error) {
	if rj.backoff == 0 {
		rj.backoff = backoffMin
		rj.log().Error("accept failed: out of resources; backing off", zap.Stringer("socket", sk), zap.Error(err))
	} else {
		rj.backoff *= 2
		if rj.backoff > backoffMax {
			rj.backoff = backoffMax
		}
	}
	rj.acceptHold = "resources"
	rj.unwatchSockets()
	rj.holdTimer = rj.s.loop.after(rj.backoff, func() {
		rj.holdTimer = nil
		if rj.acceptHold == "resources" {
			rj.acceptHold = ""
			rj.watchSockets()
		}
	})
}

// connEnv is the environment naming both ends of a connection: the
// systemd names, the UCSPI names and the job label.
func connEnv(label string, sk *listener.Socket, local []string, cfd int, peer unix.Sockaddr) []string {
	env := make([]string, 0, 9)
	if ip, port, ok := sockaddrIPPort(peer); ok {
		proto := "TCP"
		if ip.Is6() {
			proto = "TCP6"
		}
		rip, rport := ip.String(), itoa(port)
		env = append(env,
			"REMOTE_ADDR="+rip, "REMOTE_PORT="+rport,
			"PROTO="+proto, "TCPREMOTEIP="+rip, "TCPREMOTEPORT="+rport)
		if local != nil {
			// Listener bound to one address: the local end is known
			// without a getsockname per connection.
			env = append(env, local[0], local[1])
		} else if lip, lport, ok := sockaddrIPPort(localAddr(cfd)); ok {
			env = append(env, "TCPLOCALIP="+lip.String(), "TCPLOCALPORT="+itoa(lport))
		}
	} else {
		env = append(env, "PROTO=UNIX", "UNIXLOCALPATH="+sk.Addr)
		if cred, err := peerCred(cfd); err == nil {
			env = append(env,
				"UNIXREMOTEPID="+itoa(int(cred.Pid)),
				"UNIXREMOTEUID="+itoa(int(cred.Uid)),
				"UNIXREMOTEGID="+itoa(int(cred.Gid)))
		}
	}
	return append(env, "LAUNCH_JOB_LABEL="+label)
}

// boundLocal returns the TCPLOCALIP/TCPLOCALPORT entries of a listener
// bound to one address, computed once per socket (nil for a wildcard
// listener, whose local address depends on the connection).
func (rj *runJob) boundLocal(sk *listener.Socket) []string {
	if v, ok := rj.locals[sk]; ok {
		return v
	}
	var v []string
	if ap, err := netip.ParseAddrPort(sk.Addr); err == nil && !ap.Addr().IsUnspecified() {
		v = []string{"TCPLOCALIP=" + ap.Addr().Unmap().String(), "TCPLOCALPORT=" + itoa(int(ap.Port()))}
	}
	if rj.locals == nil {
		rj.locals = map[*listener.Socket][]string{}
	}
	rj.locals[sk] = v
	return v
}
