package listener

import (
	"fmt"

	"github.com/sockd/sockd/internal/handover"
)

// Sockets handed across an in-place upgrade (package handover): the old
// image describes each socket it holds, the new one rebuilds the Socket
// around the inherited fd, and its first Sync keeps every socket whose
// label and endpoint identity still match, as a reload keeps them.

// Handover describes every socket the registry holds.
func (r *Registry) Handover() []handover.Socket {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, socks := range r.byJob {
		n += len(socks)
	}
	out := make([]handover.Socket, 0, n)
	for label, socks := range r.byJob {
		for _, s := range socks {
			out = append(out, s.handover(label))
		}
	}
	return out
}

func (s *Socket) handover(label string) handover.Socket {
	h := handover.Socket{Label: label, ID: s.id(), Fd: s.Fd, Network: s.Network, Addr: s.Addr, Listening: s.Listening}
	for _, o := range s.Options {
		h.Options = append(h.Options, handover.Option{Name: o.Name, Value: o.Value, Set: o.Set})
	}
	if s.created != nil {
		n := s.created.node()
		h.Created = &n
	}
	for _, l := range s.links {
		h.Links = append(h.Links, l.node())
	}
	return h
}

func (c *createdPath) node() handover.Node {
	return handover.Node{Path: c.path, Type: c.typ, Dev: c.dev, Ino: c.ino, DirDev: c.dirDev, DirIno: c.dirIno}
}

func fromNode(n handover.Node) *createdPath {
	return &createdPath{path: n.Path, typ: n.Type, dev: n.Dev, ino: n.Ino, dirDev: n.DirDev, dirIno: n.DirIno}
}

// id is the socket's endpoint identity: the one it was handed with, or
// its Endpoint's, computed once (a Sync keeps a socket only for an
// endpoint of the same identity, so it never changes). The registry's
// lock is held (Plan, Handover).
func (s *Socket) id() string {
	if s.ident == "" && s.Endpoint != nil {
		s.ident = s.Endpoint.ID()
	}
	return s.ident
}

// Adopt makes the registry hold the inherited sockets, close-on-exec
// again, before the first Sync: that Sync keeps those whose job still
// defines the same endpoint and closes the others (as a reload would).
// A socket whose fd is not an open socket is left out, with an error.
func (r *Registry) Adopt(socks []handover.Socket) []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	fds := make([]int, 0, len(socks))
	defer func() { closeOnExec(fds) }()
	for _, h := range socks {
		fds = append(fds, h.Fd) // not left to a child, whatever it is
		if err := checkInherited(h.Fd); err != nil {
			errs = append(errs, fmt.Errorf("job %s: socket %s: inherited fd %d: %w", h.Label, h.Addr, h.Fd, err))
			continue
		}
		s := &Socket{Label: h.Label, Fd: h.Fd, Network: h.Network, Addr: h.Addr, Listening: h.Listening, ident: h.ID}
		for _, o := range h.Options {
			s.Options = append(s.Options, Option{Name: o.Name, Value: o.Value, Set: o.Set})
		}
		if h.Created != nil {
			s.created = fromNode(*h.Created)
		}
		for _, l := range h.Links {
			s.links = append(s.links, fromNode(l))
		}
		r.byJob[h.Label] = append(r.byJob[h.Label], s)
	}
	return errs
}
