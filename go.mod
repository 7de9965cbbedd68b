module github.com/sockd/sockd

go 1.26.8

require (
	github.com/HdrHistogram/hdrhistogram-go v1.4.0
	github.com/coreos/go-systemd/v22 v22.7.0
	go.uber.org/zap v1.28.0
	golang.org/x/sys v0.49.0
	howett.net/plist v1.0.1
)

require go.uber.org/multierr v1.10.0 // indirect
