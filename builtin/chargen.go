package builtin

import "sync/atomic"

const (
	// lineLen is the number of pattern characters per chargen line (inetd's
	// LINESIZ); each line on the wire is lineLen+2 bytes with CR LF.
	lineLen = 72
	// ringLen is the number of printable ASCII characters, 0x20 through 0x7E.
	ringLen = 0x7f - 0x20
)

// chargenCycle is the TCP chargen output for one full period: ringLen lines,
// line i holding lineLen characters of the printable ring starting at its
// i-th character (wrapping), then CR LF. After ringLen lines the pattern
// starts over at the first character, so the stream is this slice repeated.
// It is never modified after init.
var chargenCycle = buildCycle()

func buildCycle() []byte {
	b := make([]byte, 0, ringLen*(lineLen+2))
	for i := 0; i < ringLen; i++ {
		for j := 0; j < lineLen; j++ {
			b = append(b, byte(0x20+(i+j)%ringLen))
		}
		b = append(b, '\r', '\n')
	}
	return b
}

// chargenNext counts UDP chargen replies so that each one starts one
// character later than the one before, as inetd's static ring pointer does.
var chargenNext atomic.Uint64

// chargenLine returns a fresh copy of chargen line n (mod ringLen), CR LF
// included.
func chargenLine(n uint64) []byte {
	off := int(n%ringLen) * (lineLen + 2)
	return append([]byte(nil), chargenCycle[off:off+lineLen+2]...)
}
