// Package secret makes and checks the credentials of Inlet: webhook secrets (checked at the edge on
// every request, so the check is constant-time and allocation-free), public webhook ids, admin API keys,
// and the Sealer that keeps webhook secrets encrypted at rest under the master key so that the console
// can show them again.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
)

// Prefixes of the credentials, so that a leaked one is recognisable (secret scanners, log scrubbing).
const (
	WebhookSecretPrefix = "whsec_"
	APIKeyPrefix        = "inl_"
	// BearerPrefix starts the Authorization value a sender presents: "Bearer " + the webhook secret.
	BearerPrefix = "Bearer "
)

// KeySize is the size of the master key: AES-256.
const KeySize = 32

// ErrOpen is returned by Sealer.Open when a ciphertext is damaged, was sealed under another key, or
// belongs to another webhook (different additional data).
var ErrOpen = errors.New("secret: ciphertext cannot be opened")

func random(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (it crashes the program rather than return short).
	return b
}

// NewWebhookSecret returns "whsec_" followed by 32 random bytes in unpadded base64url (43 characters).
func NewWebhookSecret() string {
	return WebhookSecretPrefix + base64.RawURLEncoding.EncodeToString(random(32))
}

// Authorization is the header value a sender presents for secret: "Bearer " + secret. The console shows
// this value, to be used as-is.
func Authorization(secret string) string { return BearerPrefix + secret }

// Digest is SHA-256 of a full Authorization value ("Bearer whsec_…"), the form in which secrets are
// stored and compared.
func Digest(authorization []byte) [32]byte { return sha256.Sum256(authorization) }

// CutBearer returns the credential of an Authorization value in the Bearer scheme. The scheme is
// case-insensitive (RFC 9110 §11.1: "bearer" and "BEARER" are Bearer too) and separated from the
// credential by one or more spaces (§11.4: credentials = auth-scheme [ 1*SP ( token68 / #auth-param ) ]).
// ok is false for another scheme and for a scheme without a credential.
func CutBearer[T string | []byte](authorization T) (credential T, ok bool) {
	const scheme = "bearer"
	if len(authorization) <= len(scheme) || authorization[len(scheme)] != ' ' {
		return credential, false
	}
	for i := 0; i < len(scheme); i++ {
		if authorization[i]|0x20 != scheme[i] { // ASCII lower case; no other byte maps onto a letter
			return credential, false
		}
	}
	i := len(scheme)
	for i < len(authorization) && authorization[i] == ' ' {
		i++
	}
	if i == len(authorization) {
		return credential, false
	}
	return authorization[i:], true
}

// maxBearerCredential bounds the credentials DigestBearer writes in its canonical form: well over any
// secret Inlet makes (49 bytes), small enough for the stack.
const maxBearerCredential = 256

// DigestBearer is the Digest of an Authorization value as its sender meant it: a Bearer credential is
// digested as "Bearer " + credential whatever the case of the scheme and the spaces after it (see
// CutBearer), which is the form secrets are stored in. Any other value is digested as presented, and
// so is a credential longer than maxBearerCredential: no secret of Inlet's is that long, so neither can
// match one. It does not allocate.
func DigestBearer(authorization []byte) [32]byte {
	cred, ok := CutBearer(authorization)
	if !ok || len(cred) > maxBearerCredential {
		return Digest(authorization)
	}
	var buf [len(BearerPrefix) + maxBearerCredential]byte
	n := copy(buf[:], BearerPrefix)
	n += copy(buf[n:], cred)
	return Digest(buf[:n])
}

