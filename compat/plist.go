package compat

import (
	"bytes"
	"fmt"
	"strconv"
	"time"

	"howett.net/plist"

	"github.com/sockd/sockd/job"
)

// WritePlist renders j as a launchd XML job file (indented with tabs) that
// the launchd loader reads back into the same job: every field is written,
// defaults are left out, and sockd's extension keys carry what launchd has
// no key for (SockdLimits, SockdInternal, SockdProxy, SockdOptions).
func WritePlist(j *job.Job) ([]byte, error) {
	if j == nil {
		return nil, fmt.Errorf("write plist: nil job")
	}
	if j.Label == "" {
		return nil, fmt.Errorf("write plist: job from %s has no Label", j.File)
	}
	m := map[string]any{"Label": j.Label}
	str := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	flag := func(k string, v bool) {
		if v {
			m[k] = true
		}
	}
	secs := func(k string, d, def time.Duration) error {
		if d == def {
			return nil
		}
		if d < 0 || d%time.Second != 0 {
			return fmt.Errorf("write plist: job %s: %s %v is not a whole number of seconds", j.Label, k, d)
		}
		m[k] = int64(d / time.Second)
		return nil
	}

	str("Program", j.Program)
	if len(j.ProgramArguments) > 0 {
		m["ProgramArguments"] = j.ProgramArguments
	}
	flag("EnableGlobbing", j.EnableGlobbing)
	flag("Disabled", j.Disabled)
	str("UserName", j.UserName)
	str("GroupName", j.GroupName)
	if !j.InitGroups {
		m["InitGroups"] = false
	}
	str("WorkingDirectory", j.WorkingDirectory)
	str("RootDirectory", j.RootDirectory)
	if len(j.EnvironmentVariables) > 0 {
		env := map[string]string{}
		for _, e := range j.EnvironmentVariables {
			env[e.Name] = e.Value
		}
		m["EnvironmentVariables"] = env
	}
	if j.Umask != nil {
		m["Umask"] = int64(*j.Umask)
	}
	str("StandardInPath", j.StandardInPath)
	str("StandardOutPath", j.StandardOutPath)
	str("StandardErrorPath", j.StandardErrorPath)
	rl := func(k string, list []job.RLimit) {
		if len(list) == 0 {
			return
		}
		d := map[string]uint64{}
		for _, r := range list {
			d[r.Name] = r.Value
		}
		m[k] = d
	}
	rl("SoftResourceLimits", j.SoftResourceLimits)
	rl("HardResourceLimits", j.HardResourceLimits)
	if j.Nice != nil {
		m["Nice"] = int64(*j.Nice)
	}
	flag("SessionCreate", j.SessionCreate)
	flag("AbandonProcessGroup", j.AbandonProcessGroup)
	flag("SockdLogConnections", j.LogConnections)
	if ka := keepAlive(j.KeepAlive); ka != nil {
		m["KeepAlive"] = ka
	}
	flag("RunAtLoad", j.RunAtLoad)
	if err := secs("ThrottleInterval", j.ThrottleInterval, job.DefaultThrottleInterval); err != nil {
		return nil, err
	}
	if err := secs("ExitTimeOut", j.ExitTimeOut, job.DefaultExitTimeOut); err != nil {
		return nil, err
	}
	if err := secs("TimeOut", j.TimeOut, job.DefaultTimeOut); err != nil {
		return nil, err
	}
	if j.Inetd != nil {
		m["inetdCompatibility"] = map[string]any{"Wait": j.Inetd.Wait}
	}
	if len(j.Sockets) > 0 {
		socks := map[string]any{}
		for _, g := range j.Sockets {
			if len(g.Sockets) == 1 {
				socks[g.Name] = socketDict(&g.Sockets[0])
				continue
			}
			arr := make([]any, 0, len(g.Sockets))
			for i := range g.Sockets {
				arr = append(arr, socketDict(&g.Sockets[i]))
			}
			socks[g.Name] = arr
		}
		m["Sockets"] = socks
	}
	if l := limitsDict(j.Limits, j.Internal != "" && job.DatagramOnly(j)); l != nil {
		m["SockdLimits"] = l
	}
	str("SockdInternal", j.Internal)
	if p := j.Proxy; p != nil {
		d := map[string]any{"Backend": p.Backend}
		if p.Notify {
			d["Notify"] = true
		}
		for _, t := range []struct {
			k   string
			v   time.Duration
			def time.Duration
		}{
			{"ReadyTimeout", p.ReadyTimeout, job.DefaultProxyReadyTimeout},
			{"IdleTimeout", p.IdleTimeout, 0},
			{"StopAfterIdle", p.StopAfterIdle, 0},
		} {
			if t.v == t.def {
				continue
			}
			if t.v < 0 || t.v%time.Second != 0 {
				return nil, fmt.Errorf("write plist: job %s: SockdProxy.%s %v is not a whole number of seconds", j.Label, t.k, t.v)
			}
			d[t.k] = int64(t.v / time.Second)
		}
		if p.ProxyProtocol != "" {
			d["ProxyProtocol"] = p.ProxyProtocol
		}
		m["SockdProxy"] = d
	}

	var buf bytes.Buffer
	enc := plist.NewEncoderForFormat(&buf, plist.XMLFormat)
	enc.Indent("\t")
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("write plist: job %s: %w", j.Label, err)
	}
	if buf.Len() > 0 && buf.Bytes()[buf.Len()-1] != '\n' {
		buf.WriteByte('\n')
	}
	return buf.Bytes(), nil
}

