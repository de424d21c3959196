package secret

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"errors"
	"math/big"
	"strings"
	"testing"
)

func TestNewWebhookSecret(t *testing.T) {
	s := NewWebhookSecret()
	body, ok := strings.CutPrefix(s, "whsec_")
	if !ok {
		t.Fatalf("got %q; want the whsec_ prefix", s)
	}
	raw, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil || len(raw) != 32 {
		t.Fatalf("got %q (%d bytes, %v); want 32 bytes of unpadded base64url", body, len(raw), err)
	}
	if NewWebhookSecret() == s {
		t.Error("two secrets are equal")
	}
}

func TestDigestAndMatch(t *testing.T) {
	s := NewWebhookSecret()
	auth := Authorization(s)
	if auth != "Bearer "+s {
		t.Fatalf("Authorization = %q; want %q", auth, "Bearer "+s)
	}
	want := Digest([]byte(auth))
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"exact", auth, true},
		{"bare secret", s, false},
		{"scheme in lower case", "bearer " + s, true},
		{"scheme in upper case", "BEARER " + s, true},
		{"scheme in mixed case", "bEaReR " + s, true},
		{"two spaces", "Bearer  " + s, true},
		{"secret in upper case", "Bearer " + strings.ToUpper(s), false},
		{"no space", "Bearer" + s, false},
		{"tab", "Bearer\t" + s, false},
		{"other scheme", "Basic " + s, false},
		{"one byte off", auth[:len(auth)-1] + "x", false},
		{"prefix", auth[:20], false},
		{"longer", auth + " ", false},
		{"empty", "", false},
		{"other secret", Authorization(NewWebhookSecret()), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Helper()
			if got := Match([]byte(tt.in), want); got != tt.ok {
				t.Errorf("Match = %v; want %v", got, tt.ok)
			}
		})
	}
}

func TestPublicID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := NewPublicID()
		if !ValidPublicID(id) {
			t.Fatalf("ValidPublicID(%q) = false; want true", id)
		}
		if seen[id] {
			t.Fatalf("duplicate id %q", id)
		}
		seen[id] = true
	}
	for _, bad := range []string{"", "short", strings.Repeat("a", 21), strings.Repeat("a", 23), strings.Repeat("-", 22), "abcdefghijklmnopqrstu/"} {
		if ValidPublicID(bad) {
			t.Errorf("ValidPublicID(%q) = true; want false", bad)
		}
	}
	// All-zero and all-ones inputs keep the fixed width.
	if got := encode62(make([]byte, 16), PublicIDLen); got != strings.Repeat("0", 22) {
		t.Errorf("encode62(zeros) = %q; want 22 zeros", got)
	}
	// The largest 128-bit value must fit in 22 digits without losing its top: decode it back.
	ones := bytes.Repeat([]byte{0xff}, 16)
	got := encode62(ones, PublicIDLen)
	v := new(big.Int)
	for _, c := range got {
		v.Mul(v, big.NewInt(62)).Add(v, big.NewInt(int64(strings.IndexRune(base62, c))))
	}
	if !bytes.Equal(v.Bytes(), ones) {
		t.Errorf("encode62(ones) = %q decodes to %x; want %x", got, v.Bytes(), ones)
	}
}

func TestNewAPIKey(t *testing.T) {
	k, p := NewAPIKey()
	if !strings.HasPrefix(k, "inl_") || len(k) != 47 || p != k[:12] {
		t.Errorf("got key %q prefix %q; want inl_ + 43 chars and its first 12", k, p)
	}
	if k2, _ := NewAPIKey(); k2 == k {
		t.Error("two keys are equal")
	}
}

func TestSealer(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	s, err := NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	pt := []byte(NewWebhookSecret())
	aad := []byte("hookA")
	ct := s.Seal(pt, aad)
	if bytes.Contains(ct, pt) {
		t.Fatal("ciphertext contains the plaintext")
	}
	if ct2 := s.Seal(pt, aad); bytes.Equal(ct, ct2) {
		t.Error("two seals of one plaintext are equal; want a fresh nonce each time")
	}
	got, err := s.Open(ct, aad)
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("Open = %q, %v; want %q", got, err, pt)
	}

	other, _ := NewSealer(bytes.Repeat([]byte{8}, 32))
	tamper := func(i int) []byte {
		c := bytes.Clone(ct)
		c[i] ^= 1
		return c
	}
	tests := []struct {
		name string
		s    *Sealer
		ct   []byte
		aad  string
	}{
		{"other webhook", s, ct, "hookB"},
		{"no aad", s, ct, ""},
		{"other key", other, ct, "hookA"},
		{"nonce flipped", s, tamper(0), "hookA"},
		{"body flipped", s, tamper(15), "hookA"},
		{"tag flipped", s, tamper(len(ct) - 1), "hookA"},
		{"truncated", s, ct[:len(ct)-1], "hookA"},
		{"too short", s, ct[:10], "hookA"},
		{"empty", s, nil, "hookA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := tt.s.Open(tt.ct, []byte(tt.aad)); !errors.Is(err, ErrOpen) {
				t.Errorf("Open = %q, %v; want ErrOpen", got, err)
			}
		})
	}
}

