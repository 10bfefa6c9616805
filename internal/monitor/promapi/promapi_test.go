package promapi_test

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/it0/it0/internal/monitor/promapi"
)

// prometheus answers like Prometheus' HTTP API for the queries the tests send, and checks the request is
// what the API documents (GET, form-encoded query, time as Unix seconds, step in seconds).
func prometheus(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		q := r.URL.Query()
		bad := func(msg string) {
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"status":"error","errorType":"bad_data","error":"` + msg + `"}`))
		}
		if r.Method != http.MethodGet {
			bad("want GET")
			return
		}
		switch r.URL.Path {
		case "/api/v1/query":
			if q.Get("time") != "1764151200.5" {
				bad("time is " + q.Get("time"))
				return
			}
			switch q.Get("query") {
			case `node_load1`:
				w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[
					{"metric":{"__name__":"node_load1","instance":"web-1:9100","job":"node"},"value":[1764151200.5,"0.75"]},
					{"metric":{"__name__":"node_load1","instance":"web-2:9100","job":"node"},"value":[1764151200.5,"NaN"]}]}}`))
			case `scalar(1)`:
				w.Write([]byte(`{"status":"success","data":{"resultType":"scalar","result":[1764151200.5,"1"]}}`))
			case `slow`:
				w.WriteHeader(http.StatusServiceUnavailable)
				w.Write([]byte(`{"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"}`))
			default:
				bad(`1:1: parse error: unexpected character: '!'`)
			}
		case "/api/v1/query_range":
			if q.Get("start") != "1764150000" || q.Get("end") != "1764150120" || q.Get("step") != "60" {
				bad("range " + r.URL.RawQuery)
				return
			}
			w.Write([]byte(`{"status":"success","data":{"resultType":"matrix","result":[
				{"metric":{"instance":"web-1:9100"},"values":[[1764150000,"1"],[1764150060,"2"],[1764150120,"3"]]}]}}`))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestQuery ensures instant and range queries decode vectors, scalars and matrices, drop NaN, and turn
// error answers into *promapi.Error with the API's error type.
func TestQuery(t *testing.T) {
	t.Parallel()
	srv := prometheus(t)
	c := promapi.New(srv.Client())
	ctx := context.Background()
	at := time.Unix(1764151200, 500e6)
	got, err := c.Query(ctx, srv.URL, "node_load1", at)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Value != 0.75 || got[0].Labels["instance"] != "web-1:9100" || !got[0].At.Equal(at) {
		t.Errorf("vector = %+v, want web-1 at 0.75 (NaN dropped)", got)
	}
	if got, err := c.Query(ctx, srv.URL+"/", "scalar(1)", at); err != nil || len(got) != 1 || got[0].Value != 1 {
		t.Errorf("scalar = %+v %v", got, err)
	}
	rng, err := c.QueryRange(ctx, srv.URL, "node_load1", time.Unix(1764150000, 0), time.Unix(1764150120, 0), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(rng) != 3 || rng[2].Value != 3 || !rng[1].At.Equal(time.Unix(1764150060, 0)) {
		t.Errorf("matrix = %+v", rng)
	}
	var pe *promapi.Error
	if _, err := c.Query(ctx, srv.URL, "!", at); !errors.As(err, &pe) || pe.Type != "bad_data" || pe.Status != 400 {
		t.Errorf("bad query: %v, want a bad_data error", err)
	}
	if _, err := c.Query(ctx, srv.URL, "slow", at); !errors.As(err, &pe) || pe.Type != "timeout" || pe.Status != 503 {
		t.Errorf("timeout: %v", err)
	}
	if _, err := c.Query(ctx, srv.URL+"/nothing-here", "x", at); err == nil {
		t.Error("a 404 page was taken for an answer")
	}
	if _, err := c.Query(ctx, "ftp://x", "x", at); err == nil {
		t.Error("ftp URL accepted")
	}
}

// FuzzDecode ensures no answer panics the decoder, and decoded samples are finite.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{"instance":"a"},"value":[1764151200.5,"0.75"]}]}}`))
	f.Add([]byte(`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"],[2,"NaN"]]}]}}`))
	f.Add([]byte(`{"status":"success","data":{"resultType":"scalar","result":[1,"+Inf"]}}`))
	f.Add([]byte(`{"status":"error","errorType":"bad_data","error":"x"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := promapi.Decode(body, 200)
		if err != nil {
			return
		}
		for _, s := range got {
			if math.IsNaN(s.Value) || math.IsInf(s.Value, 0) || s.Labels == nil {
				t.Fatalf("sample %+v", s)
			}
		}
	})
}
