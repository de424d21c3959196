package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// nonRootUID is the user the Dockerfile runs as.
const nonRootUID = 65532

const (
	testVersion = "v0.0.0-imagetest"
	testCommit  = "0123456789abcdef"
)

// ociIndex, ociManifest and ociConfig are the parts of the OCI image layout this test reads.
type ociIndex struct {
	Manifests []ociDescriptor `json:"manifests"`
}

type ociDescriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

type ociManifest struct {
	Config ociDescriptor   `json:"config"`
	Layers []ociDescriptor `json:"layers"`
}

type ociConfig struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Config       struct {
		User       string            `json:"User"`
		Env        []string          `json:"Env"`
		Entrypoint []string          `json:"Entrypoint"`
		Cmd        []string          `json:"Cmd"`
		Labels     map[string]string `json:"Labels"`
	} `json:"config"`
}

// TestImage builds the image as `make image` does, exports it, unpacks it and runs the binary it holds.
func TestImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the container image with buildah (~5 s warm, minutes with a cold Go build cache)")
	}
	if _, err := exec.LookPath("buildah"); err != nil {
		t.Fatalf("buildah is needed to build the container image and was not found (%v); "+
			"install it with `deploy/local/install buildah` (apt-get install buildah)", err)
	}
	dir := t.TempDir()
	archive := filepath.Join(dir, "inlet.oci.tar")
	start := time.Now()
	build := exec.Command("./build", "-t", "localhost/inlet:imagetest", "-o", "oci-archive:"+archive)
	build.Env = append(os.Environ(), "VERSION="+testVersion, "COMMIT="+testCommit,
		"BUILDAH_ROOT="+filepath.Join(dir, "storage"))
	var stderr bytes.Buffer
	build.Stderr = &stderr
	if err := build.Run(); err != nil {
		t.Fatalf("deploy/image/build: %v\n%s", err, stderr.String())
	}
	t.Logf("%s (build and export: %s)", strings.TrimSpace(stderr.String()), time.Since(start).Round(time.Millisecond))

	blobs := readArchive(t, archive)
	var index ociIndex
	decodeBlob(t, blobs, "index.json", &index)
	if len(index.Manifests) != 1 {
		t.Fatalf("index.json has %d manifests; want 1", len(index.Manifests))
	}
	var manifest ociManifest
	decodeBlob(t, blobs, blobPath(index.Manifests[0].Digest), &manifest)
	var cfg ociConfig
	decodeBlob(t, blobs, blobPath(manifest.Config.Digest), &cfg)

	if cfg.OS != "linux" {
		t.Errorf("image os = %q; want linux", cfg.OS)
	}
	if uid := uidOf(cfg.Config.User); uid == 0 {
		t.Errorf("image user = %q; want a numeric non-root user", cfg.Config.User)
	} else if uid != nonRootUID {
		t.Errorf("image user = %q; want uid %d", cfg.Config.User, nonRootUID)
	}
	if got, want := strings.Join(cfg.Config.Entrypoint, " "), "/usr/local/bin/inlet"; got != want {
		t.Errorf("entrypoint = %q; want %q", got, want)
	}
	if got := cfg.Config.Labels["org.opencontainers.image.version"]; got != testVersion {
		t.Errorf("version label = %q; want %q", got, testVersion)
	}

	root := filepath.Join(dir, "rootfs")
	var compressed, unpacked int64
	for _, l := range manifest.Layers {
		compressed += l.Size
		unpacked += unpackLayer(t, root, l, blobs[blobPath(l.Digest)])
	}
	t.Logf("image: %d layer(s), %.1f MB compressed, %.1f MB unpacked",
		len(manifest.Layers), float64(compressed)/1e6, float64(unpacked)/1e6)

	bin := filepath.Join(root, "usr/local/bin/inlet")
	assertStatic(t, bin)
	ca, err := os.ReadFile(filepath.Join(root, "etc/ssl/certs/ca-certificates.crt"))
	if err != nil || !bytes.Contains(ca, []byte("BEGIN CERTIFICATE")) {
		t.Errorf("the image has no CA bundle at /etc/ssl/certs/ca-certificates.crt (%v)", err)
	}

	// The health check Compose runs, from inside the image: no shell or curl there.
	healthz := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer healthz.Close()

	for _, tc := range []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"version", []string{"version"}, nil, "inlet " + testVersion + " (commit " + testCommit + ","},
		{"check-config", []string{"-check-config"}, nil, "config ok"},
		{"check-config production", []string{"-check-config"},
			[]string{"INLET_PROFILE=production", "INLET_SECRETS_MASTER_KEY=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}, "config ok"},
		{"help", nil, nil, "usage: inlet"},
		{"healthcheck", []string{"healthcheck", healthz.URL + "/healthz"}, nil, "200 OK"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := runImage(t, root, cfg, tc.args, tc.env)
			if !strings.Contains(out, tc.want) {
				t.Fatalf("inlet %s printed %q; want it to contain %q", strings.Join(tc.args, " "), out, tc.want)
			}
		})
	}
}

