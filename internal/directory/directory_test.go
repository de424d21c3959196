package directory

import (
	"errors"
	"strings"
	"testing"

	"github.com/inlet-dev/inlet/internal/domainerr"
)

func TestValidEmail(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"jane@example.com", true},
		{"Jane.Doe+tag@Example.COM", true},
		{"jane@localhost", true},
		{"", false},
		{"jane", false},
		{"jane@", false},
		{"@example.com", false},
		{"Jane <jane@example.com>", false},
		{"<jane@example.com>", false},
		{" jane@example.com", false},
		{"jane@example.com ", false},
		{"jane@@example.com", false},
		{"ja ne@example.com", false},
		{strings.Repeat("a", 250) + "@b.co", false},
	}
	for _, tt := range tests {
		if got := ValidEmail(tt.in); got != tt.want {
			t.Errorf("ValidEmail(%q) = %v; want %v", tt.in, got, tt.want)
		}
	}
}

func TestValidation(t *testing.T) {
	fields := func(t *testing.T, err error) string {
		t.Helper()
		if err == nil {
			return ""
		}
		var ve *domainerr.ValidationError
		if !errors.As(err, &ve) || !errors.Is(err, domainerr.ErrInvalid) {
			t.Fatalf("got %T %v; want a *ValidationError that is domainerr.ErrInvalid", err, err)
		}
		var names []string
		for _, f := range ve.Fields {
			names = append(names, f.Field)
		}
		return strings.Join(names, ",")
	}
	userTests := []struct {
		name string
		u    User
		want string
	}{
		{"ok", User{UserID: "42", Email: "a@b.co", Phone: "+15551234567"}, ""},
		{"only id", User{UserID: "42"}, ""},
		{"all bad", User{UserID: "", Email: "nope", Phone: "12"}, "user_id,email,phone"},
		{"id too long", User{UserID: strings.Repeat("é", MaxUserIDLen+1)}, "user_id"},
		{"id max runes", User{UserID: strings.Repeat("é", MaxUserIDLen)}, ""},
		{"id with NUL", User{UserID: "a\x00b"}, "user_id"},
		{"id invalid utf8", User{UserID: "a\xffb"}, "user_id"},
	}
	for _, tt := range userTests {
		t.Run("user "+tt.name, func(t *testing.T) {
			_, err := normalizeUser(tt.u, "")
			if got := fields(t, err); got != tt.want {
				t.Fatalf("invalid fields of %+v: got %q; want %q", tt.u, got, tt.want)
			}
		})
	}
	deviceTests := []struct {
		name string
		d    Device
		want string
	}{
		{"ok", Device{HWID: "h1", UserID: "42", Platform: PlatformIOS}, ""},
		{"anonymous free platform", Device{HWID: "h1", Platform: "Smart fridge OS"}, ""},
		{"no hwid", Device{Platform: "ios"}, "hwid"},
		{"hwid too long", Device{HWID: strings.Repeat("h", MaxHWIDLen+1)}, "hwid"},
		{"platform too long", Device{HWID: "h", Platform: strings.Repeat("p", MaxPlatformLen+1)}, "platform"},
		{"platform control char", Device{HWID: "h", Platform: "ios\n"}, "platform"},
		{"bad user id", Device{HWID: "h", UserID: strings.Repeat("u", MaxUserIDLen+1)}, "user_id"},
	}
	for _, tt := range deviceTests {
		t.Run("device "+tt.name, func(t *testing.T) {
			if got := fields(t, validateDevice(tt.d)); got != tt.want {
				t.Fatalf("invalid fields of %+v: got %q; want %q", tt.d, got, tt.want)
			}
		})
	}
}

