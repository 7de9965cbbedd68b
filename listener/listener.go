// Package listener creates and owns every socket of every sockd job: TCP,
// UDP and Unix (stream, datagram, seqpacket) sockets, IPv4 and IPv6,
// multicast receivers and SockPassive=false client sockets, opened the way
// launchd opens them (the Sockets key of launchd.plist(5)), but with safer
// Unix socket paths.
//
// Sockets are raw, close-on-exec, non-blocking file descriptors made with
// socket(2), not net.Listener values: the supervisor polls them from its own
// epoll loop and hands the raw fds to children. One Registry owns every fd;
// nothing else closes them. Registry.Sync keeps a socket open across reloads
// while its job.Endpoint.ID() and owning label stay the same, so clients of
// unchanged jobs never see a refused connection during a reload.
package listener

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/sockd/sockd/job"
)

// Socket is one open socket of one job.
type Socket struct {
	// Endpoint is the definition the socket was opened for. Registry.Sync
	// (SyncPlan.KeepEndpoints) points it at the newest (equal) definition
	// when it keeps the socket; callers must not read it concurrently.
	Endpoint *job.Endpoint
	// Label is the owning job.
	Label string
	// Fd is the raw descriptor: close-on-exec and O_NONBLOCK as created.
	Fd int
	// Network is the Go network name: "tcp4", "udp6", "unix", "unixgram",
	// "unixpacket".
	Network string
	// Addr is the actual local address: "ip:port" with a port 0 resolved
	// through getsockname, or the Unix path (for a SockPassive=false Unix
	// socket, the path it is connected to).
	Addr string
	// Listening is true for passive stream and seqpacket sockets, the ones
	// accept(2) works on.
	Listening bool
	// Options are the endpoint's SockdOptions as the kernel reports them
	// after listen, in job.OptionSpecs order.
	Options []Option
	// Notes are warnings about the options: what the kernel granted less
	// of than asked (a capped buffer or backlog). Registry.Sync logs them.
	Notes []string

	// created is the Unix socket node this socket's bind made (or the
	// FIFO it made or took), or nil.
	created *createdPath
	// links are the symbolic links SockdOptions.Symlinks made.
	links  []*createdPath
	closed atomic.Bool
	// ident is the endpoint identity once known (see id): handed with a
	// socket inherited across an upgrade, or its Endpoint's.
	ident string
}

// createdPath records a filesystem node sockd created, by path and inode,
// so that only that very node is ever removed.
type createdPath struct {
	path           string
	typ            uint32 // S_IFSOCK, S_IFIFO or S_IFLNK
	dev, ino       uint64
	dirDev, dirIno uint64 // the directory it was bound in
}

func (s *Socket) String() string {
	group := ""
	if s.Endpoint != nil {
		group = s.Endpoint.Group
	}
	str := fmt.Sprintf("%s %s %s %s fd=%d", s.Label, group, s.Network, s.Addr, s.Fd)
	if s.Listening {
		str += " listening"
	}
	return str
}

// Option is one SockdOptions key of an open socket as the kernel reports
// it.
type Option struct {
	Name string
	// Value is what getsockopt reports (the kernel's doubled buffer size,
	// DeferAccept rounded up to its retransmission steps, Backlog capped
	// at net.core.somaxconn), or the value as set where the kernel has no
	// getsockopt for it (DirectoryMode, Symlinks, a Unix Backlog).
	Value string
	// Set is the job file's value when it differs from Value.
	Set string
}

func (op Option) String() string {
	if op.Set != "" {
		return fmt.Sprintf("%s=%s (set %s)", op.Name, op.Value, op.Set)
	}
	return op.Name + "=" + op.Value
}

// Close closes a socket obtained from Open and removes the Unix socket node
// its bind created (only if the node at that path is still the same inode).
// It is idempotent. Sockets held by a Registry are closed by the Registry
// only; do not call Close on them.
func (s *Socket) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	if err := closeSocket(s); err != nil {
		return fmt.Errorf("job %s: socket %s: close: %w", s.Label, s.Addr, err)
	}
	return nil
}

// OpenError is the error Open returns. Its text names the job, the socket
// group, the key path, the address, the failing operation and the reason,
// plus a hint when one is known:
//
//	job org.example.web: socket Listeners (Sockets.Listeners[0]) 0.0.0.0:80: bind: permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE; use a port >= 1024 for a per-user job)
//
// It unwraps to the system error, so errors.Is(err, unix.EADDRINUSE) works.
type OpenError struct {
	Label   string // owning job
	Group   string // Sockets key
	Key     string // key path of the socket dictionary, e.g. Sockets.Listeners[0]
	Address string // address or Unix path as defined
	Op      string // failing operation: "socket", "bind", "listen", "connect", ...
	Err     error  // underlying error, usually a unix.Errno
	Hint    string // what to do about it; may be empty
}

