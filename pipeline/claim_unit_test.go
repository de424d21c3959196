package pipeline

import (
	"testing"

	"github.com/inlet-dev/inlet/internal/chstore"
)

// TestClaimEpoch: a later generation claims above any earlier claim without asking; this member claims
// again at its own epoch; past a claim of its own generation by another member (a static member's
// replacement) or of a later generation (the group's generations started again) it goes above it only
// with the coordinator's word (confirm), so that the new claim still orders after every earlier one.
func TestClaimEpoch(t *testing.T) {
	for _, c := range []struct {
		name        string
		gen         int32
		prev        chstore.Owner
		had         bool
		want        uint64
		wantConfirm bool
	}{
		{"first claim", 7, chstore.Owner{}, false, packEpoch(0, 7, 0), false},
		{"later generation", 9, chstore.Owner{Epoch: packEpoch(0, 7, 3), Member: "a"}, true, packEpoch(0, 9, 0), false},
		{"later generation keeps the era", 2, chstore.Owner{Epoch: packEpoch(4, 1, 0), Member: "a"}, true, packEpoch(4, 2, 0), false},
		{"own claim again", 7, chstore.Owner{Epoch: packEpoch(1, 7, 2), Member: "me"}, true, packEpoch(1, 7, 2), false},
		{"static replacement", 7, chstore.Owner{Epoch: packEpoch(1, 7, 2), Member: "a"}, true, packEpoch(1, 7, 3), true},
		{"generations restarted", 3, chstore.Owner{Epoch: packEpoch(1, 57, 0), Member: "a"}, true, packEpoch(2, 3, 0), true},
		{"sequence exhausted", 7, chstore.Owner{Epoch: packEpoch(0, 7, 1<<16-1), Member: "a"}, true, packEpoch(1, 7, 0), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, confirm := claimEpoch(c.gen, "me", c.prev, c.had)
			if got != c.want || confirm != c.wantConfirm {
				t.Fatalf("claimEpoch = %s, %v; want %s, %v", epochString(got), confirm, epochString(c.want), c.wantConfirm)
			}
			if c.had && got < c.prev.Epoch {
				t.Fatalf("claim %s orders before the previous %s", epochString(got), epochString(c.prev.Epoch))
			}
		})
	}
	// A stale member's claim (an earlier generation) orders below the later claim, whenever it is written.
	if stale, _ := claimEpoch(6, "old", chstore.Owner{}, false); stale >= packEpoch(0, 7, 0) {
		t.Fatalf("a generation-6 claim %s orders at or above generation 7's", epochString(stale))
	}
	if e := packEpoch(3, 1<<31-1, 9); epochString(e) != "3/2147483647/9" {
		t.Fatalf("epochString = %s", epochString(e))
	}
}
