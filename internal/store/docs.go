package store

import (
	"context"
	"encoding/json"
)

// Some tables keep an entity as a JSON document (column doc) beside the columns queries filter and sort
// on: metric sources, alert rules and alert events. getDoc and listDocs read them.

// getDoc decodes the doc of the one row query selects; errs.NotFound, naming what, when there is none.
func getDoc[T any](ctx context.Context, sc scope, what, query string, args ...any) (*T, error) {
	var doc string
	if err := sc.queryRow(ctx, query, args...).Scan(&doc); err != nil {
		return nil, notFound(err, what)
	}
	var v T
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// listDocs decodes the doc of every row query selects, in order.
func listDocs[T any](ctx context.Context, sc scope, query string, args ...any) ([]T, error) {
	rows, err := sc.query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var doc string
		if err := rows.Scan(&doc); err != nil {
			return nil, err
		}
		var v T
		if err := json.Unmarshal([]byte(doc), &v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
