// Executes Go text/template cases the way Ollama's template.Execute does, for tools/go_template_golden.py.
//
// Reads a JSON list of {"template": string, "runs": [data, ...]} on stdin; writes the same list with "outputs":
// per run {"output": string} or {"error": string}. "Messages" in a run's data become Ollama's message structs
// (fields Role, Content, Thinking, ToolName, Images, ToolCalls), the rest stays plain JSON values; templates are
// parsed with Option("missingkey=zero") and Ollama's "json" function, as in ollama/template/template.go.
package main

import (
	"bytes"
	"encoding/json"
	"os"
	"text/template"
)

type Message struct {
	Role      string
	Content   string
	Thinking  string
	ToolName  string
	Images    []string
	ToolCalls []any
}

type Case struct {
	Template string           `json:"template"`
	Runs     []map[string]any `json:"runs"`
	Outputs  []map[string]string `json:"outputs"`
}

var funcs = template.FuncMap{
	"json": func(v any) string {
		b, _ := json.Marshal(v)
		return string(b)
	},
}

func main() {
	var cases []Case
	if err := json.NewDecoder(os.Stdin).Decode(&cases); err != nil {
		panic(err)
	}
	for i := range cases {
		tmpl, err := template.New("").Option("missingkey=zero").Funcs(funcs).Parse(cases[i].Template)
		for _, run := range cases[i].Runs {
			if err != nil {
				cases[i].Outputs = append(cases[i].Outputs, map[string]string{"error": err.Error()})
				continue
			}
			if raw, ok := run["Messages"].([]any); ok {
				var messages []*Message
				for _, m := range raw {
					fields := m.(map[string]any)
					message := &Message{}
					message.Role, _ = fields["Role"].(string)
					message.Content, _ = fields["Content"].(string)
					messages = append(messages, message)
				}
				run["Messages"] = messages
			}
			var out bytes.Buffer
			if err := tmpl.Execute(&out, run); err != nil {
				cases[i].Outputs = append(cases[i].Outputs, map[string]string{"error": err.Error()})
			} else {
				cases[i].Outputs = append(cases[i].Outputs, map[string]string{"output": out.String()})
			}
		}
	}
	encoder := json.NewEncoder(os.Stdout)
	encoder.SetEscapeHTML(false)
	if err := encoder.Encode(cases); err != nil {
		panic(err)
	}
}