// Match reports whether authorization presents the credential whose Digest is want, read as
// DigestBearer reads it (the scheme in any case). Hashing first makes the comparison independent of the
// presented value's content: the time taken depends only on len(authorization) (which the sender
// chose), never on where it differs from the secret.
func Match(authorization []byte, want [32]byte) bool {
	got := DigestBearer(authorization)
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// encode62 writes b as exactly n base62 digits (n must be enough for len(b) bytes).
func encode62(b []byte, n int) string {
	v := new(big.Int).SetBytes(b)
	out := make([]byte, n)
	mod := new(big.Int)
	sixtyTwo := big.NewInt(62)
	for i := n - 1; i >= 0; i-- {
		v.DivMod(v, sixtyTwo, mod)
		out[i] = base62[mod.Int64()]
	}
	return string(out)
}

// PublicIDLen is the length of a public webhook id.
const PublicIDLen = 22

// NewPublicID returns a webhook's public id: 128 random bits as 22 base62 characters (letters and
// digits only, so it is safe in a URL path and selected whole by a double click).
func NewPublicID() string { return encode62(random(16), PublicIDLen) }

// ValidPublicID reports whether id has the form NewPublicID produces, so that garbage can be turned away
// before any lookup.
func ValidPublicID(id string) bool {
	if len(id) != PublicIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

// NewAPIKey returns an admin API key ("inl_" + 256 random bits as 43 base62 characters) and its prefix,
// the first 12 characters, which may be stored and displayed in clear to tell keys apart. Store only
// Digest(key) besides it.
func NewAPIKey() (key, prefix string) {
	key = APIKeyPrefix + encode62(random(32), 43)
	return key, key[:12]
}

// Sealer encrypts webhook secrets at rest with AES-256-GCM under the master key, and opens what it or
// an earlier master key sealed, so that the key can be rotated without downtime: seal with the new key,
// keep the old ones for opening until every stored secret has been resealed (Reseal). It is safe for
// concurrent use.
//
// A ciphertext is 0x01, the 4-byte id of the key that sealed it (KeyID), a random 12-byte nonce, then
// the GCM ciphertext and tag. Ciphertexts sealed before key ids existed are the nonce, ciphertext and tag
// alone; Open still opens them, trying each key (GCM's tag tells the right key from a wrong one), and
// Reseal rewrites them in the current form.
type Sealer struct {
	current sealKey
	keys    []sealKey // current first, then the previous keys in the order given
}

type sealKey struct {
	id   [keyIDLen]byte
	aead cipher.AEAD
}

const (
	// sealVersion starts a ciphertext that carries its key's id.
	sealVersion = 0x01
	keyIDLen    = 4
	headerLen   = 1 + keyIDLen
)

// ErrUnknownKey wraps ErrOpen when a ciphertext names a key id that is neither the current master key
// nor a previous one: the key it was sealed with has been removed from the settings too early.
var ErrUnknownKey = fmt.Errorf("%w: sealed with a master key that is not configured", ErrOpen)

// KeyID is the 4-byte id a ciphertext carries of the master key that sealed it: the first bytes of
// SHA-256 over a label and the key, so it tells keys apart without revealing anything usable about one.
// Printed in hex, it lets an operator check which key is which without printing the key.
func KeyID(key []byte) [keyIDLen]byte {
	h := sha256.New()
	h.Write([]byte("inlet master key id\x00"))
	h.Write(key)
	var id [keyIDLen]byte
	copy(id[:], h.Sum(nil))
	return id
}

func newSealKey(key []byte) (sealKey, error) {
	if len(key) != KeySize {
		return sealKey{}, fmt.Errorf("secret: master key is %d bytes; want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return sealKey{}, fmt.Errorf("secret: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return sealKey{}, fmt.Errorf("secret: %w", err)
	}
	return sealKey{id: KeyID(key), aead: aead}, nil
}

// NewSealer builds a Sealer that seals with the 32-byte master key and opens with it or any of the
// previous keys (each 32 bytes; none equal to key or to each other).
func NewSealer(key []byte, previous ...[]byte) (*Sealer, error) {
	cur, err := newSealKey(key)
	if err != nil {
		return nil, err
	}
	s := &Sealer{current: cur, keys: []sealKey{cur}}
	for i, p := range previous {
		k, err := newSealKey(p)
		if err != nil {
			return nil, fmt.Errorf("previous key %d: %w", i+1, err)
		}
		for _, have := range s.keys {
			if have.id == k.id {
				return nil, fmt.Errorf("secret: previous key %d is the current key or another previous key", i+1)
			}
		}
		s.keys = append(s.keys, k)
	}
	return s, nil
}

// Seal encrypts plaintext under the current key, bound to aad (the webhook's public id, so that a
// ciphertext copied to another webhook's row does not open).
func (s *Sealer) Seal(plaintext, aad []byte) []byte {
	ns := s.current.aead.NonceSize()
	out := make([]byte, headerLen+ns, headerLen+ns+len(plaintext)+s.current.aead.Overhead())
	out[0] = sealVersion
	copy(out[1:headerLen], s.current.id[:])
	nonce := out[headerLen:]
	_, _ = rand.Read(nonce)
	return s.current.aead.Seal(out, nonce, plaintext, aad)
}

// Open decrypts what Seal produced, under the current or a previous key, with the same aad. A damaged
// ciphertext, another webhook's (different aad) or one no configured key opens answers ErrOpen;
// ErrUnknownKey (which is ErrOpen too) when the ciphertext names a key that is not configured.
func (s *Sealer) Open(ciphertext, aad []byte) ([]byte, error) {
	pt, _, err := s.open(ciphertext, aad)
	return pt, err
}

// open returns the plaintext and whether it was sealed in the current form under the current key.
func (s *Sealer) open(ciphertext, aad []byte) (pt []byte, current bool, err error) {
	unknown := false
	if len(ciphertext) >= headerLen && ciphertext[0] == sealVersion {
		id := [keyIDLen]byte(ciphertext[1:headerLen])
		found := false
		for i, k := range s.keys {
			if k.id != id {
				continue
			}
			found = true
			if pt, ok := openWith(k.aead, ciphertext[headerLen:], aad); ok {
				return pt, i == 0, nil
			}
		}
		unknown = !found
	}
	// A ciphertext from before key ids (or, once in 256, one whose nonce starts with sealVersion).
	for _, k := range s.keys {
		if pt, ok := openWith(k.aead, ciphertext, aad); ok {
			return pt, false, nil
		}
	}
	if unknown {
		return nil, false, ErrUnknownKey
	}
	return nil, false, ErrOpen
}

func openWith(aead cipher.AEAD, ciphertext, aad []byte) ([]byte, bool) {
	ns := aead.NonceSize()
	if len(ciphertext) < ns+aead.Overhead() {
		return nil, false
	}
	pt, err := aead.Open(nil, ciphertext[:ns], ciphertext[ns:], aad)
	return pt, err == nil
}

// Reseal returns ciphertext sealed under the current key in the current form, and whether that differs
// from the input: false when it already was (nothing to write). It fails as Open does, leaving the
// ciphertext to the caller.
func (s *Sealer) Reseal(ciphertext, aad []byte) (out []byte, changed bool, err error) {
	pt, current, err := s.open(ciphertext, aad)
	if err != nil {
		return nil, false, err
	}
	if current {
		return ciphertext, false, nil
	}
	return s.Seal(pt, aad), true, nil
}

// CurrentKeyID is the id of the key Seal uses.
func (s *Sealer) CurrentKeyID() [keyIDLen]byte { return s.current.id }
