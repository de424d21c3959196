// Package image is Inlet's container image: deploy/image/Dockerfile, built by deploy/image/build (`make
// image`) with buildah from scratch, without a daemon or a registry. It has no code; its test builds the
// image, exports it as an OCI archive, unpacks its layers and runs `inlet version` and `inlet
// -check-config` from the unpacked root file system, so that a Dockerfile that no longer builds, an image
// that runs as root or a binary that needs the host's libraries fails `go test ./...`.
package image
