//go:build linux

package supervisor

import (
	"errors"
	"sort"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/sockd/sockd/control"
	"github.com/sockd/sockd/job"
	"github.com/sockd/sockd/spawn"
)

// The main-process state machine (mainServer, its throttle and the job
// state) driven on a loop whose clock is fake and whose processes are
// fakes: no process is started and no time passes but the test's.

// testClock is a fake clock: its timers run when the test advances it.
type testClock struct {
	now    time.Time
	timers []*testTimer
}

type testTimer struct {
	at      time.Time
	f       func()
	stopped bool
}

func (t *testTimer) Stop() bool {
	was := !t.stopped
	t.stopped = true
	return was
}

func (c *testClock) Now() time.Time { return c.now }

func (c *testClock) AfterFunc(d time.Duration, f func()) stopper {
	t := &testTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

// fakePid is the first pid a fake process gets: above any pid_max, so a
// signal to it or its group reaches no real process.
const fakePid = 1 << 23

// fakeProcs are fake processes: each start is recorded and its exit is
// the test's to make.
type fakeProcs struct {
	clock   *testClock
	next    int
	started []*spawn.Process
	onExit  map[int]func(spawn.ExitStatus)
	failing int // starts that fail from now on
}

func (f *fakeProcs) start(_ *spawn.Template, _ []int, _ []string, _ bool) (*spawn.Process, error) {
	if f.failing > 0 {
		f.failing--
		return nil, errors.New("exec: no such file (fake)")
	}
	f.next++
	p := &spawn.Process{Pid: fakePid + f.next, Started: f.clock.now}
	f.started = append(f.started, p)
	return p, nil
}

func (f *fakeProcs) watch(p *spawn.Process, _ procJob, onExit func(spawn.ExitStatus)) {
	f.onExit[p.Pid] = onExit
}

// machine is one supervisor loop over one job with the fakes.
type machine struct {
	t     *testing.T
	s     *Supervisor
	clock *testClock
	procs *fakeProcs
	rj    *runJob
	t0    time.Time
}

func newMachine(t *testing.T, j *job.Job) *machine {
	t.Helper()
	l, err := newLoop()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.close)
	clk := &testClock{now: time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)}
	l.clock = clk
	procs := &fakeProcs{clock: clk, onExit: map[int]func(spawn.ExitStatus){}}
	s := &Supervisor{log: zap.NewNop(), loop: l, procs: procs, devnull: -1,
		jobs: map[string]*runJob{}, retired: map[*runJob]struct{}{}}
	m := &machine{t: t, s: s, clock: clk, procs: procs, t0: clk.now}
	tmpl, _, err := spawn.NewTemplate(j, spawn.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m.rj = newRunJob(s, j, tmpl) // its Start is never called: procs are fakes
	s.jobs[j.Label] = m.rj
	return m
}

// advance moves the clock on by d, running each timer that comes due on
// the loop, in order.
func (m *machine) advance(d time.Duration) {
	end := m.clock.now.Add(d)
	for {
		sort.SliceStable(m.clock.timers, func(a, b int) bool { return m.clock.timers[a].at.Before(m.clock.timers[b].at) })
		var due *testTimer
		for i, t := range m.clock.timers {
			if !t.at.After(end) {
				due = t
				m.clock.timers = append(m.clock.timers[:i], m.clock.timers[i+1:]...)
				break
			}
		}
		if due == nil {
			m.clock.now = end
			return
		}
		m.clock.now = due.at
		if !due.stopped {
			due.f() // posts the timer's run to the loop
			m.s.loop.runQueue()
		}
	}
}

// exit makes the running main process exit with st.
func (m *machine) exit(st spawn.ExitStatus) {
	m.t.Helper()
	c := m.rj.main()
	if c == nil {
		m.t.Fatalf("exit: no main process runs (state %s)", m.rj.stateText())
	}
	f := m.procs.onExit[c.p.Pid]
	delete(m.procs.onExit, c.p.Pid)
	f(st)
}

// starts are the times of the starts since t0.
func (m *machine) starts() []time.Duration {
	var out []time.Duration
	for _, p := range m.procs.started {
		out = append(out, p.Started.Sub(m.t0))
	}
	return out
}

func (m *machine) wantState(want jobState) {
	m.t.Helper()
	if st, _ := m.rj.jobState(); st != want {
		m.t.Fatalf("at %v: state %v, want %v", m.clock.now.Sub(m.t0), st, want)
	}
}

func keepAliveJob() *job.Job {
	return &job.Job{Label: "test.keepalive", Program: "/bin/true", ProgramArguments: []string{"/bin/true"},
		KeepAlive: job.KeepAlive{Always: true}, ThrottleInterval: 10 * time.Second}
}

var crash = spawn.ExitStatus{Code: -1, Signal: 11}

