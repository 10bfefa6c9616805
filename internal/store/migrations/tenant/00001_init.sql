-- +goose Up
{{template "audit" .}}
