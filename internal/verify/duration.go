package verify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Duration is a time.Duration that JSON writes as Go's duration text ("5m0s") and reads from such a
// text ("5m", "24h") or from a number of seconds (300): the form people type in the API, where a
// nanosecond count would surprise.
type Duration time.Duration

// MarshalJSON writes d as text.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads text or seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%q is not a duration such as \"5m\" or \"24h\"", s)
		}
		*d = Duration(v)
		return nil
	}
	secs, err := strconv.ParseFloat(string(b), 64)
	if err != nil || secs < -1e9 || secs > 1e9 {
		return fmt.Errorf("%s is not a duration: want text such as \"5m\" or a number of seconds", b)
	}
	*d = Duration(secs * float64(time.Second))
	return nil
}

// MarshalJSON writes h with its tolerance as text ("5m0s"), see Duration.
func (h HMAC) MarshalJSON() ([]byte, error) {
	type plain HMAC
	out := struct {
		plain
		Tolerance *Duration `json:"tolerance,omitempty"`
	}{plain: plain(h)}
	if h.Tolerance != 0 {
		d := Duration(h.Tolerance)
		out.Tolerance = &d
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads h with its tolerance as text or seconds, see Duration.
func (h *HMAC) UnmarshalJSON(b []byte) error {
	type plain HMAC
	in := struct {
		*plain
		Tolerance *Duration `json:"tolerance,omitempty"`
	}{plain: (*plain)(h)}
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	if in.Tolerance != nil {
		h.Tolerance = time.Duration(*in.Tolerance)
	}
	return nil
}
