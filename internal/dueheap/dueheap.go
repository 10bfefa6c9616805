// Package dueheap orders things that fire at a deadline, earliest first, for container/heap: the check
// scheduler's slots and the voice pacer's frames share it.
package dueheap

import "time"

// Entry is embedded in what a Heap orders: its due time and its place in the heap.
type Entry struct {
	Due time.Time
	pos int // index+1 in the heap; 0 when not queued
}

// Index is the entry's place in its heap (for heap.Fix and heap.Remove), or -1 when it is not queued.
func (e *Entry) Index() int { return e.pos - 1 }

func (e *Entry) entry() *Entry { return e }

// Item is a pointer to a struct that embeds Entry.
type Item interface{ entry() *Entry }

// Heap is a min-heap of items by Due; use it through container/heap.
type Heap[T Item] []T

func (h Heap[T]) Len() int           { return len(h) }
func (h Heap[T]) Less(i, j int) bool { return h[i].entry().Due.Before(h[j].entry().Due) }

func (h Heap[T]) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].entry().pos, h[j].entry().pos = i+1, j+1
}

// Push is for container/heap.
func (h *Heap[T]) Push(x any) {
	it := x.(T)
	it.entry().pos = len(*h) + 1
	*h = append(*h, it)
}

// Pop is for container/heap; the popped item is no longer queued.
func (h *Heap[T]) Pop() any {
	old := *h
	it := old[len(old)-1]
	var zero T
	old[len(old)-1] = zero
	it.entry().pos = 0
	*h = old[:len(old)-1]
	return it
}
