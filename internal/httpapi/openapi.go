package httpapi

import (
	"cmp"
	"encoding"
	"encoding/json"
	"maps"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// OpenAPI returns the OpenAPI 3 document of the routes this server serves. It is built from the same route
// table the mux is built from: request and response bodies are component schemas reflected from the Go
// types (openapi_tables.go adds what reflection cannot see: required request fields, enums and query
// parameters), and every operation lists its error responses in the shared error envelope.
func (s *Server) OpenAPI() map[string]any {
	b := newSpecBuilder()
	for _, rt := range s.routes {
		b.markRoots(rt)
	}
	paths := map[string]map[string]any{}
	tags := map[string]bool{}
	for _, rt := range s.routes {
		op := b.operation(rt)
		tag := routeTag(rt.path)
		op["tags"] = []string{tag}
		tags[tag] = true
		if paths[rt.path] == nil {
			paths[rt.path] = map[string]any{}
		}
		paths[rt.path][strings.ToLower(rt.method)] = op
	}
	var tagList []map[string]string
	for _, t := range slices.Sorted(maps.Keys(tags)) {
		tagList = append(tagList, map[string]string{"name": t, "description": tagDescriptions[t]})
	}
	b.schemas["Error"] = b.schema(reflect.TypeFor[errorBody](), modeResponse)
	return map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{"title": "IT0 API", "version": cmp.Or(s.Version, "dev"),
			"description": "The REST API of IT0. Every error is `{\"error\":{\"code\",\"message\",\"hint\",\"field\"}}` " +
				"with the HTTP status of its code. Authenticate with `Authorization: Bearer <token>` (a JWT from " +
				"POST /api/v1/auth/login or an API key).",
			"license": map[string]string{"name": "Proprietary", "url": "https://github.com/it0/it0"},
			"contact": map[string]string{"name": "IT0", "url": "https://github.com/it0/it0"}},
		// A relative server URL resolves against wherever the document was fetched from: the same
		// document serves every deployment.
		"servers":  []map[string]string{{"url": "/", "description": "this IT0 server"}},
		"tags":     tagList,
		"paths":    paths,
		"security": []map[string][]string{{"bearer": {}}},
		"components": map[string]any{
			"schemas":   b.schemas,
			"responses": errorResponses(),
			"securitySchemes": map[string]any{
				"bearer": map[string]string{"type": "http", "scheme": "bearer",
					"description": "A JWT from POST /api/v1/auth/login or an API key from POST /api/v1/auth/api-keys"}},
		},
	}
}

// tagDescriptions describe each module's group of operations (a tag is the path segment after /api/v1/).
var tagDescriptions = map[string]string{
	"auth":      "Tenants, users, roles, API keys and sign-in",
	"audit":     "The append-only, hash-chained audit log",
	"inventory": "Servers, clusters, credentials and guarded command execution",
	"agent":     "Agent sessions, engines, approvals, tools and skills",
	"ops":       "Ops tasks, runbooks, the approval queue and standing orders",
	"monitor":   "Metric sources, metrics, alert rules, alerts and health checks",
	"comm":      "Contacts, escalation policies, messages and inbound answers",
	"twilio":    "Twilio webhooks (signed by Twilio)",
	"wecom":     "WeCom's encrypted callback (signed by WeCom): answers to escalations",
	"ws":        "WebSocket streams",
	"voice":     "Voice sessions and calls",
	"console":   "The web console",
}

// routeTag groups a route by module: the segment after /api/v1/ (or "ws" for WebSockets).
func routeTag(path string) string {
	if rest, ok := strings.CutPrefix(path, "/api/v1/"); ok {
		tag, _, _ := strings.Cut(rest, "/")
		return tag
	}
	if strings.HasPrefix(path, "/ws/") {
		return "ws"
	}
	tag, _, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	return tag
}

// specBuilder collects component schemas while operations are described.
type specBuilder struct {
	schemas map[string]any
	// names maps a type in a mode to its component name; byName catches two types wanting one name.
	names  map[typeMode]string
	byName map[string]typeMode
	// reqRoots and respRoots are the types reachable from request and response bodies: a struct used in
	// both gets two components, since only the request one lists the fields a client must send.
	inReq, inResp map[reflect.Type]bool
}

