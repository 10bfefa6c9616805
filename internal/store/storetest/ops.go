package storetest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/ops"
	"github.com/it0/it0/internal/store"
)

func runOps(t *testing.T, open func(testing.TB) *store.DB) {
	t.Run("Tasks", func(t *testing.T) {
		t.Parallel()
		db := open(t)
		actx, bctx := twoTenants(t, db, "tasks")
		mk := func(typ, status string, i int) *ops.Task {
			task := &ops.Task{ID: uuid.NewString(), Type: typ, Title: "check disks", Description: "all web servers", Status: status,
				Priority: "high", TargetServers: []string{"srv-1"}, CreatedBy: "u1", CreatedAt: at.Add(time.Duration(i) * time.Minute),
				UpdatedAt: at.Add(time.Duration(i) * time.Minute)}
			if err := db.OpsTaskCreate(actx, task); err != nil {
				t.Fatal(err)
			}
			return task
		}
		t1, t2 := mk("inspection", "running", 0), mk("recovery", "running", 1)
		got, err := db.OpsTaskGet(actx, t1.ID)
		if err != nil || got.Title != "check disks" || len(got.TargetServers) != 1 || got.FinishedAt != nil || !got.CreatedAt.Equal(at) {
			t.Fatalf("round trip: %v %+v", err, got)
		}
		if _, err := db.OpsTaskGet(bctx, t1.ID); !errs.Is(err, errs.NotFound) {
			t.Errorf("cross-tenant get: %v", err)
		}
		done := at.Add(time.Hour)
		got.Status, got.ResultSummary, got.Resolution, got.SessionID, got.FinishedAt = "completed", "freed 3 GB", "fixed", "sess-1", &done
		if err := db.OpsTaskUpdate(actx, got); err != nil {
			t.Fatal(err)
		}
		if err := db.OpsTaskUpdate(bctx, got); !errs.Is(err, errs.NotFound) {
			t.Errorf("cross-tenant update: %v", err)
		}
		got, _ = db.OpsTaskGet(actx, t1.ID)
		if got.Status != "completed" || got.ResultSummary != "freed 3 GB" || got.Resolution != "fixed" || got.FinishedAt == nil || !got.FinishedAt.Equal(done) {
			t.Errorf("after update: %+v", got)
		}
		// Ensure lists are newest first and filter by status and type.
		if list, err := db.OpsTaskList(actx, "", "", 10); err != nil || len(list) != 2 || list[0].ID != t2.ID {
			t.Errorf("list: %v %+v", err, list)
		}
		if list, _ := db.OpsTaskList(actx, "running", "", 10); len(list) != 1 || list[0].ID != t2.ID {
			t.Errorf("running: %+v", list)
		}
		if list, _ := db.OpsTaskList(actx, "", "inspection", 10); len(list) != 1 || list[0].ID != t1.ID {
			t.Errorf("inspection: %+v", list)
		}
		if list, _ := db.OpsTaskList(bctx, "", "", 10); len(list) != 0 {
			t.Errorf("tenant b lists %d tasks", len(list))
		}
	})

	t.Run("Runbooks", func(t *testing.T) {
		t.Parallel()
		db := open(t)
		actx, bctx := twoTenants(t, db, "runbooks")
		r := &ops.Runbook{ID: uuid.NewString(), Name: "disk-cleanup", Description: "free disk", PromptTemplate: "clean {{server}}",
			AllowedTools: []string{"run_command"}, MaxRiskLevel: 1, TriggerType: "manual", Enabled: true, Source: "custom", CreatedAt: at, UpdatedAt: at}
		if err := db.RunbookPut(actx, r); err != nil {
			t.Fatal(err)
		}
		// Ensure a runbook is found by id and by name, and only in its tenant.
		for _, key := range []string{r.ID, r.Name} {
			got, err := db.RunbookGet(actx, key)
			if err != nil || got.ID != r.ID || got.PromptTemplate != "clean {{server}}" || len(got.AllowedTools) != 1 || !got.Enabled {
				t.Errorf("get %s: %v %+v", key, err, got)
			}
			if _, err := db.RunbookGet(bctx, key); !errs.Is(err, errs.NotFound) {
				t.Errorf("cross-tenant get %s: %v", key, err)
			}
		}
		// Ensure a second put replaces it, and another runbook cannot take its name.
		r.Enabled, r.MaxRiskLevel, r.UpdatedAt = false, 2, at.Add(time.Minute)
		if err := db.RunbookPut(actx, r); err != nil {
			t.Fatal(err)
		}
		if got, _ := db.RunbookGet(actx, r.ID); got.Enabled || got.MaxRiskLevel != 2 {
			t.Errorf("after second put: %+v", got)
		}
		clash := *r
		clash.ID = uuid.NewString()
		if err := db.RunbookPut(actx, &clash); !errs.Is(err, errs.Conflict) {
			t.Errorf("name taken: %v", err)
		}
		second := *r
		second.ID, second.Name = uuid.NewString(), "app-restart"
		if err := db.RunbookPut(actx, &second); err != nil {
			t.Fatal(err)
		}
		if list, err := db.RunbookList(actx); err != nil || len(list) != 2 || list[0].Name != "app-restart" {
			t.Errorf("list by name: %v %+v", err, list)
		}
		if err := db.RunbookDelete(bctx, r.ID); !errs.Is(err, errs.NotFound) {
			t.Errorf("cross-tenant delete: %v", err)
		}
		if err := db.RunbookDelete(actx, r.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := db.RunbookGet(actx, r.ID); !errs.Is(err, errs.NotFound) {
			t.Errorf("deleted: %v", err)
		}
	})

	t.Run("StandingOrders", func(t *testing.T) {
		t.Parallel()
		db := open(t)
		actx, bctx := twoTenants(t, db, "orders")
		mk := func(name string, created time.Time) *ops.StandingOrder {
			return &ops.StandingOrder{Name: name, Trigger: ops.Trigger{Type: "cron", CronExpression: "0 8 * * *", Timezone: "Asia/Shanghai"},
				Status: "active", CreatedBy: "u1", CreatedAt: created, UpdatedAt: created}
		}
		var ids []string
		for i, name := range []string{"morning check", "disk watch"} {
			o := mk(name, at.Add(time.Duration(i)*time.Minute))
			if err := db.StandingOrderCreate(actx, o); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, o.ID)
		}
		// Ensure ids count per day and per tenant: SO-YYYYMMDD-001, -002; tenant b starts at -001 again.
		if ids[0] != ops.StandingOrderID(at, 1) || ids[1] != ops.StandingOrderID(at, 2) {
			t.Errorf("ids = %v", ids)
		}
		ob := mk("b's order", at)
		if err := db.StandingOrderCreate(bctx, ob); err != nil || ob.ID != ops.StandingOrderID(at, 1) {
			t.Errorf("tenant b's first order: %s, %v", ob.ID, err)
		}
		got, err := db.StandingOrderGet(actx, ids[0])
		if err != nil || got.Name != "morning check" || got.Trigger.CronExpression != "0 8 * * *" || got.Trigger.Timezone != "Asia/Shanghai" {
			t.Fatalf("round trip: %v %+v", err, got)
		}
		if got, err := db.StandingOrderGet(bctx, ids[1]); !errs.Is(err, errs.NotFound) {
			t.Errorf("cross-tenant get: %v %+v", err, got)
		}
		got.Status, got.UpdatedAt = "paused", at.Add(time.Hour)
		if err := db.StandingOrderUpdate(actx, got); err != nil {
			t.Fatal(err)
		}
		if list, err := db.StandingOrderList(actx, ""); err != nil || len(list) != 2 || list[0].ID != ids[1] {
			t.Errorf("list: %v %+v", err, list)
		}
		if list, _ := db.StandingOrderList(actx, "paused"); len(list) != 1 || list[0].ID != ids[0] {
			t.Errorf("paused: %+v", list)
		}

		// Ensure an order has one open run at a time, and runs list newest first.
		run := func(order string, started time.Time) (*ops.Execution, error) {
			e := &ops.Execution{ID: uuid.NewString(), OrderID: order, Status: ops.ExecRunning, TriggerType: "cron",
				TriggerContext: json.RawMessage(`{"fired_at":"08:00"}`), StartedAt: started}
			return e, db.ExecutionCreate(actx, e)
		}
		e1, err := run(ids[0], at)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := run(ids[0], at.Add(time.Minute)); !errs.Is(err, errs.Conflict) {
			t.Errorf("overlapping run: %v", err)
		}
		if _, err := run(ids[1], at.Add(time.Minute)); err != nil {
			t.Errorf("another order's run: %v", err)
		}
		fin := at.Add(2 * time.Minute)
		e1.Status, e1.Summary, e1.ActionsTaken, e1.FinishedAt = ops.ExecCompleted, "all good", json.RawMessage(`[{"command":"df -h"}]`), &fin
		if err := db.ExecutionUpdate(actx, e1); err != nil {
			t.Fatal(err)
		}
		if err := db.ExecutionUpdate(bctx, e1); !errs.Is(err, errs.NotFound) {
			t.Errorf("cross-tenant update: %v", err)
		}
		got1, err := db.ExecutionGet(actx, e1.ID)
		if err != nil || got1.Status != ops.ExecCompleted || got1.FinishedAt == nil || !got1.FinishedAt.Equal(fin) ||
			string(got1.TriggerContext) != `{"fired_at":"08:00"}` {
			t.Fatalf("execution round trip: %v %+v", err, got1)
		}
		var actions []map[string]string
		if json.Unmarshal(got1.ActionsTaken, &actions); len(actions) != 1 || actions[0]["command"] != "df -h" {
			t.Errorf("actions taken: %s", got1.ActionsTaken)
		}
		e3, err := run(ids[0], at.Add(3*time.Minute))
		if err != nil {
			t.Fatalf("run after the first finished: %v", err)
		}
		if list, _ := db.ExecutionList(actx, ids[0], "", 10); len(list) != 2 || list[0].ID != e3.ID {
			t.Errorf("runs of order 1: %+v", list)
		}
		if list, _ := db.ExecutionList(actx, "", ops.ExecRunning, 10); len(list) != 2 {
			t.Errorf("running runs: %+v", list)
		}
		if list, _ := db.ExecutionList(bctx, "", "", 10); len(list) != 0 {
			t.Errorf("tenant b lists %d runs", len(list))
		}
	})
}
