package skill

import (
	"io/fs"
	"reflect"
	"strings"
	"testing"

	"github.com/it0/it0/skills"
)

// FuzzParse feeds arbitrary bytes to Parse, then checks that a parsed skill is valid, survives a
// Marshal/Parse round trip unchanged, and renders without panicking.
func FuzzParse(f *testing.F) {
	_ = fs.WalkDir(skills.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, err := fs.ReadFile(skills.FS, p); err == nil {
				f.Add(strings.Split(p, "/")[0], b, "web-1 \"two words\"")
			}
		}
		return nil
	})
	f.Add("restart-service", []byte(refExample), "web-1 nginx")
	f.Add("", []byte("---\nname: a\ndescription: d\nmetadata: {k: v}\nhooks: {Stop: []}\nx: [1, {a: b}]\n---\n$0 $ARGUMENTS[1]"), "'a b' c")
	f.Add("a", []byte("---\r\nname: a\r\ndescription: \"x\\ty\"\r\nallowed-tools: a\tb, c(d e)\r\n---"), "")
	f.Add("a", []byte("---\nname: &x a\n---\n"), "")
	f.Fuzz(func(t *testing.T, dir string, data []byte, args string) {
		s, err := Parse(dir, data)
		if err != nil {
			if s != nil {
				t.Fatal("Parse returned a skill and an error")
			}
			return
		}
		if err := s.Validate(dir); err != nil {
			t.Fatalf("parsed skill fails Validate: %v", err)
		}
		again, err := Parse(s.Name, s.Marshal())
		if err != nil {
			t.Fatalf("Parse(Marshal()) failed: %v\n%s", err, s.Marshal())
		}
		if !reflect.DeepEqual(s, again) {
			t.Fatalf("round trip differs\n%s\nfirst  %#v\nsecond %#v", s.Marshal(), s, again)
		}
		_ = s.Render(args, "sess", "/dir")
		_ = PromptSection([]*Skill{s}, "zh-CN")
	})
}
