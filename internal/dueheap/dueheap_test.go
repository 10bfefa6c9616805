package dueheap_test

import (
	"container/heap"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/it0/it0/internal/dueheap"
)

type item struct {
	dueheap.Entry
	name int
}

// TestOrderAndIndex pushes, fixes and removes items at random and checks that pops come out by due time
// and that every item's Index is its place in the heap (-1 once out).
func TestOrderAndIndex(t *testing.T) {
	var h dueheap.Heap[*item]
	base := time.Unix(0, 0)
	items := make([]*item, 200)
	for i := range items {
		items[i] = &item{name: i}
		if items[i].Index() != -1 {
			t.Fatalf("a new item is queued at %d", items[i].Index())
		}
		items[i].Due = base.Add(time.Duration(rand.IntN(1000)) * time.Millisecond)
		heap.Push(&h, items[i])
	}
	check := func() {
		for i, it := range h {
			if it.Index() != i {
				t.Fatalf("item %d at %d says %d", it.name, i, it.Index())
			}
		}
	}
	check()
	for _, it := range items[:50] {
		it.Due = base.Add(time.Duration(rand.IntN(1000)) * time.Millisecond)
		heap.Fix(&h, it.Index())
	}
	check()
	for _, it := range items[50:70] {
		heap.Remove(&h, it.Index())
		if it.Index() != -1 {
			t.Fatalf("a removed item is queued at %d", it.Index())
		}
	}
	check()
	var last time.Time
	for h.Len() > 0 {
		it := heap.Pop(&h).(*item)
		if it.Due.Before(last) || it.Index() != -1 {
			t.Fatalf("popped %v after %v (index %d)", it.Due, last, it.Index())
		}
		last = it.Due
	}
}
