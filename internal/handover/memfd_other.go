//go:build !linux

package handover

import (
	"errors"
	"os"
)

// memfd is Linux only.
func memfd(string) (*os.File, error) { return nil, errors.New("memfd: Linux only") }
