package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/it0/it0/internal/bus"
	"github.com/it0/it0/internal/outbox"
)

// StreamSamples carries the collector's metric samples to the threshold-triggered standing orders (ops):
// one message per tenant and stored batch, with the highest value per server and metric (Highest). It is
// not an outbox stream: the samples are already stored, and a batch lost to a crash or a bus outage delays
// a threshold by one collection, as a missed scrape would.
const StreamSamples = "monitor.samples"

// sampleBatch is a StreamSamples message.
type sampleBatch struct {
	TenantID string   `json:"tenant_id"`
	Samples  []Sample `json:"samples"`
}

// PublishSamples publishes the highest of samples per server and metric, of tenant tenantID, on
// StreamSamples.
func PublishSamples(ctx context.Context, b bus.Bus, tenantID string, samples []Sample) error {
	data, err := json.Marshal(sampleBatch{TenantID: tenantID, Samples: Highest(samples)})
	if err != nil {
		return err
	}
	_, err = b.Publish(ctx, StreamSamples, data)
	return err
}

// ConsumeSamples handles the batches of StreamSamples as member name of consumer group group until ctx
// ends; h runs with the batch's tenant in its ctx. An error from h leaves the batch pending, to be handed
// out again.
func ConsumeSamples(ctx context.Context, b bus.Bus, group, name string, log *slog.Logger, h func(ctx context.Context, samples []Sample) error) error {
	return outbox.Consume(ctx, b, StreamSamples, group, name, log, func(data []byte) ([]Sample, string, error) {
		var m sampleBatch
		if err := json.Unmarshal(data, &m); err != nil {
			return nil, "", fmt.Errorf("samples batch: %w", err)
		}
		if m.TenantID == "" {
			return nil, "", errors.New("samples batch: no tenant")
		}
		return m.Samples, m.TenantID, nil
	}, h)
}

// Highest keeps, per server and metric, the highest value of samples (of several series, such as the
// mounts of disk_usage, the worst), in first-seen order, without labels.
func Highest(samples []Sample) []Sample {
	type key struct{ server, metric string }
	idx := map[key]int{}
	var out []Sample
	for _, s := range samples {
		k := key{s.ServerID, s.Metric}
		if i, ok := idx[k]; ok {
			if s.Value > out[i].Value {
				out[i].Value, out[i].At = s.Value, s.At
			}
			continue
		}
		idx[k] = len(out)
		s.Label = ""
		out = append(out, s)
	}
	return out
}