func TestNewSealerKeySize(t *testing.T) {
	for _, n := range []int{0, 16, 31, 33} {
		if _, err := NewSealer(make([]byte, n)); err == nil {
			t.Errorf("NewSealer(%d bytes) = nil error; want an error", n)
		}
	}
}

func BenchmarkMatch(b *testing.B) {
	auth := []byte(Authorization(NewWebhookSecret()))
	want := Digest(auth)
	b.ReportAllocs()
	b.SetBytes(int64(len(auth)))
	for b.Loop() {
		if !Match(auth, want) {
			b.Fatal("no match")
		}
	}
}

func TestCutBearer(t *testing.T) {
	for _, c := range []struct {
		in, cred string
		ok       bool
	}{
		{"Bearer abc", "abc", true},
		{"bearer abc", "abc", true},
		{"BEARER abc", "abc", true},
		{"BeArEr abc", "abc", true},
		{"Bearer   abc def", "abc def", true},
		{"Bearer ", "", false},
		{"Bearer    ", "", false},
		{"Bearer", "", false},
		{"Bearerabc", "", false},
		{"Bearer\tabc", "", false},
		{"Basic abc", "", false},
		{"Bearex abc", "", false},
		{"Bea", "", false},
		{"", "", false},
	} {
		cred, ok := CutBearer(c.in)
		if cred != c.cred || ok != c.ok {
			t.Errorf("CutBearer(%q) = %q, %v; want %q, %v", c.in, cred, ok, c.cred, c.ok)
		}
		bcred, bok := CutBearer([]byte(c.in))
		if string(bcred) != c.cred || bok != c.ok {
			t.Errorf("CutBearer([]byte(%q)) = %q, %v; want %q, %v", c.in, bcred, bok, c.cred, c.ok)
		}
	}
}

func TestDigestBearer(t *testing.T) {
	s := NewWebhookSecret()
	want := Digest([]byte(Authorization(s)))
	for _, in := range []string{"Bearer " + s, "bearer " + s, "BEARER " + s, "Bearer  " + s} {
		if DigestBearer([]byte(in)) != want {
			t.Errorf("DigestBearer(%q) is not the digest of %q", in, Authorization(s))
		}
	}
	// A credential too long to be rewritten is digested as presented; it matches no secret of ours.
	long := "bearer " + strings.Repeat("x", maxBearerCredential+1)
	if DigestBearer([]byte(long)) != Digest([]byte(long)) {
		t.Error("an over-long credential is not digested as presented")
	}
	for _, in := range []string{"", "garbage", "Basic " + s} {
		if DigestBearer([]byte(in)) != Digest([]byte(in)) {
			t.Errorf("DigestBearer(%q) is not its digest as presented", in)
		}
	}
}

func TestMatchAllocs(t *testing.T) {
	auth := []byte(Authorization(NewWebhookSecret()))
	want := Digest(auth)
	if n := testing.AllocsPerRun(100, func() { Match(auth, want) }); n != 0 {
		t.Errorf("Match allocates %v times per call; want 0", n)
	}
	lower := []byte("bearer " + string(auth[len(BearerPrefix):]))
	if n := testing.AllocsPerRun(100, func() { Match(lower, want) }); n != 0 {
		t.Errorf("Match of a lower-case scheme allocates %v times per call; want 0", n)
	}
}

