package control

import "fmt"

// Peer is who sent a request: the credentials the kernel gives for the
// connection (SO_PEERCRED), never anything the client claims.
type Peer struct {
	Pid int
	Uid int
	Gid int
}

func (p Peer) String() string { return fmt.Sprintf("uid %d pid %d", p.Uid, p.Pid) }

// Authorize decides whether peer may send req to a sockd running as
// ownerUID. Any local user may read (list, print, blame), as launchd lets
// anyone read the system domain; changes need root, or the sockd's own
// user for a user's sockd. Root's sockd hosts user domains, whose users
// may change their own domain's jobs: those requests pass here and the
// handler, which knows the domains, decides on each label (DomainScoped).
// The error says why, for the client to print.
func Authorize(peer Peer, ownerUID int, req Request) error {
	if !known[req.Cmd] {
		return fmt.Errorf("unknown command %q", req.Cmd)
	}
	if readOnly[req.Cmd] || peer.Uid == 0 || peer.Uid == ownerUID {
		return nil
	}
	if ownerUID == 0 && domainScoped[req.Cmd] {
		return nil
	}
	if ownerUID == 0 {
		return fmt.Errorf("%s needs root: you are uid %d", req.Cmd, peer.Uid)
	}
	return fmt.Errorf("%s needs uid %d (this sockd's user) or root: you are uid %d", req.Cmd, ownerUID, peer.Uid)
}
