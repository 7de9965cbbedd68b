#!/bin/sh
# Builds the Debian package of this checkout: dist/sockd_VERSION_ARCH.deb
# (make deb runs it). It stages the installed tree and packs it with
# dpkg-deb, owned by root, so it needs no root, no fakeroot and no build
# dependency beyond Go, a C compiler and dpkg-deb. dpkg-shlibdeps and
# dpkg-buildflags (dpkg-dev) are used when present.
#
# usage: packaging/deb/build.sh [-o OUTDIR]
# environment:
#   VERSION     package and sockd version (default: packaging/deb/version.sh)
#   GO          the go command (default: go)
#   GOARCH      target architecture (default: the host's); the man pages and
#               completion are written by a host build of sockd
#   DEBFULLNAME, DEBEMAIL   maintainer (default: the author of HEAD)
#   SOURCE_DATE_EPOCH       timestamps in the package (default: HEAD's commit time)
set -eu

root=$(cd "$(dirname "$0")/../.." && pwd)
out=$root/dist
while getopts o: opt; do
	case $opt in
	o) out=$OPTARG ;;
	*) echo "usage: $0 [-o OUTDIR]" >&2; exit 2 ;;
	esac
done
GO=${GO:-go}
cd "$root"

VERSION=${VERSION:-$(packaging/deb/version.sh)}
case $VERSION in
[0-9]*) ;;
*) echo "build.sh: VERSION $VERSION must start with a digit (Debian version)" >&2; exit 1 ;;
esac
case $VERSION in
*[!A-Za-z0-9.+~]*) echo "build.sh: VERSION $VERSION: only letters, digits and . + ~ (a native package)" >&2; exit 1 ;;
esac
goarch=${GOARCH:-$($GO env GOARCH)}
case $goarch in
amd64 | arm64 | riscv64 | s390x | mips64le) arch=$goarch ;;
386) arch=i386 ;;
arm) arch=armhf ;;
ppc64le) arch=ppc64el ;;
*) echo "build.sh: no Debian architecture for GOARCH=$goarch" >&2; exit 1 ;;
esac
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
	SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s)
fi
export SOURCE_DATE_EPOCH
if [ -n "${DEBFULLNAME:-}" ] && [ -n "${DEBEMAIL:-}" ]; then
	maintainer="$DEBFULLNAME <$DEBEMAIL>"
else
	maintainer=$(git log -1 --format='%an <%ae>' 2>/dev/null || echo "sockd maintainers <sockd@localhost>")
fi
rev=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# dpkg-shlibdeps looks for the package's tree under debian/PACKAGE.
stage=$work/debian/sockd
umask 022
mkdir -p "$stage/DEBIAN" "$stage/usr/sbin" "$stage/usr/bin" "$stage/etc/sockd/jobs" \
	"$stage/lib/systemd/system" "$stage/usr/lib/systemd/user" \
	"$stage/usr/share/doc/sockd/examples" "$stage/usr/share/doc/sockd/docs" \
	"$stage/usr/share/man/man8" "$stage/usr/share/man/man5" \
	"$stage/usr/share/bash-completion/completions" "$stage/usr/share/zsh/vendor-completions" \
	"$stage/usr/share/fish/vendor_completions.d" "$stage/usr/share/lintian/overrides"

# The binary: PIE with full RELRO and Debian's C hardening flags for the cgo
# parts, symbols stripped (Go keeps what stack traces need).
cppflags="-Wdate-time -D_FORTIFY_SOURCE=2"
cflags="-g -O2 -fstack-protector-strong -Wformat -Werror=format-security"
ldflags="-Wl,-z,relro -Wl,-z,now"
if command -v dpkg-buildflags >/dev/null 2>&1; then
	export DEB_BUILD_MAINT_OPTIONS=hardening=+all
	cppflags=$(dpkg-buildflags --get CPPFLAGS)
	cflags=$(dpkg-buildflags --get CFLAGS)
	ldflags=$(dpkg-buildflags --get LDFLAGS)
fi
CGO_ENABLED=1 GOARCH=$goarch CGO_CPPFLAGS="$cppflags" CGO_CFLAGS="$cflags" CGO_LDFLAGS="$ldflags" \
	$GO build -trimpath -buildmode=pie -ldflags "-s -w -X main.version=$VERSION" \
	-o "$stage/usr/sbin/sockd" ./cmd/sockd