// runImage runs the image's entrypoint with its command (or args), its environment and env, as a
// container would: when the test runs as root, chrooted into root as the image's user, so that nothing
// of the host is reachable; otherwise the unpacked binary is executed directly.
func runImage(t *testing.T, root string, cfg ociConfig, args, env []string) string {
	t.Helper()
	if args == nil {
		args = cfg.Config.Cmd
	}
	entry := cfg.Config.Entrypoint[0]
	cmd := exec.Command(filepath.Join(root, entry), append(cfg.Config.Entrypoint[1:], args...)...)
	if os.Geteuid() == 0 {
		cmd.Path = entry
		cmd.Dir = "/"
		uid := uint32(uidOf(cfg.Config.User))
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root, Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	}
	cmd.Env = append(append([]string{}, cfg.Config.Env...), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("inlet %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// uidOf is the numeric user of an image's User ("uid" or "uid:gid"); 0 for root, a name or nothing.
func uidOf(user string) int {
	u, _, _ := strings.Cut(user, ":")
	n, err := strconv.Atoi(u)
	if err != nil {
		return 0
	}
	return n
}

// assertStatic fails unless path is an ELF executable without a program interpreter: one that runs in an
// image with no C library.
func assertStatic(t *testing.T, path string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("the image's binary: %v", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatalf("%s is dynamically linked (PT_INTERP); want a static binary (CGO_ENABLED=0)", path)
		}
	}
}

// readArchive returns every file of an OCI archive by its path.
func readArchive(t *testing.T, path string) map[string][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files := make(map[string][]byte)
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("%s: %s: %v", path, h.Name, err)
		}
		files[strings.TrimPrefix(h.Name, "./")] = b
	}
}

func blobPath(digest string) string {
	algo, hex, _ := strings.Cut(digest, ":")
	return "blobs/" + algo + "/" + hex
}

func decodeBlob(t *testing.T, blobs map[string][]byte, name string, v any) {
	t.Helper()
	b, ok := blobs[name]
	if !ok {
		t.Fatalf("the OCI archive has no %s", name)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// unpackLayer extracts one layer (a tar, possibly gzipped) under root and returns the bytes of its
// regular files. Paths are kept under root; links and whiteouts are not expected in this image.
func unpackLayer(t *testing.T, root string, desc ociDescriptor, blob []byte) int64 {
	t.Helper()
	if blob == nil {
		t.Fatalf("layer %s is missing from the archive", desc.Digest)
	}
	var r io.Reader = bytes.NewReader(blob)
	switch {
	case strings.HasSuffix(desc.MediaType, "+gzip") || strings.HasSuffix(desc.MediaType, ".gzip"):
		gz, err := gzip.NewReader(r)
		if err != nil {
			t.Fatalf("layer %s: %v", desc.Digest, err)
		}
		r = gz
	case strings.HasSuffix(desc.MediaType, ".tar"):
	default:
		t.Fatalf("layer %s: unexpected media type %s", desc.Digest, desc.MediaType)
	}
	var total int64
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return total
		}
		if err != nil {
			t.Fatalf("layer %s: %v", desc.Digest, err)
		}
		name := filepath.Clean("/" + h.Name)
		if strings.HasPrefix(filepath.Base(name), ".wh.") {
			t.Fatalf("layer %s: unexpected whiteout %s", desc.Digest, h.Name)
		}
		dst := filepath.Join(root, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(dst, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatalf("layer %s: %s: %v", desc.Digest, h.Name, err)
			}
			if err := os.WriteFile(dst, b, os.FileMode(h.Mode).Perm()); err != nil {
				t.Fatal(err)
			}
			total += int64(len(b))
		default:
			t.Fatalf("layer %s: %s has unexpected type %q", desc.Digest, h.Name, fmt.Sprint(h.Typeflag))
		}
	}
}
