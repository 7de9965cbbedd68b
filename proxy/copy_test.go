package proxy

import "testing"

// TestGoroutineCopy runs the stream tests with the relay turned off: the
// goroutine-per-direction copy is what forwards where there is no relay
// (off Linux, without cgo, or when a connection cannot be handed over).
func TestGoroutineCopy(t *testing.T) {
	saved := useRelay
	useRelay = false
	defer func() { useRelay = saved }()
	for name, test := range map[string]func(*testing.T){
		"HalfCloseFromClient":    TestHalfCloseFromClient,
		"HalfCloseFromBackend":   TestHalfCloseFromBackend,
		"LargeTransfer":          TestLargeTransfer,
		"IdleTimeout":            TestIdleTimeout,
		"BulkThenReply":          TestBulkThenReply,
		"ShutdownClosesConns":    TestShutdownClosesConnections,
		"ProxyProtocol":          TestProxyProtocol,
		"MaxConnsHoldsInBacklog": TestMaxConnsHoldsInBacklog,
	} {
		t.Run(name, func(t *testing.T) {
			test(t)
			if useRelay {
				t.Fatal("relay turned back on")
			}
		})
	}
}
