// Command gen writes internal/wirecheck's request and response schemas
// (schema_gen.go) from the Kafka message definitions that franz-go ships with
// its module (generate/definitions: one file per API, in the DSL kmsg itself
// is generated from), so the checker follows exactly the layout kmsg decodes.
//
//	go generate ./internal/wirecheck
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"go/format"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

func main() {
	defs := flag.String("defs", "", "franz-go's generate/definitions directory (default: from the module cache)")
	out := flag.String("o", "schema_gen.go", "output file")
	flag.Parse()
	if err := run(*defs, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(defs, out string) error {
	if defs == "" {
		dir, err := DefinitionsDir()
		if err != nil {
			return err
		}
		defs = dir
	}
	src, err := Generate(defs)
	if err != nil {
		return err
	}
	return os.WriteFile(out, src, 0o644)
}

// DefinitionsDir finds franz-go's message definitions in the module cache,
// downloading the module version go.mod requires if it is not there yet.
func DefinitionsDir() (string, error) {
	out, err := exec.Command("go", "mod", "download", "-json", "github.com/twmb/franz-go").Output()
	if err != nil {
		return "", fmt.Errorf("go mod download github.com/twmb/franz-go: %v", err)
	}
	m := regexp.MustCompile(`"Dir":\s*"([^"]+)"`).FindSubmatch(out)
	if m == nil {
		return "", errors.New("go mod download printed no Dir for github.com/twmb/franz-go")
	}
	return filepath.Join(string(m[1]), "generate", "definitions"), nil
}

// typ is a field's wire type.
type typ struct {
	kind     string // fixed, string, bytes, array, struct, nullableStruct
	size     int    // fixed
	elem     *typ   // array
	fields   []*fld // struct, nullableStruct (nil while ref is unresolved)
	ref      string // a named struct defined elsewhere
	children bool   // fields follow on the next, deeper-indented lines
}

type fld struct {
	name     string
	t        *typ
	min, max int // max -1: no upper bound
	tag      int // -1: not tagged
}

type request struct {
	name            string
	key, maxVersion int
	flexible        int // -1: never
	fields          []*fld
	response        []*fld
}

type line struct {
	indent int
	text   string
	where  string
}

var fixedSizes = map[string]int{"bool": 1, "int8": 1, "int16": 2, "uint16": 2, "int32": 4, "uint32": 4, "int64": 8, "float64": 8, "uuid": 16}

var (
	enumRe    = regexp.MustCompile(`^(\w+) (\w+)(?: camelcase)? \($`)
	headerRe  = regexp.MustCompile(`^(\w+) =>(?: (.*))?$`)
	fieldRe   = regexp.MustCompile(`^(\w+)(?:: (\S+))?(?: // (.+))?$`)
	macroRe   = regexp.MustCompile(`^(TimeoutMillis|ThrottleMillis)(?:\(\d+\))?(?: // (v\d+\+))?$`)
	versionRe = regexp.MustCompile(`^v(\d+)(\+|-v(\d+))$`)
	tagRe     = regexp.MustCompile(`^tag (\d+)$`)
	keyRe     = regexp.MustCompile(`(?:^|, )key (\d+)(?:,|$)`)
	maxRe     = regexp.MustCompile(`max version (\d+)`)
	flexRe    = regexp.MustCompile(`flexible v(\d+)\+`)
	defaultRe = regexp.MustCompile(`\([^()]*\)$`)
	nullRe    = regexp.MustCompile(`^nullable(?:-v\d+\+)?`)
)

// Generate parses every definition file in dir and returns the formatted
// schema_gen.go source.
func Generate(dir string) ([]byte, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var lines []line
	for _, f := range files {
		ls, err := readLines(f)
		if err != nil {
			return nil, err
		}
		lines = append(lines, ls...)
	}
	// Enums are defined in their own file, after the APIs that use them.
	enums := map[string]int{}
	for _, l := range lines {
		if m := enumRe.FindStringSubmatch(l.text); m != nil && l.indent == 0 {
			size, ok := fixedSizes[m[2]]
			if !ok {
				return nil, fmt.Errorf("%s: enum of unknown type %s", l.where, m[2])
			}
			enums[m[1]] = size
		}
	}
	named := map[string]*namedStruct{}
	var reqs []*request
	byName := map[string]*request{}
	for i := 0; i < len(lines); {
		l := lines[i]
		if l.indent != 0 {
			return nil, fmt.Errorf("%s: unexpected indentation", l.where)
		}
		if enumRe.MatchString(l.text) {
			for i++; i < len(lines) && lines[i].text != ")"; i++ {
			}
			i++
			continue
		}
		m := headerRe.FindStringSubmatch(l.text)
		if m == nil {
			return nil, fmt.Errorf("%s: expected a definition, got %q", l.where, l.text)
		}
		name, attrs := m[1], m[2]
		isRequest := strings.HasSuffix(name, "Request") && keyRe.MatchString(attrs)
		isResponse := strings.HasSuffix(name, "Response") && attrs == ""
		isNamed := strings.HasPrefix(attrs, "not top level")
		end := i + 1
		for end < len(lines) && lines[end].indent > 0 {
			end++
		}
		if !isRequest && !isResponse && !isNamed {
			i = end
			continue
		}
		fields, next, err := parseFields(lines, i+1, 2, enums)
		if err != nil && isNamed {
			// Record formats and the like use types requests never do;
			// that only matters if a request refers to them.
			named[name] = &namedStruct{err: err}
			i = end
			continue
		}
		if err != nil {
			return nil, err
		}
		if next != end {
			return nil, fmt.Errorf("%s: could not parse %s to its end", lines[next].where, name)
		}
		i = end
		if isNamed {
			named[name] = &namedStruct{fields: fields}
			continue
		}
		if isResponse {
			// A response shares its request's key, versions and
			// flexibility, and follows it in the definitions.
			req := byName[strings.TrimSuffix(name, "Response")+"Request"]
			if req == nil {
				return nil, fmt.Errorf("%s: %s before its request", l.where, name)
			}
			req.response = fields
			continue
		}
		r := &request{name: name, fields: fields, flexible: -1}
		r.key, _ = strconv.Atoi(keyRe.FindStringSubmatch(attrs)[1])
		mm := maxRe.FindStringSubmatch(attrs)
		if mm == nil {
			return nil, fmt.Errorf("%s: %s has no max version", l.where, name)
		}
		r.maxVersion, _ = strconv.Atoi(mm[1])
		if fm := flexRe.FindStringSubmatch(attrs); fm != nil {
			r.flexible, _ = strconv.Atoi(fm[1])
		}
		reqs = append(reqs, r)
		byName[name] = r
	}
	for _, r := range reqs {
		if err := resolve(r.fields, named, 0); err != nil {
			return nil, fmt.Errorf("%s: %v", r.name, err)
		}
		if r.response == nil {
			return nil, fmt.Errorf("%s has no response", r.name)
		}
		if err := resolve(r.response, named, 0); err != nil {
			return nil, fmt.Errorf("%s response: %v", r.name, err)
		}
	}
	sort.Slice(reqs, func(i, j int) bool { return reqs[i].key < reqs[j].key })
	return emit(reqs)
}

// readLines returns the definition lines of one file without comments and
// blank lines.
func readLines(path string) ([]line, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []line
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		raw := sc.Text()
		text := strings.TrimLeft(raw, " ")
		if text == "" || strings.HasPrefix(text, "//") {
			continue
		}
		out = append(out, line{indent: len(raw) - len(text), text: strings.TrimRight(text, " "), where: fmt.Sprintf("%s:%d", filepath.Base(path), n)})
	}
	return out, sc.Err()
}

// parseFields parses the fields at exactly indent starting at lines[i] and
// returns them with the index of the first line after them.
func parseFields(lines []line, i, indent int, enums map[string]int) ([]*fld, int, error) {
	var fields []*fld
	for i < len(lines) && lines[i].indent >= indent {
		l := lines[i]
		if l.indent != indent {
			return nil, i, fmt.Errorf("%s: unexpected indentation", l.where)
		}
		f, err := parseField(l, enums)
		if err != nil {
			return nil, i, err
		}
		i++
		if t := innermost(f.t); t.children {
			t.fields, i, err = parseFields(lines, i, indent+2, enums)
			if err != nil {
				return nil, i, err
			}
			t.children = false
		}
		fields = append(fields, f)
	}
	return fields, i, nil
}

func innermost(t *typ) *typ {
	for t.kind == "array" {
		t = t.elem
	}
	return t
}

func parseField(l line, enums map[string]int) (*fld, error) {
	if m := macroRe.FindStringSubmatch(l.text); m != nil {
		f := &fld{name: m[1], t: &typ{kind: "fixed", size: 4}, max: -1, tag: -1}
		if m[2] != "" {
			f.min, _ = strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(m[2], "v"), "+"))
		}
		return f, nil
	}
	m := fieldRe.FindStringSubmatch(l.text)
	if m == nil || m[2] == "" {
		return nil, fmt.Errorf("%s: cannot parse field %q", l.where, l.text)
	}
	f := &fld{name: m[1], max: -1, tag: -1}
	if c := m[3]; c != "" {
		if vm := versionRe.FindStringSubmatch(c); vm != nil {
			f.min, _ = strconv.Atoi(vm[1])
			if vm[3] != "" {
				f.max, _ = strconv.Atoi(vm[3])
			}
		} else if tm := tagRe.FindStringSubmatch(c); tm != nil {
			f.tag, _ = strconv.Atoi(tm[1])
		} else {
			return nil, fmt.Errorf("%s: unknown field annotation %q", l.where, c)
		}
	}
	t, err := parseType(m[2], enums)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", l.where, err)
	}
	f.t = t
	return f, nil
}