func (e *OpenError) Error() string {
	where := "socket " + e.Group
	if e.Key != "" {
		where += " (" + e.Key + ")"
	}
	msg := fmt.Sprintf("job %s: %s %s: %s: %v", e.Label, where, e.Address, e.Op, e.Err)
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	return msg
}

func (e *OpenError) Unwrap() error { return e.Err }

// Registry owns every socket of every job. It is safe for concurrent use.
type Registry struct {
	log *zap.Logger

	mu    sync.Mutex
	byJob map[string][]*Socket // label -> sockets in hand-off order
}

// NewRegistry returns an empty registry logging to log (nil: no logging).
func NewRegistry(log *zap.Logger) *Registry {
	if log == nil {
		log = zap.NewNop()
	}
	return &Registry{log: log, byJob: make(map[string][]*Socket)}
}

// Sync makes the registry hold exactly the sockets of jobs (the caller leaves
// disabled jobs out): Plan, then Close, Open and KeepEndpoints of the plan.
//
// A socket whose Endpoint.ID() and owning label are unchanged is kept open:
// the same *Socket, the same fd, its Endpoint updated to the new definition.
// Sockets no longer wanted are closed, and the Unix paths they created
// removed, before any new socket is opened, so a changed definition on the
// same address can bind again.
//
// The first result maps every job label to its sockets in hand-off order
// (job.Endpoints() order). An endpoint that fails to open is left out of its
// job's slice, as launchd leaves it out of the fd array, and its error is
// returned in the second result, joined per label (errors.Join), so the
// caller can fail only that job. The registry holds the job's other sockets
// until a later Sync leaves the job out.
//
// A SockPassive=false TCP socket may take up to its connect timeout (5s).
func (r *Registry) Sync(jobs []*job.Job) (map[string][]*Socket, map[string]error) {
	p := r.Plan(jobs)
	p.Close()
	socks, errs := p.Open()
	p.KeepEndpoints()
	return socks, errs
}

// SyncPlan is a Sync worked out and not yet done, so that a caller can
// stop using the sockets it will close (Closing) before they are closed
// and open the new ones off its event loop. Its steps are Close, Open and
// KeepEndpoints, in that order, each once; nothing else may change the
// registry from Plan to Open.
type SyncPlan struct {
	r       *Registry
	plans   map[string][]slot
	owners  map[string]*job.Domain // a user domain's jobs: bound as its user
	order   []string
	errs    map[string][]error
	closing []*Socket
}

// slot is one wanted endpoint and the open socket kept for it, if any.
type slot struct {
	ep   *job.Endpoint
	kept *Socket
}

// Plan matches every endpoint of jobs against the open sockets; it
// changes nothing.
func (r *Registry) Plan(jobs []*job.Job) *SyncPlan {
	r.mu.Lock()
	defer r.mu.Unlock()

	type key struct{ label, id string }
	pool := make(map[key][]*Socket)
	for label, socks := range r.byJob {
		for _, s := range socks {
			k := key{label, s.id()}
			pool[k] = append(pool[k], s)
		}
	}
	p := &SyncPlan{r: r, plans: make(map[string][]slot), owners: make(map[string]*job.Domain), errs: make(map[string][]error)}
	for _, j := range jobs {
		if j == nil {
			continue
		}
		if _, dup := p.plans[j.Label]; dup {
			p.errs[j.Label] = append(p.errs[j.Label],
				fmt.Errorf("job %s: defined more than once; only the first definition gets sockets", j.Label))
			continue
		}
		eps := j.Endpoints()
		slots := make([]slot, len(eps))
		for i, ep := range eps {
			slots[i].ep = ep
			k := key{j.Label, ep.ID()}
			if q := pool[k]; len(q) > 0 {
				slots[i].kept, pool[k] = q[0], q[1:]
			}
		}
		p.plans[j.Label] = slots
		if j.Domain != nil {
			p.owners[j.Label] = j.Domain
		}
		p.order = append(p.order, j.Label)
	}
	for _, q := range pool {
		p.closing = append(p.closing, q...)
	}
	return p
}

// Closing returns the open sockets the plan closes.
func (p *SyncPlan) Closing() []*Socket { return p.closing }

// Close closes the sockets no longer wanted (and removes the Unix paths
// they created), before anything new is opened.
func (p *SyncPlan) Close() {
	for _, s := range p.closing {
		if err := s.Close(); err != nil {
			p.r.log.Warn("closing socket", zap.String("job", s.Label), zap.Error(err))
			continue
		}
		p.r.log.Debug("socket closed", zap.String("job", s.Label), zap.Stringer("socket", s))
	}
}