# What dh_strip removes besides the symbols.
if command -v objcopy >/dev/null 2>&1; then
	objcopy --remove-section=.comment "$stage/usr/sbin/sockd"
fi
ln -s ../sbin/sockd "$stage/usr/bin/sockd"

# The man pages and completion scripts, from the command table.
if [ "$goarch" = "$($GO env GOHOSTARCH)" ]; then
	gen=$stage/usr/sbin/sockd
else
	gen=$work/sockd-host
	GOARCH= $GO build -trimpath -ldflags "-X main.version=$VERSION" -o "$gen" ./cmd/sockd
fi
"$gen" man sockd.8 | gzip -9n >"$stage/usr/share/man/man8/sockd.8.gz"
"$gen" man sockd.plist.5 | gzip -9n >"$stage/usr/share/man/man5/sockd.plist.5.gz"
"$gen" completion bash >"$stage/usr/share/bash-completion/completions/sockd"
"$gen" completion zsh >"$stage/usr/share/zsh/vendor-completions/_sockd"
"$gen" completion fish >"$stage/usr/share/fish/vendor_completions.d/sockd.fish"

install -m 0644 packaging/systemd/sockd.service "$stage/lib/systemd/system/sockd.service"
install -m 0644 packaging/systemd/user/sockd.service "$stage/usr/lib/systemd/user/sockd.service"
install -m 0644 examples/jobs/*.plist "$stage/usr/share/doc/sockd/examples/"
install -m 0644 README.md "$stage/usr/share/doc/sockd/"
install -m 0644 docs/*.md docs/*.svg "$stage/usr/share/doc/sockd/docs/"
install -m 0644 packaging/deb/lintian-overrides "$stage/usr/share/lintian/overrides/sockd"

# changelog.gz: a native package's Debian changelog, one entry for this build.
{
	echo "sockd ($VERSION) unstable; urgency=medium"
	echo
	echo "  * Built from commit $rev of the sockd repository; its history is the"
	echo "    changelog."
	echo
	echo " -- $maintainer  $(date -u -R -d "@$SOURCE_DATE_EPOCH")"
} | gzip -9n >"$stage/usr/share/doc/sockd/changelog.gz"
packaging/deb/copyright.sh "$GO" >"$stage/usr/share/doc/sockd/copyright"
chmod 0644 "$stage/usr/share/doc/sockd/copyright"

for s in postinst prerm postrm; do
	install -m 0755 "packaging/deb/$s" "$stage/DEBIAN/$s"
done

depends="libc6"
if command -v dpkg-shlibdeps >/dev/null 2>&1; then
	mkdir -p "$work/debian"
	printf 'Source: sockd\n\nPackage: sockd\nArchitecture: any\n' >"$work/debian/control"
	depends=$(cd "$work" && dpkg-shlibdeps -O -e debian/sockd/usr/sbin/sockd 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
	[ -n "$depends" ] || depends="libc6"
fi
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat >"$stage/DEBIAN/control" <<EOF
Package: sockd
Version: $VERSION
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $size
Depends: $depends
Section: admin
Priority: optional
Homepage: https://github.com/sockd/sockd
Description: socket-activation daemon configured by launchd job files
 sockd binds every socket a job describes and starts the job's program only
 when a connection or datagram arrives: one process per connection as inetd
 does, the sockets handed to one service as systemd and launchd do
 (LISTEN_FDS), a proxy to a backend it starts on demand, or built-in echo,
 discard, chargen, daytime and time services. Jobs are launchd property
 lists; inetd.conf and xinetd configurations are read as they are or
 converted.
 .
 This package holds sockd, its systemd units (the system one enabled, not
 started, on installation; a user one for systemctl --user), the manual
 pages sockd(8) and sockd.plist(5), shell completion for bash, zsh and fish,
 the documentation and example jobs.
EOF
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum) >"$stage/DEBIAN/md5sums"
chmod 0644 "$stage/DEBIAN/control" "$stage/DEBIAN/md5sums"
find "$stage" -newermt "@$SOURCE_DATE_EPOCH" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

mkdir -p "$out"
deb=$out/sockd_${VERSION}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"