func parseType(s string, enums map[string]int) (*typ, error) {
	s = defaultRe.ReplaceAllString(s, "")
	nullable := false
	if loc := nullRe.FindStringIndex(s); loc != nil {
		nullable = true
		s = strings.TrimPrefix(s[loc[1]:], "-")
	}
	// A nullable string's own version suffix ("nullable-string-v10+")
	// changes nothing on the wire: null and strings share the encoding.
	s = regexp.MustCompile(`-v\d+\+$`).ReplaceAllString(s, "")
	switch {
	case s == "=>" || strings.HasPrefix(s, "=>"):
		if nullable {
			return &typ{kind: "nullableStruct", children: true}, nil
		}
		return &typ{kind: "struct", children: true}, nil
	case strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]"):
		elem, err := parseType(s[1:len(s)-1], enums)
		if err != nil {
			return nil, err
		}
		return &typ{kind: "array", elem: elem}, nil
	case s == "string":
		return &typ{kind: "string"}, nil
	case s == "bytes":
		return &typ{kind: "bytes"}, nil
	case strings.HasPrefix(s, "enum-"):
		size, ok := enums[strings.TrimPrefix(s, "enum-")]
		if !ok {
			return nil, fmt.Errorf("unknown enum %s", s)
		}
		return &typ{kind: "fixed", size: size}, nil
	}
	if size, ok := fixedSizes[s]; ok {
		return &typ{kind: "fixed", size: size}, nil
	}
	if regexp.MustCompile(`^[A-Z]\w*$`).MatchString(s) {
		if nullable {
			return nil, fmt.Errorf("nullable named struct %s is not supported", s)
		}
		return &typ{kind: "struct", ref: s}, nil
	}
	return nil, fmt.Errorf("unsupported type %q", s)
}