type schemaMode int

const (
	modeResponse schemaMode = iota
	modeRequest
)

type typeMode struct {
	t    reflect.Type
	mode schemaMode
}

func newSpecBuilder() *specBuilder {
	return &specBuilder{schemas: map[string]any{}, names: map[typeMode]string{}, byName: map[string]typeMode{},
		inReq: map[reflect.Type]bool{}, inResp: map[reflect.Type]bool{}}
}

func (b *specBuilder) markRoots(rt route) {
	if rt.req != nil {
		walkStructs(reflect.TypeOf(rt.req), b.inReq)
	}
	if rt.resp != nil {
		walkStructs(reflect.TypeOf(rt.resp), b.inResp)
	}
}

// walkStructs records every named struct type reachable from t.
func walkStructs(t reflect.Type, seen map[reflect.Type]bool) {
	t = deref(t)
	switch t.Kind() {
	case reflect.Slice, reflect.Array, reflect.Map:
		walkStructs(t.Elem(), seen)
	case reflect.Struct:
		if seen[t] || t == timeType {
			return
		}
		seen[t] = true
		for i := range t.NumField() {
			walkStructs(t.Field(i).Type, seen)
		}
	}
}

func (b *specBuilder) operation(rt route) map[string]any {
	op := map[string]any{"summary": rt.summary, "operationId": operationID(rt)}
	if rt.public {
		op["security"] = []map[string][]string{}
	}
	var params []map[string]any
	for _, m := range pathParam.FindAllStringSubmatch(rt.path, -1) {
		p := map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]any{"type": "string"}}
		if e, ok := pathEnums[rt.path+"#"+m[1]]; ok {
			p["schema"] = map[string]any{"type": "string", "enum": e}
		}
		params = append(params, p)
	}
	for _, q := range queryParams[rt.method+" "+rt.path] {
		params = append(params, q.spec())
	}
	if params != nil {
		op["parameters"] = params
	}
	if rt.req != nil {
		op["requestBody"] = map[string]any{"required": !optionalBody[reflect.TypeOf(rt.req)],
			"content": map[string]any{"application/json": map[string]any{"schema": b.schema(reflect.TypeOf(rt.req), modeRequest)}}}
	}
	status := cmp.Or(rt.status, http.StatusOK)
	resp := map[string]any{"description": http.StatusText(status)}
	if rt.resp != nil {
		resp["content"] = map[string]any{"application/json": map[string]any{"schema": b.schema(reflect.TypeOf(rt.resp), modeResponse)}}
	}
	responses := map[string]any{strconv.Itoa(status): resp}
	for _, code := range errorStatuses(rt, params != nil) {
		responses[strconv.Itoa(code)] = map[string]string{"$ref": "#/components/responses/" + errorResponseName[code]}
	}
	op["responses"] = responses
	return op
}

// errorStatuses lists the error statuses an operation can answer with.
func errorStatuses(rt route, hasParams bool) []int {
	codes := []int{http.StatusInternalServerError}
	if rt.req != nil || hasParams || rt.method != "GET" {
		codes = append(codes, http.StatusBadRequest)
	}
	if !rt.public {
		codes = append(codes, http.StatusUnauthorized, http.StatusForbidden)
	}
	if strings.Contains(rt.path, "{") {
		codes = append(codes, http.StatusNotFound)
	}
	if rt.method != "GET" && rt.method != "DELETE" {
		codes = append(codes, http.StatusConflict)
	}
	if rt.req != nil {
		codes = append(codes, http.StatusRequestEntityTooLarge)
	}
	if rt.public || rt.limited {
		codes = append(codes, http.StatusTooManyRequests)
	}
	slices.Sort(codes)
	return codes
}

