package handover

import (
	"encoding/binary"
	"errors"
	"slices"
)

// The socket table is State.Sockets as format 2 writes them: one byte
// string (State.SocketTable) instead of a gob slice of structs, which gob
// walks field by field through reflection (10,000 sockets: 12 ms to write
// and read back as gob, under 2 ms as the table; an upgrade writes the
// state twice and reads it twice). Every integer is a varint
// (encoding/binary), every string its length then its bytes:
//
//	table  = count socket...
//	socket = Label ID Fd Network Addr Listening(0|1) count option... created(0|1) [node] count node...
//	option = Name Value Set
//	node   = Path Type Dev Ino DirDev DirIno
//
// A socket field added later makes a new format version whose reader
// reads it after these.

// appendSockets appends the table of socks to b, grown once.
func appendSockets(b []byte, socks []Socket) []byte {
	b = slices.Grow(b, tableSize(socks))
	b = binary.AppendUvarint(b, uint64(len(socks)))
	for i := range socks {
		b = appendSocket(b, &socks[i])
	}
	return b
}

func appendSocket(b []byte, s *Socket) []byte {
	b = appendString(appendString(b, s.Label), s.ID)
	b = binary.AppendVarint(b, int64(s.Fd))
	b = appendString(appendString(b, s.Network), s.Addr)
	b = appendBool(b, s.Listening)
	b = binary.AppendUvarint(b, uint64(len(s.Options)))
	for _, o := range s.Options {
		b = appendString(appendString(appendString(b, o.Name), o.Value), o.Set)
	}
	b = appendBool(b, s.Created != nil)
	if s.Created != nil {
		b = appendNode(b, s.Created)
	}
	b = binary.AppendUvarint(b, uint64(len(s.Links)))
	for i := range s.Links {
		b = appendNode(b, &s.Links[i])
	}
	return b
}

// tableSize is about the size of socks' table: their strings, two bytes
// for each length, count and flag, and the most a device or inode number
// takes (append grows the table if a socket takes more).
func tableSize(socks []Socket) int {
	const node = 2 + 2 + 4*binary.MaxVarintLen64 // path length, type, dev, ino, dir dev, dir ino
	n := binary.MaxVarintLen64
	for i := range socks {
		s := &socks[i]
		n += len(s.Label) + len(s.ID) + len(s.Network) + len(s.Addr) + 16
		for _, o := range s.Options {
			n += len(o.Name) + len(o.Value) + len(o.Set) + 6
		}
		if s.Created != nil {
			n += len(s.Created.Path) + node
		}
		for _, l := range s.Links {
			n += len(l.Path) + node
		}
	}
	return n
}

func appendNode(b []byte, n *Node) []byte {
	b = appendString(b, n.Path)
	for _, v := range [...]uint64{uint64(n.Type), n.Dev, n.Ino, n.DirDev, n.DirIno} {
		b = binary.AppendUvarint(b, v)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

var errTable = errors.New("the socket table is cut short or malformed")

// readSockets decodes a table. Its strings share one copy of the table
// (one allocation, not five per socket).
func readSockets(table []byte) ([]Socket, error) {
	r := &tableReader{b: table, s: string(table)}
	n := r.uvarint()
	if r.err != nil || n > uint64(len(table)) { // every socket takes several bytes
		return nil, errTable
	}
	if n == 0 {
		return nil, nil
	}
	socks := make([]Socket, n)
	for i := range socks {
		r.socket(&socks[i])
	}
	if r.err != nil || r.i != len(table) {
		return nil, errTable
	}
	return socks, nil
}

// tableReader reads a table; after the first error every read gives
// zero values and err stays set.
type tableReader struct {
	b   []byte
	s   string // b as a string, for substrings
	i   int
	err error
}

func (r *tableReader) socket(s *Socket) {
	s.Label, s.ID = r.str(), r.str()
	s.Fd = int(r.varint())
	s.Network, s.Addr = r.str(), r.str()
	s.Listening = r.bool()
	if n := r.count(); n > 0 {
		s.Options = make([]Option, n)
		for i := range s.Options {
			s.Options[i] = Option{Name: r.str(), Value: r.str(), Set: r.str()}
		}
	}
	if r.bool() {
		s.Created = &Node{}
		r.node(s.Created)
	}
	if n := r.count(); n > 0 {
		s.Links = make([]Node, n)
		for i := range s.Links {
			r.node(&s.Links[i])
		}
	}
}

func (r *tableReader) node(n *Node) {
	n.Path = r.str()
	n.Type = uint32(r.uvarint())
	n.Dev, n.Ino, n.DirDev, n.DirIno = r.uvarint(), r.uvarint(), r.uvarint(), r.uvarint()
}

func (r *tableReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, k := binary.Uvarint(r.b[r.i:])
	if k <= 0 {
		r.err = errTable
		return 0
	}
	r.i += k
	return v
}

func (r *tableReader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, k := binary.Varint(r.b[r.i:])
	if k <= 0 {
		r.err = errTable
		return 0
	}
	r.i += k
	return v
}

// count is a list's length, refused when the bytes left cannot hold it.
func (r *tableReader) count() int {
	n := r.uvarint()
	if n > uint64(len(r.b)-r.i) {
		r.err = errTable
		return 0
	}
	return int(n)
}

func (r *tableReader) str() string {
	n := r.count()
	if r.err != nil {
		return ""
	}
	s := r.s[r.i : r.i+n]
	r.i += n
	return s
}

func (r *tableReader) bool() bool {
	if r.err != nil || r.i >= len(r.b) || r.b[r.i] > 1 {
		r.err = errTable
		return false
	}
	v := r.b[r.i] == 1
	r.i++
	return v
}
