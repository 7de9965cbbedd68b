package job

import (
	"os"
	"strings"

	"github.com/sockd/sockd/internal/unixdial"
)

// checkBackendPath refuses a Unix socket Backend that a root sockd would
// connect to as root through a directory another user may change
// (unixdial.CheckPath): that user could point the path at any socket on
// the machine, a root-only one too, and reach it through the proxy. sockd
// connects with the job's user's rights when the job has a UserName other
// than root, so only jobs whose backend runs as root are checked, and only
// by a root sockd (another connects with its own rights). The supervisor
// checks the path again at every connect.
func (d *decoder) checkBackendPath(j *Job) {
	if j.Proxy == nil || !strings.HasPrefix(j.Proxy.Backend, "/") || os.Geteuid() != 0 {
		return
	}
	if j.UserName != "" && j.UserName != "root" {
		return
	}
	if err := unixdial.CheckPath(j.Proxy.Backend); err != nil {
		d.errorf("SockdProxy.Backend", "%v: sockd connects to this backend as root, and a user other than root could point the path at any socket on the machine: put the socket in a directory only root may change (such as /run/NAME), or set UserName so that sockd connects with that user's rights", err)
	}
}
