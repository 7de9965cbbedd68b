package job

import (
	"errors"
	"fmt"
)

// maxValues bounds the number of values a decoded property list may expand
// to. Binary plists share objects by reference, so a small file can
// describe an exponentially large tree; this check runs before decoding.
const maxValues = 1 << 20

// checkBinaryDepth walks the object graph of a binary plist (bplist00)
// without decoding it and fails when the tree is nested deeper than max,
// contains a cycle, or would expand to more than maxValues values. It
// validates only what it needs; howett.net/plist checks the rest.
func checkBinaryDepth(data []byte, max int) error {
	const trailerSize = 32
	if len(data) < 8+trailerSize {
		return errors.New("binary plist too short")
	}
	tr := data[len(data)-trailerSize:]
	offSize := int(tr[6])
	refSize := int(tr[7])
	numObjects := beUint(tr[8:16])
	top := beUint(tr[16:24])
	offTable := beUint(tr[24:32])
	n := uint64(len(data))
	if offSize < 1 || offSize > 8 || refSize < 1 || refSize > 8 {
		return errors.New("binary plist: bad trailer")
	}
	if numObjects == 0 || numObjects > n || top >= numObjects || offTable >= n ||
		offTable+numObjects*uint64(offSize) > n-trailerSize {
		return errors.New("binary plist: bad trailer")
	}
	offset := func(i uint64) (uint64, error) {
		p := offTable + i*uint64(offSize)
		o := beUint(data[p : p+uint64(offSize)])
		if o < 8 || o >= offTable {
			return 0, fmt.Errorf("binary plist: object %d at bad offset", i)
		}
		return o, nil
	}
	// children returns the object references of a container, or nil.
	children := func(i uint64) ([]uint64, error) {
		o, err := offset(i)
		if err != nil {
			return nil, err
		}
		marker := data[o]
		kind, count := marker>>4, uint64(marker&0x0f)
		if kind != 0xA && kind != 0xB && kind != 0xC && kind != 0xD {
			return nil, nil
		}
		p := o + 1
		if count == 0x0f {
			if p >= n {
				return nil, errors.New("binary plist: truncated object")
			}
			im := data[p]
			if im>>4 != 0x1 || im&0x0f > 3 {
				return nil, errors.New("binary plist: bad container count")
			}
			w := uint64(1) << (im & 0x0f)
			if p+1+w > n {
				return nil, errors.New("binary plist: truncated object")
			}
			count = beUint(data[p+1 : p+1+w])
			p += 1 + w
		}
		if kind == 0xD {
			if count > n {
				return nil, errors.New("binary plist: bad container count")
			}
			count *= 2
		}
		if count > n || p+count*uint64(refSize) > n {
			return nil, errors.New("binary plist: container runs past the end")
		}
		refs := make([]uint64, count)
		for k := range refs {
			q := p + uint64(k)*uint64(refSize)
			refs[k] = beUint(data[q : q+uint64(refSize)])
			if refs[k] >= numObjects {
				return nil, errors.New("binary plist: reference out of range")
			}
		}
		return refs, nil
	}
	const inProgress = -1
	size := map[uint64]int{}
	var walk func(i uint64, depth int) (int, error)
	walk = func(i uint64, depth int) (int, error) {
		if depth > max {
			return 0, fmt.Errorf("nested more than %d levels deep", max)
		}
		if s, ok := size[i]; ok {
			if s == inProgress {
				return 0, errors.New("binary plist: a container contains itself")
			}
			return s, nil
		}
		size[i] = inProgress
		refs, err := children(i)
		if err != nil {
			return 0, err
		}
		total := 1
		for _, r := range refs {
			s, err := walk(r, depth+1)
			if err != nil {
				return 0, err
			}
			total += s
			if total > maxValues {
				return 0, fmt.Errorf("expands to more than %d values", maxValues)
			}
		}
		size[i] = total
		return total, nil
	}
	_, err := walk(top, 1)
	return err
}

func beUint(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

// checkTextDepth bounds the nesting of an OpenStep/GNUstep text plist by
// counting brackets outside quoted strings and comments.
func checkTextDepth(data []byte, max int) error {
	depth := 0
	for i := 0; i < len(data); i++ {
		switch c := data[i]; c {
		case '"':
			for i++; i < len(data) && data[i] != '"'; i++ {
				if data[i] == '\\' {
					i++
				}
			}
		case '/':
			if i+1 < len(data) && data[i+1] == '/' {
				for i < len(data) && data[i] != '\n' {
					i++
				}
			} else if i+1 < len(data) && data[i+1] == '*' {
				i += 2
				for i+1 < len(data) && (data[i] != '*' || data[i+1] != '/') {
					i++
				}
				i++
			}
		case '(', '{':
			depth++
			if depth > max {
				return fmt.Errorf("nested more than %d levels deep", max)
			}
		case ')', '}':
			if depth > 0 {
				depth--
			}
		}
	}
	return nil
}
