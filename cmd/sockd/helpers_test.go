package main

import (
	"flag"
	"io"
	"strconv"

	"github.com/sockd/sockd/internal/privilege"
)

func newTestFlagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

func itoa(n int) string { return strconv.Itoa(n) }

// summary is check's summary line for a sockd running as this process.
func summary(counts string) string {
	return counts + "; judged for sockd as " + privilege.Current().String() + "\n"
}
