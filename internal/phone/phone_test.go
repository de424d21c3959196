package phone

import (
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		name, in, region, want string
		wantErr                bool
	}{
		{name: "e164", in: "+15551234567", want: "+15551234567"},
		{name: "spaces dashes parens", in: "+1 (555) 123-4567", want: "+15551234567"},
		{name: "dots and slash", in: "+49 30/1234.5678", want: "+493012345678"},
		{name: "00 prefix", in: "0044 20 7946 0958", want: "+442079460958"},
		{name: "00 prefix with region", in: "0044 20 7946 0958", region: "US", want: "+442079460958"},
		{name: "national with region US", in: "(555) 123-4567", region: "US", want: "+15551234567"},
		{name: "national with trunk 0 GB", in: "020 7946 0958", region: "GB", want: "+442079460958"},
		{name: "national with trunk 0 DE", in: "030 12345678", region: "DE", want: "+493012345678"},
		{name: "plus ignores region", in: "+44 20 7946 0958", region: "US", want: "+442079460958"},
		{name: "national without region", in: "555 123 4567", wantErr: true},
		{name: "empty", in: "", wantErr: true},
		{name: "letters", in: "+1 800 FLOWERS", wantErr: true},
		{name: "no digits", in: "+ ( )", wantErr: true},
		{name: "too short", in: "+1 555", wantErr: true},
		{name: "too long", in: "+1 555 123 4567 8901 2345", wantErr: true},
		{name: "unknown country code", in: "+999 123 456 789", wantErr: true},
		{name: "second plus", in: "+1 +555 123 4567", wantErr: true},
		{name: "over MaxLen", in: "+1" + strings.Repeat(" ", MaxLen) + "5551234567", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Normalize(tt.in, tt.region)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Normalize(%q, %q) = %q, nil; want an error", tt.in, tt.region, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Normalize(%q, %q) = %q, %v; want %q, nil", tt.in, tt.region, got, err, tt.want)
			}
		})
	}
}