var errorResponseName = map[int]string{
	http.StatusBadRequest:            "BadRequest",
	http.StatusUnauthorized:          "Unauthorized",
	http.StatusForbidden:             "Forbidden",
	http.StatusNotFound:              "NotFound",
	http.StatusConflict:              "Conflict",
	http.StatusRequestEntityTooLarge: "TooLarge",
	http.StatusTooManyRequests:       "TooManyRequests",
	http.StatusInternalServerError:   "InternalError",
}

var errorResponseText = map[int]string{
	http.StatusBadRequest:            "The request is invalid; error.field names the offending field and error.hint how to fix it",
	http.StatusUnauthorized:          "No valid credentials (send Authorization: Bearer <token>)",
	http.StatusForbidden:             "The caller's role lacks the permission, or the tenant is suspended or over quota",
	http.StatusNotFound:              "Nothing with that id in the caller's tenant",
	http.StatusConflict:              "The change conflicts with the current state (already decided, in use, duplicate)",
	http.StatusRequestEntityTooLarge: "The request body is larger than 1 MiB",
	http.StatusTooManyRequests:       "Too many requests; retry after the Retry-After header's seconds",
	http.StatusInternalServerError:   "An unexpected failure; the server logged it under the X-Request-Id",
}

// errorResponses are the shared error responses, all in the one error envelope.
func errorResponses() map[string]any {
	out := map[string]any{}
	for code, name := range errorResponseName {
		out[name] = map[string]any{"description": errorResponseText[code],
			"content": map[string]any{"application/json": map[string]any{"schema": map[string]string{"$ref": "#/components/schemas/Error"}}}}
	}
	return out
}

var pathParam = regexp.MustCompile(`\{([a-z_]+)\}`)

func operationID(rt route) string {
	id := strings.ToLower(rt.method)
	for _, part := range strings.Split(strings.TrimPrefix(rt.path, "/api/v1/"), "/") {
		part = strings.Trim(part, "{}")
		for _, w := range strings.FieldsFunc(part, func(r rune) bool { return r == '-' || r == '_' }) {
			id += strings.ToUpper(w[:1]) + w[1:]
		}
	}
	return id
}

var (
	timeType        = reflect.TypeFor[time.Time]()
	rawType         = reflect.TypeFor[json.RawMessage]()
	marshalerType   = reflect.TypeFor[json.Marshaler]()
	unmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	textType        = reflect.TypeFor[encoding.TextMarshaler]()
)

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// schema describes t as a JSON Schema in mode, following encoding/json's rules for names and embedding.
// Named structs become components referenced by $ref.
func (b *specBuilder) schema(t reflect.Type, mode schemaMode) map[string]any {
	t = deref(t)
	if e, ok := enumByType[t]; ok {
		return map[string]any{"type": jsonType(t), "enum": e}
	}
	if mode == modeRequest && reflect.PointerTo(t).Implements(unmarshalerType) && t != timeType && t != rawType {
		// A type that decodes itself accepts what its UnmarshalJSON accepts.
		if s, ok := requestSchemaByType[t]; ok {
			return s
		}
		return map[string]any{"description": "any JSON value the server's decoder accepts"}
	}
	switch {
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t == rawType:
		return map[string]any{"description": "any JSON value"}
	case t.Implements(marshalerType) || t.Implements(textType):
		// A type with its own encoding (a redacted secret) is described by its kind only.
		if t.Kind() == reflect.String {
			return map[string]any{"type": "string"}
		}
		return map[string]any{}
	}
	switch t.Kind() {
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return map[string]any{"type": jsonType(t)}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return map[string]any{"type": "string", "format": "byte"}
		}
		return map[string]any{"type": "array", "items": b.schema(t.Elem(), mode)}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": b.schema(t.Elem(), mode)}
	case reflect.Struct:
		return map[string]any{"$ref": "#/components/schemas/" + b.component(t, mode)}
	}
	return map[string]any{}
}

// enumSchema restricts t (or, for a slice, its items) to values.
func enumSchema(t reflect.Type, values []any) map[string]any {
	if t.Kind() == reflect.Slice {
		return map[string]any{"type": "array", "items": enumSchema(deref(t.Elem()), values)}
	}
	return map[string]any{"type": jsonType(t), "enum": values}
}