// A KeepAlive job that crashes at once restarts ThrottleInterval after its
// last start, not sooner; print shows the timer's time as the next start.
func TestMachineCrashLoop(t *testing.T) {
	m := newMachine(t, keepAliveJob())
	m.rj.activate(true)
	m.wantState(stateRunning)
	for i := 0; i < 3; i++ {
		m.advance(200 * time.Millisecond)
		m.exit(crash)
		m.wantState(stateThrottled)
		if next := m.rj.status(true).NextStart; next != stamp(m.clock.now.Add(9800*time.Millisecond)) {
			t.Fatalf("next start %q, want 9.8 s after the crash", next)
		}
		m.advance(9700 * time.Millisecond)
		m.wantState(stateThrottled)
		m.advance(100 * time.Millisecond)
		m.wantState(stateRunning)
	}
	want := []time.Duration{0, 10 * time.Second, 20 * time.Second, 30 * time.Second}
	if got := m.starts(); !equalDurations(got, want) {
		t.Fatalf("starts at %v, want %v", got, want)
	}
	if st := m.rj.stats; st.spawned != 4 || st.exits != 3 {
		t.Errorf("spawned %d, exits %d; want 4 and 3", st.spawned, st.exits)
	}
}

// sockd stop of a KeepAlive job: it comes back through the throttle
// (launchctl stop). kickstart -k: the running instance is stopped and the
// new one starts as soon as it has exited, whatever the throttle says.
func TestMachineStopAndKickstart(t *testing.T) {
	m := newMachine(t, keepAliveJob())
	m.rj.activate(true)
	m.advance(time.Second)
	resp, _ := m.rj.control(control.Request{Cmd: control.CmdStop}, "test")
	if resp.Status != control.OK {
		t.Fatalf("stop: %+v", resp)
	}
	m.wantState(stateStopping)
	m.exit(spawn.ExitStatus{Code: -1, Signal: 15})
	m.wantState(stateThrottled) // 9 s of the throttle are left
	m.advance(9 * time.Second)
	m.wantState(stateRunning)

	m.advance(time.Second) // 1 s into the second run: the throttle would wait 9 s
	resp, wait := m.rj.control(control.Request{Cmd: control.CmdKickstart, Kill: true}, "kickstart by uid 0")
	if resp.Status != control.OK || wait == nil {
		t.Fatalf("kickstart -k: %+v, wait %v", resp, wait)
	}
	m.exit(spawn.ExitStatus{Code: -1, Signal: 15})
	select {
	case <-wait.done:
	default:
		t.Fatal("kickstart -k: the waiter was not released by the restart")
	}
	m.wantState(stateRunning)
	want := []time.Duration{0, 10 * time.Second, 11 * time.Second}
	if got := m.starts(); !equalDurations(got, want) {
		t.Fatalf("starts at %v, want %v", got, want)
	}
	if why, _ := m.rj.hist.why(); why != "kickstart by uid 0" {
		t.Errorf("blame: %q", why)
	}
}

// A start that fails is retried after max(ThrottleInterval, minRetry);
// meanwhile the job is throttled with the failure as its last exit.
func TestMachineStartFailure(t *testing.T) {
	j := keepAliveJob()
	j.ThrottleInterval = 0
	m := newMachine(t, j)
	m.procs.failing = 2
	m.rj.activate(true)
	m.wantState(stateThrottled)
	if got := m.rj.hist.lastExit; got != "start failed: exec: no such file (fake)" {
		t.Fatalf("last exit %q", got)
	}
	m.advance(minRetry)
	m.wantState(stateThrottled) // the second start failed too
	m.advance(minRetry)
	m.wantState(stateRunning)
	if st := m.rj.stats; st.spawnFailed != 2 || st.spawned != 1 {
		t.Errorf("spawn failures %d, spawned %d; want 2 and 1", st.spawnFailed, st.spawned)
	}
	if got := m.starts(); !equalDurations(got, []time.Duration{2 * minRetry}) {
		t.Errorf("started at %v", got)
	}
}

// A redefinition while the process runs stops it; the new definition
// takes over at its exit and starts at once. A removal stops it and the
// job is gone once it has exited.
func TestMachineRedefineAndRetire(t *testing.T) {
	m := newMachine(t, keepAliveJob())
	m.rj.activate(true)
	m.advance(time.Second)
	first := m.rj.def
	changed := keepAliveJob()
	changed.ProgramArguments = []string{"/bin/true", "changed"}
	m.rj.redefine(changed, nil)
	m.wantState(stateStopping)
	if m.rj.def != first {
		t.Fatal("the new definition applied before the old process exited")
	}
	m.exit(spawn.ExitStatus{Code: -1, Signal: 15})
	if m.rj.def != changed {
		t.Fatal("the new definition did not apply at the exit")
	}
	m.wantState(stateRunning) // started at once: a redefinition forgets the throttle
	if got := m.starts(); !equalDurations(got, []time.Duration{0, time.Second}) {
		t.Fatalf("starts at %v", got)
	}

	delete(m.s.jobs, m.rj.def.Label)
	m.rj.retire()
	if _, ok := m.s.retired[m.rj]; !ok {
		t.Fatal("a removed job with a process running is not kept until it exits")
	}
	m.wantState(stateStopping)
	m.exit(spawn.ExitStatus{Code: -1, Signal: 15})
	if _, ok := m.s.retired[m.rj]; ok || m.rj.running() != 0 {
		t.Fatalf("after the exit: retired %v, running %d", ok, m.rj.running())
	}
	m.advance(time.Minute)
	if len(m.procs.started) != 2 {
		t.Fatalf("a removed KeepAlive job started again: %d starts", len(m.procs.started))
	}
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
