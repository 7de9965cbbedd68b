//go:build !unix

package trigger

import "io/fs"

// inode is empty where there are no inode numbers.
func inode(fs.FileInfo) string { return "" }