// Open opens the new sockets and makes the registry hold the plan's
// sockets; it returns them per label and the errors (see Sync). A kept
// socket's Endpoint still points at the old definition until
// KeepEndpoints.
func (p *SyncPlan) Open() (map[string][]*Socket, map[string]error) {
	r := p.r
	r.mu.Lock()
	defer r.mu.Unlock()
	parts := splitJobs(p.order, p.opening())
	got := make([]openedPart, len(parts))
	openBatch(len(parts), func(i int, open openFunc) {
		got[i] = openedPart{socks: make(map[string][]*Socket, len(parts[i])), errs: map[string][]error{}}
		for _, label := range parts[i] {
			got[i].socks[label] = p.openJob(label, open, got[i].errs)
		}
	})
	result := make(map[string][]*Socket, len(p.order))
	next := make(map[string][]*Socket, len(p.order))
	for _, g := range got {
		for label, socks := range g.socks {
			next[label] = socks
			result[label] = slices.Clone(socks)
		}
		for label, es := range g.errs {
			p.errs[label] = append(p.errs[label], es...)
		}
	}
	r.byJob = next

	var joined map[string]error
	if len(p.errs) > 0 {
		joined = make(map[string]error, len(p.errs))
		for label, es := range p.errs {
			joined[label] = errors.Join(es...)
		}
	}
	return result, joined
}

// openedPart is what opening one part of a plan's jobs gave.
type openedPart struct {
	socks map[string][]*Socket
	errs  map[string][]error
}

// opening counts the sockets the plan opens (not kept).
func (p *SyncPlan) opening() int {
	n := 0
	for _, slots := range p.plans {
		for _, sl := range slots {
			if sl.kept == nil {
				n++
			}
		}
	}
	return n
}

// partMin is the fewest sockets to open per part: a batch opens in
// parts, on bind threads of their own, only when each part has at least
// this many (10,000 Unix sockets took 210 ms on one thread).
const partMin = 512

// splitJobs cuts labels into parts of about equal size for n sockets
// to open: one part below 2*partMin, at most maxParts.
func splitJobs(labels []string, n int) [][]string {
	parts := min(maxParts(), max(1, n/partMin))
	if parts <= 1 || len(labels) < parts {
		return [][]string{labels}
	}
	out := make([][]string, 0, parts)
	size := (len(labels) + parts - 1) / parts
	for i := 0; i < len(labels); i += size {
		out = append(out, labels[i:min(i+size, len(labels))])
	}
	return out
}

// openJob returns the sockets of one job: kept ones and newly opened ones,
// in hand-off order; errors go to errs.
func (p *SyncPlan) openJob(label string, open openFunc, errs map[string][]error) []*Socket {
	socks := make([]*Socket, 0, len(p.plans[label]))
	for _, sl := range p.plans[label] {
		if sl.kept != nil {
			socks = append(socks, sl.kept)
			p.r.log.Debug("socket kept", zap.String("job", label), zap.Stringer("socket", sl.kept))
			continue
		}
		s, err := open(label, sl.ep, p.owners[label])
		if err != nil {
			// The caller gets the error and reports it with what it means
			// for the job.
			errs[label] = append(errs[label], err)
			p.r.log.Debug("socket not opened", zap.String("job", label), zap.Error(err))
			continue
		}
		socks = append(socks, s)
		p.r.log.Debug("socket opened", zap.String("job", label), zap.Stringer("socket", s))
		for _, n := range s.Notes {
			p.r.log.Warn("socket option granted in part", zap.String("job", label), zap.Stringer("socket", s), zap.String("why", n))
		}
	}
	return socks
}

// openFunc opens one endpoint of a job; as, when not nil, is the user
// domain whose user's rights the socket is made with.
type openFunc func(label string, ep *job.Endpoint, as *job.Domain) (*Socket, error)

// KeepEndpoints points every kept socket's Endpoint at its new (equal)
// definition. Call it where the sockets' users read Endpoint.
func (p *SyncPlan) KeepEndpoints() {
	for _, label := range p.order {
		for _, sl := range p.plans[label] {
			if sl.kept != nil {
				sl.kept.Endpoint = sl.ep
			}
		}
	}
}

// Sockets returns the sockets of one job in hand-off order (nil if none).
func (r *Registry) Sockets(label string) []*Socket {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.byJob[label])
}

// Len returns the number of open sockets.
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, socks := range r.byJob {
		n += len(socks)
	}
	return n
}

// CloseAll closes every socket and removes every Unix path the registry
// created. The registry is empty afterwards and may be synced again.
func (r *Registry) CloseAll() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for _, socks := range r.byJob {
		for _, s := range socks {
			if err := s.Close(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	r.byJob = make(map[string][]*Socket)
	return errors.Join(errs...)
}
