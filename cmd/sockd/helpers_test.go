package main

import (
	"flag"
	"io"
	"strconv"
)

func newTestFlagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

func itoa(n int) string { return strconv.Itoa(n) }
