package webhook

import (
	"testing"
	"time"

	"github.com/inlet-dev/inlet/internal/secret"
	"github.com/inlet-dev/inlet/internal/verify"
)

// TestBearerWithoutVerifier: a bearer webhook keeps no verify.Verifier (memory in every process), so
// Hook.Verify's own digest comparison must answer what a bearer Verifier (verify.NewBearer) answers, for
// the current secret, the previous one inside and after its grace, a wrong one and none.
func TestBearerWithoutVerifier(t *testing.T) {
	now := time.Now()
	cur, prev := secret.DigestBearer([]byte("Bearer current")), secret.DigestBearer([]byte("Bearer previous"))
	for _, grace := range []struct {
		name  string
		until time.Time
	}{{"no rotation", time.Time{}}, {"in grace", now.Add(time.Hour)}, {"grace over", now.Add(-time.Second)}} {
		h := &Hook{PublicID: "wh_1", SecretDigest: cur, PrevSecretUntil: grace.until}
		if !grace.until.IsZero() {
			h.PrevSecretDigest = prev
		}
		// What buildVerifiers used to set.
		ref, err := verify.NewBearer(cur)
		if err != nil {
			t.Fatal(err)
		}
		if !grace.until.IsZero() && now.Before(grace.until) {
			if ref, err = verify.NewBearer(cur, prev); err != nil {
				t.Fatal(err)
			}
		}
		for _, auth := range []string{"Bearer current", "Bearer previous", "Bearer wrong", "", "current", "Basic Y3VycmVudA=="} {
			req := &signedRequest{headers: map[string]string{}}
			if auth != "" {
				req.headers["Authorization"] = auth
			}
			if got, want := h.Verify(req, now), ref.Verify(req, now); got != want {
				t.Errorf("%s, Authorization %q: Hook.Verify = %s; a bearer Verifier says %s", grace.name, auth, got, want)
			}
		}
	}
}