type namedStruct struct {
	fields []*fld
	err    error
}

func resolve(fields []*fld, named map[string]*namedStruct, depth int) error {
	if depth > 16 {
		return errors.New("struct nesting deeper than 16 (a cycle?)")
	}
	for _, f := range fields {
		t := innermost(f.t)
		if t.ref != "" {
			ns, ok := named[t.ref]
			if !ok {
				return fmt.Errorf("field %s: unknown struct %s", f.name, t.ref)
			}
			if ns.err != nil {
				return fmt.Errorf("field %s: struct %s: %v", f.name, t.ref, ns.err)
			}
			t.fields, t.ref = ns.fields, ""
		}
		if err := resolve(t.fields, named, depth+1); err != nil {
			return err
		}
	}
	return nil
}

func emit(reqs []*request) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("// Code generated by go run ./gen; DO NOT EDIT.\n\n")
	b.WriteString("// Source: the message definitions of github.com/twmb/franz-go (generate/definitions).\n\n")
	b.WriteString("package wirecheck\n\n")
	for _, kind := range []string{"Request", "Response"} {
		fmt.Fprintf(&b, "var %ss = map[int16]*message{\n", strings.ToLower(kind))
		for _, r := range reqs {
			fields := r.fields
			if kind == "Response" {
				fields = r.response
			}
			fmt.Fprintf(&b, "%d: {name: %q, maxVersion: %d, flexible: %d, fields: ", r.key, strings.TrimSuffix(r.name, "Request")+kind, r.maxVersion, r.flexible)
			emitFields(&b, fields)
			b.WriteString("},\n")
		}
		b.WriteString("}\n\n")
	}
	return format.Source(b.Bytes())
}

func emitFields(b *bytes.Buffer, fields []*fld) {
	b.WriteString("[]field{\n")
	for _, f := range fields {
		b.WriteString("{")
		emitType(b, f.t)
		if f.min != 0 {
			fmt.Fprintf(b, ", min: %d", f.min)
		}
		if f.max >= 0 {
			fmt.Fprintf(b, ", max: %d", f.max)
		} else {
			b.WriteString(", max: open")
		}
		if f.tag >= 0 {
			fmt.Fprintf(b, ", tagged: true, tag: %d", f.tag)
		}
		fmt.Fprintf(b, "}, // %s\n", f.name)
	}
	b.WriteString("}")
}

func emitType(b *bytes.Buffer, t *typ) {
	switch t.kind {
	case "fixed":
		fmt.Fprintf(b, "typ: typ{kind: kFixed, size: %d}", t.size)
	case "string":
		b.WriteString("typ: typ{kind: kString}")
	case "bytes":
		b.WriteString("typ: typ{kind: kBytes}")
	case "array":
		b.WriteString("typ: typ{kind: kArray, elem: &field{")
		emitType(b, t.elem)
		b.WriteString(", max: open}}")
	case "struct", "nullableStruct":
		kind := "kStruct"
		if t.kind == "nullableStruct" {
			kind = "kNullableStruct"
		}
		fmt.Fprintf(b, "typ: typ{kind: %s, fields: ", kind)
		emitFields(b, t.fields)
		b.WriteString("}")
	}
}