func keepAlive(k job.KeepAlive) any {
	if k.SuccessfulExit == nil && k.Crashed == nil && len(k.PathState) == 0 &&
		len(k.OtherJobEnabled) == 0 && !k.AfterInitialDemand {
		if k.Always {
			return true
		}
		return nil
	}
	d := map[string]any{}
	if k.SuccessfulExit != nil {
		d["SuccessfulExit"] = *k.SuccessfulExit
	}
	if k.Crashed != nil {
		d["Crashed"] = *k.Crashed
	}
	if len(k.PathState) > 0 {
		ps := map[string]bool{}
		for _, p := range k.PathState {
			ps[p.Path] = p.Exists
		}
		d["PathState"] = ps
	}
	if len(k.OtherJobEnabled) > 0 {
		oj := map[string]bool{}
		for _, o := range k.OtherJobEnabled {
			oj[o.Label] = o.Enabled
		}
		d["OtherJobEnabled"] = oj
	}
	if k.AfterInitialDemand {
		d["AfterInitialDemand"] = true
	}
	return d
}

func socketDict(s *job.Socket) map[string]any {
	d := map[string]any{"SockType": s.Type.String()}
	if !s.Passive {
		d["SockPassive"] = false
	}
	if s.NodeName != "" {
		d["SockNodeName"] = s.NodeName
	}
	if s.PathName != "" {
		d["SockPathName"] = s.PathName
	} else {
		svc := s.ServiceName
		transport := "tcp"
		if s.Type == job.Dgram {
			transport = "udp"
		}
		if p, err := resolvePort(transport, svc); err != nil || p != s.Port {
			svc = strconv.Itoa(s.Port)
		}
		// Always written, "0" too: sockd refuses SockNodeName without
		// SockServiceName (launchd's random port, usually a typo).
		d["SockServiceName"] = svc
		switch s.Family {
		case job.IPv4:
			d["SockFamily"] = "IPv4"
		case job.IPv6:
			d["SockFamily"] = "IPv6"
		}
		switch s.Protocol {
		case "tcp":
			d["SockProtocol"] = "TCP"
		case "udp":
			d["SockProtocol"] = "UDP"
		}
	}
	if s.PathMode != nil {
		d["SockPathMode"] = int64(*s.PathMode)
	}
	if s.PathOwner != nil {
		d["SockPathOwner"] = int64(*s.PathOwner)
	}
	if s.PathGroup != nil {
		d["SockPathGroup"] = int64(*s.PathGroup)
	}
	if s.MulticastGroup != "" {
		d["MulticastGroup"] = s.MulticastGroup
	}
	if o := s.Options.Dict(); o != nil {
		d["SockdOptions"] = o
	}
	return d
}

// limitsDict is the SockdLimits dictionary of l; datagrams says the job is
// an internal service with only datagram sockets, which may not set
// MaxChildren or MaxPerSource.
func limitsDict(l job.Limits, datagrams bool) map[string]any {
	if l.MaxChildren == DefaultMaxChildren && l.MaxPerSource == 0 && l.Rate == 0 && l.Burst == 0 &&
		l.Pause == DefaultPause && len(l.Allow) == 0 && len(l.Deny) == 0 {
		return nil
	}
	d := map[string]any{}
	if datagrams {
		l.MaxChildren, l.MaxPerSource = 0, 0
	}
	if l.MaxChildren != 0 {
		d["MaxChildren"] = int64(l.MaxChildren)
	}
	if l.MaxPerSource != 0 {
		d["MaxPerSource"] = int64(l.MaxPerSource)
	}
	if l.Rate != 0 {
		d["Rate"] = l.Rate
	}
	if l.Burst != 0 {
		d["Burst"] = int64(l.Burst)
	}
	if l.Pause%time.Second == 0 {
		d["PauseSeconds"] = int64(l.Pause / time.Second)
	} else {
		d["PauseSeconds"] = l.Pause.Seconds()
	}
	if len(l.Allow) > 0 {
		d["Allow"] = l.Allow
	}
	if len(l.Deny) > 0 {
		d["Deny"] = l.Deny
	}
	return d
}
