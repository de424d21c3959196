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

// Sealer encrypts webhook secrets at rest with AES-256-GCM under the master key. It is safe for
// concurrent use.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer builds a Sealer from the 32-byte master key.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("secret: master key is %d bytes; want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts plaintext bound to aad (the webhook's public id, so that a ciphertext copied to another
// webhook's row does not open). The result is a random 12-byte nonce followed by the ciphertext and tag.
func (s *Sealer) Seal(plaintext, aad []byte) []byte {
	nonce := random(s.aead.NonceSize())
	return s.aead.Seal(nonce, nonce, plaintext, aad)
}

// Open decrypts what Seal produced with the same aad; anything else answers ErrOpen.
func (s *Sealer) Open(ciphertext, aad []byte) ([]byte, error) {
	ns := s.aead.NonceSize()
	if len(ciphertext) < ns+s.aead.Overhead() {
		return nil, ErrOpen
	}
	pt, err := s.aead.Open(nil, ciphertext[:ns], ciphertext[ns:], aad)
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}