func jsonType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Float32, reflect.Float64:
		return "number"
	}
	return "integer"
}

// component returns the name of t's component schema in mode, describing it on first use.
func (b *specBuilder) component(t reflect.Type, mode schemaMode) string {
	key := typeMode{t, mode}
	if name, ok := b.names[key]; ok {
		return name
	}
	name := componentName(t, false)
	if mode == modeRequest && b.inResp[t] {
		name += "Input"
	}
	if other, taken := b.byName[name]; taken && other != key {
		name = componentName(t, true)
		if mode == modeRequest && b.inResp[t] {
			name += "Input"
		}
	}
	b.names[key], b.byName[name] = name, key
	b.schemas[name] = map[string]any{} // placeholder: recursive types refer to the name before it is filled
	b.schemas[name] = b.object(t, mode)
	return name
}

// componentName is t's exported name ("loginRequest" → "LoginRequest"; "listResponse[agent.Session]" →
// "SessionList"), qualified by its package when two types share a name.
func componentName(t reflect.Type, qualified bool) string {
	name := t.Name()
	if n, ok := componentNames[pkgName(t.PkgPath())+"."+name]; ok {
		name = n
	}
	if base, arg, ok := strings.Cut(name, "["); ok {
		arg = strings.TrimSuffix(arg, "]")
		if n, ok := componentNames[arg[strings.LastIndex(arg, "/")+1:]]; ok {
			arg = n
		}
		arg = arg[strings.LastIndex(arg, ".")+1:]
		name = upperFirst(arg) + strings.TrimSuffix(upperFirst(base), "Response")
	}
	name = upperFirst(name)
	if qualified {
		name = upperFirst(pkgName(t.PkgPath())) + name
	}
	return name
}

// pkgName is the last element of an import path.
func pkgName(path string) string { return path[strings.LastIndex(path, "/")+1:] }

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	r := []rune(s)
	r[0] = unicode.ToUpper(r[0])
	return string(r)
}

// object describes a struct's fields. Responses list as required every field that is always present (no
// omitempty); requests list the fields the handler insists on (requiredFields) and, as decode refuses
// unknown fields, allow no others.
func (b *specBuilder) object(t reflect.Type, mode schemaMode) map[string]any {
	props := map[string]any{}
	var required []string
	b.fields(t, t, mode, props, &required)
	if mode == modeRequest {
		required = slices.Clone(requiredFields[t]) // the table is shared: sort a copy
	}
	obj := map[string]any{"type": "object", "properties": props}
	if len(required) > 0 {
		slices.Sort(required)
		obj["required"] = required
	}
	if mode == modeRequest {
		obj["additionalProperties"] = false
	}
	return obj
}

func (b *specBuilder) fields(owner, t reflect.Type, mode schemaMode, props map[string]any, required *[]string) {
	// encoding/json's rule: a field of the outer struct hides an embedded struct's field of the same name.
	var embedded []reflect.Type
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			if ft := deref(f.Type); ft.Kind() == reflect.Struct {
				embedded = append(embedded, ft)
				continue
			}
		}
		name = cmp.Or(name, f.Name)
		if _, dup := props[name]; dup {
			continue
		}
		s := b.schema(f.Type, mode)
		if e, ok := fieldEnum(owner, name); ok {
			s = enumSchema(deref(f.Type), e)
		}
		omitted := strings.Contains(opts, "omitempty") || strings.Contains(opts, "omitzero")
		// encoding/json writes a nil pointer, slice or map as null unless omitempty leaves it out.
		if k := f.Type.Kind(); !omitted && (k == reflect.Pointer || k == reflect.Slice || k == reflect.Map) {
			if ref, isRef := s["$ref"]; isRef {
				s = map[string]any{"type": "object", "allOf": []any{map[string]any{"$ref": ref}}}
			}
			if _, typed := s["type"]; typed {
				s["nullable"] = true
			}
		}
		props[name] = s
		if !omitted {
			*required = append(*required, name)
		}
	}
	for _, ft := range embedded {
		b.fields(owner, ft, mode, props, required)
	}
}
