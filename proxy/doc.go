// Package proxy is sockd's proxy mode (the SockdProxy job key): sockd holds a
// job's public sockets, starts the backend on the first client, waits until
// the backend is really ready and then forwards bytes (TCP and Unix streams)
// or datagrams (UDP) between clients and the backend.
//
// It answers the complaints users have about systemd-socket-proxyd:
//
//   - Clients that arrive while the backend starts are accepted and held, not
//     refused (systemd#2105). Readiness is a successful connect to the backend
//     (probed every 10-50 ms) or READY=1 on a NOTIFY_SOCKET the Server creates
//     (Config.Notify). A backend that is not ready within ReadyTimeout makes
//     the waiting clients be closed, with one log line per start attempt.
//   - Half-close is propagated both ways: a client that sends its request,
//     shuts down its write side and then reads gets the whole reply.
//   - UDP is proxied per client flow (systemd#5196).
//   - Per-connection idle timeout (systemd#23320).
//   - Bytes move with splice(2) through a 1 MiB pipe per direction; no fixed
//     small buffer (systemd#40679). On Linux with cgo a connection, once
//     connected, is handed to the relay (relay_linux.c): C threads outside
//     the Go scheduler, each blocked in epoll_wait over its connections, as
//     systemd-socket-proxyd's loop is. Elsewhere, or when a connection cannot
//     be handed over, a goroutine per direction copies with io.Copy (which
//     splices between *net.TCPConn and *net.UnixConn).
//   - PROXY protocol v1 and v2 headers carry the client address (systemd#40033).
//   - MaxConns stops accepting (clients wait in the kernel backlog) instead of
//     accepting and closing.
//   - StopAfterIdle stops the backend after a quiet period; the next client
//     starts it again.
//
// The process itself belongs to sockd's supervisor: the Server only calls
// Backend.Start and Backend.Stop and is told about exits through
// Server.BackendExited.
package proxy
