//go:build !unix

package launch

// closeOnExec: sockd passes no fds outside Unix; nothing to do.
func closeOnExec(int) {}
