// Package phone reads phone numbers the way Inlet matches them as identifiers: in E.164, with a number
// written without a country code read in a region's national numbering plan (libphonenumber). The user
// directory normalises numbers with it when they are written and when they are looked up, and a
// project's phone region is checked with it. It is a package of its own so that the directory and the
// project store both depend on it rather than on each other, and so that nothing else loads
// libphonenumber's metadata.
package phone

import (
	"errors"
	"fmt"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// MaxLen bounds a phone number as written, before normalisation, in bytes.
const MaxLen = 64

// Normalize returns s in E.164 ("+15551234567"). Spaces, dashes, dots, slashes and parentheses are
// ignored; a leading "00" is read as the international prefix ("0044…" = "+44…"); a number without a
// country code is read as a national number of defaultRegion (ISO 3166-1 alpha-2, e.g. "US"), and is an
// error when defaultRegion is empty. Letters are refused (no vanity numbers: an identifier must be
// exact). The number must be possible for its country (right length); it need not be assigned, so test
// numbers such as +1 555 … are accepted.
func Normalize(s, defaultRegion string) (string, error) {
	if s == "" {
		return "", errors.New("must not be empty")
	}
	if len(s) > MaxLen {
		return "", fmt.Errorf("must be at most %d characters", MaxLen)
	}
	digits := make([]byte, 0, len(s))
	plus := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			digits = append(digits, c)
		case c == '+' && len(digits) == 0 && !plus:
			plus = true
		case c == ' ' || c == '-' || c == '.' || c == '/' || c == '(' || c == ')':
		default:
			return "", fmt.Errorf("unexpected character %q", rune(c))
		}
	}
	if len(digits) == 0 {
		return "", errors.New("has no digits")
	}
	region := defaultRegion
	num := string(digits)
	switch {
	case plus:
		num, region = "+"+num, ""
	case strings.HasPrefix(num, "00"):
		num, region = "+"+num[2:], ""
	case region == "":
		return "", errors.New("has no country code (+…) and no default region is set")
	}
	if region == "" {
		region = "ZZ" // libphonenumber's "unknown region": the number must carry its country code
	}
	n, err := phonenumbers.Parse(num, region)
	if err != nil {
		return "", fmt.Errorf("not a phone number: %w", err)
	}
	if !phonenumbers.IsPossibleNumber(n) {
		return "", errors.New("not a possible phone number for its country (wrong length or country code)")
	}
	return phonenumbers.Format(n, phonenumbers.E164), nil
}

// ValidRegion reports whether r is a region libphonenumber knows, as an upper-case ISO 3166-1 alpha-2
// code ("" means none).
func ValidRegion(r string) bool {
	return r == "" || phonenumbers.GetSupportedRegions()[r]
}
