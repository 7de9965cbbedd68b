// Package packaging installs sockd as system software: its systemd units
// (systemd/sockd.service, systemd/user/sockd.service) and its Debian
// package (deb/build.sh, run by `make deb`, with the maintainer scripts and
// lintian overrides beside it). It holds no Go code of its own; its tests
// verify the units with systemd-analyze, build the package and inspect it
// with dpkg-deb and lintian, and, as root under CI, install, run, remove and
// purge it.
package packaging
