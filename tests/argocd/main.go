// Command argocd-health runs an Argo CD custom health script (Lua) against one object and
// prints the health it returns as JSON: {"status": ..., "message": ...}.
//
// It runs the script the way Argo CD's application controller runs a
// resource.customizations.health.<group>_<kind> entry: gopher-lua at Argo CD's version,
// standard libraries off (a custom check's default) except package, base and table, a
// one-second deadline, the object as the global `obj`, and the returned table read back
// through gopher-json. Lathe's tests use it to check manifests/argocd/health/*.lua against
// objects captured from real runs.
//
//	argocd-health SCRIPT [OBJECT]   (OBJECT: a YAML or JSON file; stdin when absent or "-")
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	lua "github.com/yuin/gopher-lua"
	luajson "layeh.com/gopher-json"
	"sigs.k8s.io/yaml"
)

// health is what Argo CD reads from the script's table.
type health struct {
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
}

// statuses Argo CD accepts from a script; anything else becomes Unknown.
var statuses = map[string]bool{
	"Healthy": true, "Progressing": true, "Degraded": true, "Suspended": true, "Missing": true, "Unknown": true,
}

func main() {
	if len(os.Args) < 2 || len(os.Args) > 3 {
		fmt.Fprintln(os.Stderr, "usage: argocd-health SCRIPT [OBJECT]")
		os.Exit(2)
	}
	script, err := os.ReadFile(os.Args[1])
	if err != nil {
		fail(err)
	}
	obj, err := readObject(os.Args[2:])
	if err != nil {
		fail(err)
	}
	result, err := run(string(script), obj)
	if err != nil {
		fail(err)
	}
	out := json.NewEncoder(os.Stdout)
	out.SetEscapeHTML(false) // messages say "accuracy >= 0.9", not "\u003e="
	if err := out.Encode(result); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "argocd-health:", err)
	os.Exit(1)
}

// readObject decodes YAML or JSON into the shapes an unstructured Kubernetes object has:
// whole numbers as int64, others as float64 (what Argo CD's controller holds in memory).
func readObject(args []string) (map[string]any, error) {
	var data []byte
	var err error
	if len(args) == 0 || args[0] == "-" {
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(args[0])
	}
	if err != nil {
		return nil, err
	}
	raw, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, err
	}
	decoder := json.NewDecoder(bytes.NewReader(raw))
	decoder.UseNumber()
	var obj map[string]any
	if err := decoder.Decode(&obj); err != nil {
		return nil, fmt.Errorf("the object is not a YAML or JSON mapping: %w", err)
	}
	return numbers(obj).(map[string]any), nil
}

func numbers(value any) any {
	switch v := value.(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i
		}
		f, _ := v.Float64()
		return f
	case map[string]any:
		for key, item := range v {
			v[key] = numbers(item)
		}
	case []any:
		for i, item := range v {
			v[i] = numbers(item)
		}
	}
	return value
}

// run executes the script with `obj` set and reads the table it returns.
func run(script string, obj map[string]any) (*health, error) {
	state := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer state.Close()
	// Argo CD opens these three for every script (and a reduced os library, which Lathe's
	// scripts do not use, so it is left out here: a script that needs it fails this check).
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{{lua.LoadLibName, lua.OpenPackage}, {lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}} {
		if err := state.CallByParam(lua.P{Fn: state.NewFunction(lib.open), Protect: true}, lua.LString(lib.name)); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	state.SetContext(ctx)
	state.SetGlobal("obj", toLua(state, obj))
	if err := state.DoString(script); err != nil {
		return nil, err
	}
	returned := state.Get(-1)
	if returned.Type() != lua.LTTable {
		return nil, fmt.Errorf("expect table output from Lua script, not %s", returned.Type())
	}
	encoded, err := luajson.Encode(returned)
	if err != nil {
		return nil, err
	}
	result := &health{}
	if err := json.Unmarshal(encoded, result); err != nil {
		return nil, err
	}
	if !statuses[result.Status] {
		return &health{Status: "Unknown", Message: "Lua returned an invalid health status"}, nil
	}
	return result, nil
}

// toLua converts a decoded object into Lua values: maps to tables with string keys,
// lists to sequences, numbers to Lua numbers, null to nil.
func toLua(state *lua.LState, value any) lua.LValue {
	switch v := value.(type) {
	case bool:
		return lua.LBool(v)
	case int64:
		return lua.LNumber(v)
	case float64:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case []any:
		list := state.CreateTable(len(v), 0)
		for _, item := range v {
			list.Append(toLua(state, item))
		}
		return list
	case map[string]any:
		table := state.CreateTable(0, len(v))
		for key, item := range v {
			table.RawSetString(key, toLua(state, item))
		}
		return table
	}
	return lua.LNil
}
