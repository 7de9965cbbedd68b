# sockd's builds. `make deb` needs Go, a C compiler and dpkg-deb; nothing else.
#
#   make            bin/sockd, with the version of this checkout
#   make deb        dist/sockd_VERSION_ARCH.deb (packaging/deb/build.sh)
#   make man        bin/man/sockd.8 and bin/man/sockd.plist.5
#   make test       the tests, as .ci/run runs them
#   make clean

GO      ?= go
VERSION ?= $(shell packaging/deb/version.sh)

.PHONY: all build deb man test clean

all: build

build:
	$(GO) build -trimpath -ldflags "-X main.version=$(VERSION)" -o bin/sockd ./cmd/sockd

deb:
	VERSION=$(VERSION) GO=$(GO) packaging/deb/build.sh -o dist

man: build
	mkdir -p bin/man
	bin/sockd man sockd.8 >bin/man/sockd.8
	bin/sockd man sockd.plist.5 >bin/man/sockd.plist.5

test:
	$(GO) test -count=1 ./...

clean:
	rm -rf bin dist
