// Package identify names the kinds of identifier by which a webhook request's subscriber is found: a
// webhook's configuration says which kind its payload field holds, and the user directory resolves
// values of each kind. It is its own package, without dependencies, so that the webhook configuration
// and the directory can both speak of a kind without depending on each other.
package identify

// Kind says how a request's subscriber is matched.
type Kind string

// The identifier kinds.
const (
	ByUserID Kind = "user_id"
	ByEmail  Kind = "email"
	ByPhone  Kind = "phone"
	ByHWID   Kind = "hwid"
)

// Valid reports whether k is one of the identifier kinds.
func (k Kind) Valid() bool {
	switch k {
	case ByUserID, ByEmail, ByPhone, ByHWID:
		return true
	}
	return false
}
