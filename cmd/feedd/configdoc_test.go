package main

import (
	"flag"
	"os"
	"regexp"
	"strings"
	"testing"
)

// docRow matches a row of the table in docs/configuration.md.
var docRow = regexp.MustCompile("^\\| `--([a-z-]+)` \\| `([A-Z_]+)` \\| (?:`([^`]*)`|\\(none\\)) \\|")

func TestConfigurationDocMatchesFlags(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	type row struct{ env, def string }
	documented := map[string]row{}
	for _, line := range strings.Split(string(doc), "\n") {
		if m := docRow.FindStringSubmatch(line); m != nil {
			documented[m[1]] = row{env: m[2], def: m[3]}
		}
	}
	var c config
	c.serveFlagSet().VisitAll(func(f *flag.Flag) {
		r, ok := documented[f.Name]
		if !ok {
			t.Errorf("docs/configuration.md does not list --%s", f.Name)
			return
		}
		delete(documented, f.Name)
		if r.env != envName(f.Name) {
			t.Errorf("docs/configuration.md gives --%s the variable %s, the code reads %s", f.Name, r.env, envName(f.Name))
		}
		if r.def != f.DefValue {
			t.Errorf("docs/configuration.md gives --%s the default %q, the code has %q", f.Name, r.def, f.DefValue)
		}
	})
	for name := range documented {
		t.Errorf("docs/configuration.md lists --%s, which feedd serve does not have", name)
	}
}

func TestHelpAndREADMEListEverySetting(t *testing.T) {
	code, help, _ := runCmd(t, nil, "serve", "--help")
	if code != 0 {
		t.Fatalf("--help exit %d", code)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var c config
	c.serveFlagSet().VisitAll(func(f *flag.Flag) {
		if !regexp.MustCompile(`(?m)^\s+-` + f.Name + `\b`).MatchString(help) {
			t.Errorf("--help does not list --%s", f.Name)
		}
		if !strings.Contains(help, "["+envName(f.Name)+"]") {
			t.Errorf("--help does not name %s", envName(f.Name))
		}
		if !strings.Contains(string(readme), "--"+f.Name) {
			t.Errorf("README.md does not mention --%s", f.Name)
		}
	})
}
