package app

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestManager(t *testing.T) {
	t.Parallel()
	var log []string
	mod := func(name string, fail bool) InitFunc {
		return func(context.Context) (func(context.Context) error, error) {
			if fail {
				return nil, errors.New("boom")
			}
			log = append(log, "start "+name)
			return func(context.Context) error { log = append(log, "stop "+name); return nil }, nil
		}
	}
	setup := func(failing string) *Manager {
		m := NewManager()
		m.Register("store", mod("store", failing == "store"))
		m.Register("audit", mod("audit", failing == "audit"), "store")
		m.Register("auth", mod("auth", failing == "auth"), "store", "audit")
		m.Register("api", mod("api", failing == "api"), "auth", "audit")
		m.Register("all", nil, "api")
		return m
	}

	t.Run("OrderAndStop", func(t *testing.T) {
		log = nil
		m := setup("")
		stop, err := m.Start(context.Background(), []string{"all"})
		if err != nil {
			t.Fatal(err)
		}
		stop(context.Background())
		want := []string{"start store", "start audit", "start auth", "start api", "stop api", "stop auth", "stop audit", "stop store"}
		if !slices.Equal(log, want) {
			t.Errorf("got %v\nwant %v", log, want)
		}
	})
	t.Run("Subset", func(t *testing.T) {
		order, err := setup("").Resolve([]string{"audit"})
		if err != nil || !slices.Equal(order, []string{"store", "audit"}) {
			t.Errorf("got %v %v", order, err)
		}
	})
	t.Run("ErrUnknownModule", func(t *testing.T) {
		if _, err := setup("").Resolve([]string{"nope"}); err == nil || !strings.Contains(err.Error(), `unknown module "nope"`) {
			t.Errorf("got %v", err)
		}
	})
	t.Run("ErrCycle", func(t *testing.T) {
		m := setup("")
		m.Register("store", nil, "api")
		if _, err := m.Resolve([]string{"all"}); err == nil || !strings.Contains(err.Error(), "cycle") {
			t.Errorf("got %v", err)
		}
	})
	t.Run("FailureStopsStarted", func(t *testing.T) {
		log = nil
		_, err := setup("auth").Start(context.Background(), []string{"all"})
		if err == nil {
			t.Fatal("no error")
		}
		want := []string{"start store", "start audit", "stop audit", "stop store"}
		if !slices.Equal(log, want) {
			t.Errorf("got %v want %v", log, want)
		}
	})
}
