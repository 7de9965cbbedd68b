//go:build !linux

package fdreserve

import "os"

// spare is one reserve descriptor.
type spare = *os.File

func openSpare() (spare, error) { return os.Open(os.DevNull) }

func closeSpare(f spare) { _ = f.Close() }

func dupSpare() (spare, error) { return openSpare() }
