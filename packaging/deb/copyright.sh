#!/bin/sh
# Prints the package's copyright file: sockd's own terms, then the licence of
# every Go module and of the Go standard library compiled into /usr/sbin/sockd,
# read from the module cache (Apache-2.0 by reference to common-licenses).
# usage: packaging/deb/copyright.sh [GO]
set -eu
GO=${1:-go}
cd "$(dirname "$0")/../.."
cat <<'EOF2'
sockd: https://github.com/sockd/sockd

Copyright: the sockd authors.
License: the sockd repository states no licence of its own yet; ask its
 maintainers before redistributing. The parts below are under their own
 licences.

/usr/sbin/sockd is a Go program: it contains, linked statically, the Go
standard library and the Go modules below, each under the licence quoted
with it. Their sources are at the paths given, at the versions given.
EOF2
license_of() {
	# $1: module path and version (for the heading), $2: its directory
	for f in LICENSE LICENSE.txt LICENSE.md COPYING; do
		if [ -f "$2/$f" ]; then
			echo
			echo "Files: $1"
			if grep -q 'Apache License' "$2/$f" && grep -q 'Version 2.0' "$2/$f"; then
				echo "License: Apache-2.0 (/usr/share/common-licenses/Apache-2.0)"
				if [ -f "$2/NOTICE" ]; then
					echo " NOTICE:"
					sed -e 's/^/ /' -e 's/^ $/ ./' "$2/NOTICE"
				fi
			else
				echo "License:"
				sed -e 's/^[[:space:]]*$/./' -e 's/^/ /' "$2/$f"
			fi
			return
		fi
	done
	echo "copyright.sh: no licence file in $2 ($1)" >&2
	exit 1
}
license_of "the Go standard library, $($GO env GOVERSION)" "$($GO env GOROOT)"
$GO list -deps -f '{{with .Module}}{{if not .Main}}{{.Path}} {{.Version}} {{.Dir}}{{end}}{{end}}' ./cmd/sockd |
	sort -u | while read -r path version dir; do
	license_of "$path $version" "$dir"
done