func TestParseLine(t *testing.T) {
	tests := []struct {
		name, in string
		wantErr  string // substring of the error; "" for a good line
		user     bool
	}{
		{name: "user", in: `{"type":"user","user_id":"1","email":"a@b.co","phone":"+15551234567"}`, user: true},
		{name: "device", in: `{"type":"device","hwid":"h","user_id":"1","platform":"ios"}` + "\r\n"},
		{name: "nulls are absent", in: `{"type":"user","user_id":"1","email":null}`, user: true},
		{name: "bad json", in: `{"type":"user",`, wantErr: "invalid JSON"},
		{name: "not an object", in: `[1,2]`, wantErr: "invalid JSON"},
		{name: "trailing data", in: `{"type":"user","user_id":"1"} {}`, wantErr: "data after the object"},
		{name: "unknown field", in: `{"type":"user","user_id":"1","age":3}`, wantErr: "unknown field"},
		{name: "unknown type", in: `{"type":"cat","user_id":"1"}`, wantErr: `type: "cat"`},
		{name: "missing type", in: `{"user_id":"1"}`, wantErr: "type: missing"},
		{name: "device field on user", in: `{"type":"user","user_id":"1","hwid":"h"}`, wantErr: "hwid: not a field of a user line"},
		{name: "user field on device", in: `{"type":"device","hwid":"h","email":"a@b.co"}`, wantErr: "email: not a field of a device line"},
		{name: "invalid email", in: `{"type":"user","user_id":"1","email":"nope"}`, wantErr: "email: not a valid email address"},
		{name: "wrong type of field", in: `{"type":"user","user_id":1}`, wantErr: "invalid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, msg := parseLine([]byte(tt.in), 7, "")
			if tt.wantErr != "" {
				if !strings.Contains(msg, tt.wantErr) {
					t.Fatalf("parseLine(%s): got error %q; want one containing %q", tt.in, msg, tt.wantErr)
				}
				return
			}
			if msg != "" || p == nil {
				t.Fatalf("parseLine(%s): got %v, %q; want a line", tt.in, p, msg)
			}
			if p.line != 7 || p.isUser != tt.user {
				t.Fatalf("parseLine(%s): got line %d user %v; want line 7 user %v", tt.in, p.line, p.isUser, tt.user)
			}
		})
	}
	if p, msg := parseLine([]byte("  \r\n"), 1, ""); p != nil || msg != "" {
		t.Fatalf("blank line: got %v, %q; want nil, \"\"", p, msg)
	}
}

func TestConfigValidate(t *testing.T) {
	d := Defaults()
	if err := d.Validate(); err != nil {
		t.Fatalf("Defaults().Validate() = %v; want nil", err)
	}
	tests := []struct {
		field  string
		mutate func(*Config)
	}{
		{"default_region", func(c *Config) { c.DefaultRegion = "XX" }},
		{"import_batch", func(c *Config) { c.ImportBatch = 0 }},
		{"max_line_bytes", func(c *Config) { c.MaxLineBytes = 10 }},
		{"max_line_errors", func(c *Config) { c.MaxLineErrors = -1 }},
		{"max_hwids", func(c *Config) { c.MaxHWIDs = 0 }},
		{"cache_max_bytes", func(c *Config) { c.CacheMaxBytes = 100 }},
		{"ttl", func(c *Config) { c.TTL = 0 }},
		{"negative_ttl", func(c *Config) { c.NegativeTTL = 0 }},
		{"max_stale", func(c *Config) { c.MaxStale = c.TTL / 2 }},
		{"query_timeout", func(c *Config) { c.QueryTimeout = 0 }},
	}
	for _, tt := range tests {
		c := Defaults()
		tt.mutate(&c)
		err := c.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), tt.field+":") {
			t.Errorf("Validate() with a bad %s = %v; want an error naming it", tt.field, err)
		}
	}
	c := Defaults()
	c.DefaultRegion = "GB"
	if err := c.Validate(); err != nil {
		t.Errorf("Validate() with region GB = %v; want nil", err)
	}
}

func TestErrorsAreSentinels(t *testing.T) {
	if err := conflict("email"); !errors.Is(err, domainerr.ErrConflict) || err.Error() != "email: already used by another user" {
		t.Errorf("conflict: got %v (Is domainerr.ErrConflict %v); want the email conflict", err, errors.Is(err, domainerr.ErrConflict))
	}
	cause := errors.New("connection refused")
	err := error(&UnavailableError{Values: []string{"a"}, Err: cause})
	if !errors.Is(err, domainerr.ErrUnavailable) || !errors.Is(err, cause) {
		t.Errorf("UnavailableError: got %v; want Is domainerr.ErrUnavailable and its cause", err)
	}
}
