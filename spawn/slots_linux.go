//go:build linux && cgo

package spawn

import (
	"fmt"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Low fd slots for starts that share sockd's fd table.
//
// A vfork-style start copies the parent's whole fd table into the child and
// the child's exec then closes every copy: with 10,000 listening sockets
// open, that is 10,000 references taken and dropped per start (measured
// about 0.9 ms per start here). Instead the child is cloned with CLONE_FILES
// and, as its first act, takes a private copy of only the fds below a small
// limit (close_range(limit, ~0, CLOSE_RANGE_UNSHARE), Linux 5.9). Every fd
// the child needs must then be below that limit: fds that are not are
// duplicated (close-on-exec) onto slots reserved by ReserveLowFds, which a
// daemon calls first thing, while the lowest fd numbers are still free; after
// the start they are pointed back at /dev/null so no reference to a
// connection lingers in sockd. Without ReserveLowFds every start copies the
// whole table.
//
// Slots come in sets so that concurrent starts (the supervisor's spawner
// goroutines) each use their own. A start that finds no free set, or needs
// more slots than a set has, copies the whole table as before.
const (
	slotSets  = 4
	slotsEach = 8
)

// smallTable: below this fd number a source is cheaper to copy with the
// whole table (tests set it to 0 to force the shared path).
var smallTable int32 = 128

type slotSet struct {
	fds  [slotsEach]int
	used int
}

type slotPool struct {
	sets     chan *slotSet
	devnull  int
	limit    int // first fd the child does not copy
	disabled atomic.Bool
}

var (
	lowSlots    = &slotPool{sets: make(chan *slotSet, slotSets), devnull: -1}
	reserveOnce sync.Once
	reserveErr  error
)

func init() { lowSlots.disabled.Store(true) }

// ReserveLowFds reserves the low fd slots (33 fds on /dev/null,
// close-on-exec) that let starts share the fd table instead of copying it.
// Call it before opening sockets, while the low fd numbers are free; later
// calls do nothing. It is safe not to call it: starts then copy the table.
// Under an RLIMIT_NOFILE below 1024 nothing is reserved: the fds are worth
// more to the daemon than the saving, which only matters with many sockets.
func ReserveLowFds() error {
	reserveOnce.Do(func() {
		var rl unix.Rlimit
		if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err == nil && rl.Cur < 1024 {
			return
		}
		reserveErr = lowSlots.reserve()
	})
	return reserveErr
}

// reserve fills the pool. On failure the pool stays disabled.
func (p *slotPool) reserve() error {
	dn, err := unix.Open("/dev/null", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("spawn: reserving low fds: %w", err)
	}
	p.devnull = dn
	max := dn
	for i := 0; i < slotSets; i++ {
		set := &slotSet{}
		for j := range set.fds {
			fd, err := unix.FcntlInt(uintptr(dn), unix.F_DUPFD_CLOEXEC, 0)
			if err != nil {
				return fmt.Errorf("spawn: reserving low fds: %w", err)
			}
			set.fds[j] = fd
			if fd > max {
				max = fd
			}
		}
		p.sets <- set
	}
	p.limit = max + 1
	p.disabled.Store(false)
	return nil
}

// take returns a slot set with fds rewritten so that every source at or
// above the limit sits on a slot (sources repeated in fds share a slot), or
// nil when the whole table must be copied.
func (p *slotPool) take(fds []int32) *slotSet {
	if p.disabled.Load() {
		return nil
	}
	// New fds take the lowest free number, so sources all below
	// smallTable mean a small table: copying it costs less than moving the
	// sources onto slots and back (two dup3 per source).
	high := false
	for _, fd := range fds {
		if fd >= smallTable {
			high = true
			break
		}
	}
	if !high {
		return nil
	}
	var set *slotSet
	select {
	case set = <-p.sets:
	default:
		return nil
	}
	set.used = 0
	// First the distinct sources at or above the limit; fds is rewritten
	// only once every one of them sits on a slot.
	var src [slotsEach]int32
	for _, fd := range fds {
		if int(fd) < p.limit {
			continue
		}
		k := 0
		for k < set.used && src[k] != fd {
			k++
		}
		if k < set.used {
			continue
		}
		if set.used == slotsEach {
			p.give(set)
			return nil
		}
		if err := unix.Dup3(int(fd), set.fds[k], unix.O_CLOEXEC); err != nil {
			p.give(set)
			return nil
		}
		src[k] = fd
		set.used++
	}
	for i, fd := range fds {
		if int(fd) < p.limit {
			continue
		}
		for k := 0; k < set.used; k++ {
			if src[k] == fd {
				fds[i] = int32(set.fds[k])
				break
			}
		}
	}
	return set
}

// give points the used slots back at /dev/null and returns the set.
func (p *slotPool) give(set *slotSet) {
	for k := 0; k < set.used; k++ {
		_ = unix.Dup3(p.devnull, set.fds[k], unix.O_CLOEXEC)
	}
	set.used = 0
	p.sets <- set
}

func (p *slotPool) disable() { p.disabled.Store(true) }
