//go:build !linux || !cgo

package spawn

const (
	rlimitNice   = -1
	rlimitNofile = -2
	maxRlimits   = 16
)

// platform fails as NewTemplate does without Linux and cgo.
func (c *Checker) platform() error { return errNeedsCgo }

type userInfo struct{ uid, gid uint32 }

func (c *Checker) user(string) (userInfo, error)              { return userInfo{}, errNeedsCgo }
func (c *Checker) group(string) (uint32, error)               { return 0, errNeedsCgo }
func (c *Checker) groupList(string, uint32) ([]uint32, error) { return nil, errNeedsCgo }