func BenchmarkSealOpen(b *testing.B) {
	s, _ := NewSealer(make([]byte, 32))
	pt, aad := []byte(NewWebhookSecret()), []byte("hook")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Open(s.Seal(pt, aad), aad); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzCutBearer: on any Authorization value CutBearer either refuses it or returns a non-empty
// credential that ends the value and follows a Bearer scheme (any case) and spaces; DigestBearer then
// digests "Bearer " + that credential.
func FuzzCutBearer(f *testing.F) {
	for _, s := range []string{"Bearer whsec_x", "bearer  x", "BEARER", "Basic x", "", "bearer \xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		cred, ok := CutBearer(in)
		if !ok {
			if cred != "" {
				t.Fatalf("CutBearer(%q) refused with credential %q", in, cred)
			}
			return
		}
		head := strings.TrimSuffix(in, cred)
		if cred == "" || cred[0] == ' ' || len(head)+len(cred) != len(in) || len(head) < 7 ||
			!strings.EqualFold(head[:6], "bearer") || strings.Trim(head[6:], " ") != "" {
			t.Fatalf("CutBearer(%q) = %q", in, cred)
		}
		if len(cred) <= maxBearerCredential && DigestBearer([]byte(in)) != Digest([]byte("Bearer "+cred)) {
			t.Fatalf("DigestBearer(%q) is not the digest of %q", in, "Bearer "+cred)
		}
	})
}

// legacySeal seals as Sealer did before ciphertexts carried a key id: nonce, ciphertext, tag.
func legacySeal(t *testing.T, key, pt, aad []byte) []byte {
	t.Helper()
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	nonce := random(aead.NonceSize())
	return aead.Seal(nonce, nonce, pt, aad)
}

// TestSealerRotation walks a master key rotation: secrets sealed under the old key (in the form before
// key ids, and in the current form) open once the new key is current and the old one previous; Reseal
// rewrites them under the new key, once; with the old key removed they still open, and a ciphertext of
// a removed key answers ErrUnknownKey.
func TestSealerRotation(t *testing.T) {
	oldKey, newKey := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	aad := []byte("hookA")
	pt := []byte(NewWebhookSecret())
	old, err := NewSealer(oldKey)
	if err != nil {
		t.Fatal(err)
	}
	sealed := map[string][]byte{"legacy": legacySeal(t, oldKey, pt, aad), "old key": old.Seal(pt, aad)}
	if id := KeyID(oldKey); !bytes.Equal(sealed["old key"][1:5], id[:]) || sealed["old key"][0] != sealVersion {
		t.Fatalf("ciphertext header = %x; want %02x then the key id %x", sealed["old key"][:5], sealVersion, id)
	}

	rotating, err := NewSealer(newKey, oldKey)
	if err != nil {
		t.Fatal(err)
	}
	newOnly, _ := NewSealer(newKey)
	for name, ct := range sealed {
		if got, err := rotating.Open(ct, aad); err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("%s: Open with new+old = %q, %v; want %q", name, got, err, pt)
		}
		if _, err := newOnly.Open(ct, aad); !errors.Is(err, ErrOpen) {
			t.Errorf("%s: Open with the new key only = %v; want ErrOpen", name, err)
		}
		out, changed, err := rotating.Reseal(ct, aad)
		if err != nil || !changed {
			t.Fatalf("%s: Reseal = changed %v, %v; want changed", name, changed, err)
		}
		again, changed, err := rotating.Reseal(out, aad)
		if err != nil || changed || !bytes.Equal(again, out) {
			t.Errorf("%s: second Reseal = changed %v, %v; want unchanged", name, changed, err)
		}
		if got, err := newOnly.Open(out, aad); err != nil || !bytes.Equal(got, pt) {
			t.Errorf("%s: resealed, Open with the new key only = %q, %v; want %q", name, got, err, pt)
		}
		if _, _, err := rotating.Reseal(out, []byte("hookB")); !errors.Is(err, ErrOpen) {
			t.Errorf("%s: Reseal with another webhook's aad = %v; want ErrOpen", name, err)
		}
	}
	// A legacy ciphertext already under the current key is rewritten once, into the current form.
	if _, changed, err := newOnly.Reseal(legacySeal(t, newKey, pt, aad), aad); err != nil || !changed {
		t.Errorf("Reseal of a legacy ciphertext under the current key = changed %v, %v; want changed", changed, err)
	}
	if _, err := newOnly.Open(sealed["old key"], aad); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("Open of a removed key's ciphertext = %v; want ErrUnknownKey", err)
	}
	if _, _, err := newOnly.Reseal(sealed["old key"], aad); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("Reseal of a removed key's ciphertext = %v; want ErrUnknownKey", err)
	}
	for _, prev := range [][][]byte{{newKey}, {oldKey, oldKey}, {make([]byte, 16)}} {
		if _, err := NewSealer(newKey, prev...); err == nil {
			t.Errorf("NewSealer(new, %d previous keys of sizes %d…) = nil error; want an error", len(prev), len(prev[0]))
		}
	}
}
