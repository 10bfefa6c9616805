-- +goose Up
{{template "audit_heads" .}}
