package supervisor

import (
	"net/netip"
	"testing"

	"go.uber.org/zap"

	"github.com/sockd/sockd/job"
)

// TestBadAccessEntryFailsClosed: an Allow or Deny entry the supervisor
// cannot parse (the loader refuses them, so only a job built by hand has
// one) never widens access: a bad Allow entry does not leave an empty Allow
// that admits everyone, a bad Deny entry denies everyone.
func TestBadAccessEntryFailsClosed(t *testing.T) {
	nop := func() *zap.Logger { return zap.NewNop() }
	for _, bad := range []string{"127.0.0.1/032", "127.0.0.0/08", "1::/0008", "nonsense"} {
		allow := newLimiter(job.Limits{MaxChildren: 1, Allow: []string{bad}}, nop)
		deny := newLimiter(job.Limits{MaxChildren: 1, Deny: []string{bad}}, nop)
		for _, src := range []string{"127.0.0.1", "127.0.0.2", "10.0.0.1", "::1", "1::1"} {
			a := netip.MustParseAddr(src)
			if why := allow.checkLocked(a); why == "" {
				t.Errorf("Allow [%q]: %s admitted", bad, src)
			}
			if why := deny.checkLocked(a); why == "" {
				t.Errorf("Deny [%q]: %s admitted", bad, src)
			}
		}
	}
	mixed := newLimiter(job.Limits{MaxChildren: 1, Allow: []string{"127.0.0.2", "127.0.0.1/032"}}, nop)
	if why := mixed.checkLocked(netip.MustParseAddr("127.0.0.2")); why != "" {
		t.Errorf("Allow [127.0.0.2, bad]: 127.0.0.2 refused: %s", why)
	}
	if why := mixed.checkLocked(netip.MustParseAddr("127.0.0.3")); why == "" {
		t.Error("Allow [127.0.0.2, bad]: 127.0.0.3 admitted")
	}
}
