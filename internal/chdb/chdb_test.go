package chdb

import (
	"strings"
	"testing"
)

func TestValidateCluster(t *testing.T) {
	for _, tc := range []struct {
		cluster string
		quorum  int
		addrs   int
		want    string // "" for valid
	}{
		{"", 0, 1, ""},
		{"inlet", 0, 2, ""},
		{"inlet", 2, 2, ""},
		{"inlet", 3, 2, "insert_quorum: 3 is outside 0..2"},
		{"inlet", -1, 2, "insert_quorum: -1 is outside 0..2"},
		{"in-let", 0, 2, `cluster: "in-let" is not a plain identifier`},
	} {
		c := Defaults()
		c.Cluster, c.InsertQuorum = tc.cluster, tc.quorum
		c.Addrs = nil
		for range tc.addrs {
			c.Addrs = append(c.Addrs, "127.0.0.1:9000")
		}
		err := c.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: Validate() = %v; want nil", tc, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: Validate() = %v; want %q", tc, err, tc.want)
		}
	}
	c := Defaults()
	c.Addrs = []string{"a:1", "b:1"}
	if c.Replicated() || c.Quorum() != 2 {
		t.Errorf("no cluster: Replicated() = %v, Quorum() = %d; want false, 2", c.Replicated(), c.Quorum())
	}
	c.Cluster, c.InsertQuorum = "inlet", 1
	if !c.Replicated() || c.Quorum() != 1 {
		t.Errorf("cluster, insert_quorum 1: Replicated() = %v, Quorum() = %d; want true, 1", c.Replicated(), c.Quorum())
	}
}
