// Package docs is Inlet's reference documentation: the Markdown pages of this directory, which README.md
// links. It has no code. Its test keeps the links true: every relative link of README.md and of these
// pages must reach a file of the repository (and a heading, when it names one), README.md must link
// nothing outside the repository, and every page must be reachable from README.md — so that a page
// moved, renamed or linked from outside a plain clone fails `go test ./...`, not a reader.
package docs
