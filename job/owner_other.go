//go:build !unix

package job

import "os"

// fileOwner is unknown on platforms without Unix ownership.
func fileOwner(os.FileInfo) (int, bool) { return 0, false }
