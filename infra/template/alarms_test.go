package template_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/awslabs/goformation/v7/cloudformation/cloudwatch"

	"github.com/chronicle-go/chronicle/infra/template"
)

// alarmTopic is the AlarmTopicArn the alarm rules load the template with.
const alarmTopic = "arn:aws:sns:us-east-1:123456789012:oncall"

// alarmViolations: every dead-letter queue (a queue's redrive target or a
// stream mapping's OnFailure destination) has an alarm on a visible
// message; the relay's stream iterator age, each projection's lag p99 and
// the API's 5xx rate have an alarm whose threshold is a parameter; the
// Lambda throttles alarm covers every function and the DynamoDB throttles
// alarm every table; every alarm notifies AlarmTopicArn into alarm and
// back to OK; and the dashboard's body is JSON once substituted.
func alarmViolations(t *testing.T, tpl *template.Template, projections []string) []string {
	t.Helper()
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	resolve := func(v string) string {
		r, err := tpl.Resolve(v, values{})
		if err != nil {
			add("resolve %q: %v", v, err)
		}
		return r
	}
	alarms := tpl.GetAllCloudWatchAlarmResources()
	dims := func(a *cloudwatch.Alarm) map[string]string {
		m := map[string]string{}
		for _, d := range a.Dimensions {
			m[d.Name] = resolve(d.Value)
		}
		return m
	}
	find := func(namespace, metric string, match func(map[string]string) bool) []string {
		var ids []string
		for id, a := range alarms {
			if a.Namespace != nil && resolve(*a.Namespace) == namespace && a.MetricName != nil && *a.MetricName == metric && match(dims(a)) {
				ids = append(ids, id)
			}
		}
		slices.Sort(ids)
		return ids
	}

	for _, dlq := range deadLetterQueues(t, tpl) {
		name, _ := values{}.GetAtt(dlq, "QueueName")
		if len(find("AWS/SQS", "ApproximateNumberOfMessagesVisible", func(d map[string]string) bool { return d["QueueName"] == name })) == 0 {
			add("dead-letter queue %s has no alarm on ApproximateNumberOfMessagesVisible", dlq)
		}
	}

	fns, err := tpl.Functions()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fns {
		if len(f.StreamEvents) == 0 {
			continue
		}
		ref, _ := values{}.Ref(f.Name)
		if len(find("AWS/Lambda", "IteratorAge", func(d map[string]string) bool { return d["FunctionName"] == ref })) == 0 {
			add("stream consumer %s has no IteratorAge alarm", f.Name)
		}
	}
	stack, _ := values{}.Ref("AWS::StackName")
	ns := "Chronicle/" + stack // METRICS_NAMESPACE
	for _, p := range projections {
		if len(find(ns, "ProjectionLag", func(d map[string]string) bool { return d["Projection"] == p && d["Function"] == "projector" })) == 0 {
			add("projection %s has no ProjectionLag alarm in namespace %s", p, ns)
		}
	}
	if len(find("AWS/ApiGateway", "5XXError", func(d map[string]string) bool { return d["ApiName"] != "" && d["Stage"] != "" })) == 0 {
		add("no alarm on the API's 5XXError")
	}

	// The metric-math alarms: every function's throttles, every table's.
	covered := map[string]map[string]bool{} // metric → dimension values
	for _, a := range alarms {
		for _, q := range a.Metrics {
			if q.MetricStat == nil {
				continue
			}
			m := q.MetricStat.Metric
			for _, d := range m.Dimensions {
				key := resolve(*m.Namespace) + "/" + *m.MetricName
				if covered[key] == nil {
					covered[key] = map[string]bool{}
				}
				covered[key][resolve(d.Value)] = true
			}
		}
	}
	for _, f := range fns {
		if ref, _ := (values{}).Ref(f.Name); !covered["AWS/Lambda/Throttles"][ref] {
			add("function %s: no alarm on its Throttles", f.Name)
		}
	}
	tables, err := tpl.Tables()
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		name, _ := values{}.Ref(tb.Name)
		if !covered["AWS/DynamoDB/WriteThrottleEvents"][name] || !covered["AWS/DynamoDB/ReadThrottleEvents"][name] {
			add("table %s: no alarm on its read and write throttle events", tb.Name)
		}
	}

	for id, a := range alarms {
		if !slices.Equal(a.AlarmActions, []string{alarmTopic}) || !slices.Equal(a.OKActions, []string{alarmTopic}) {
			add("alarm %s notifies %v (OK: %v), not AlarmTopicArn", id, a.AlarmActions, a.OKActions)
		}
	}
	for id, d := range tpl.GetAllCloudWatchDashboardResources() {
		body := resolve(d.DashboardBody)
		var v struct {
			Widgets []json.RawMessage `json:"widgets"`
		}
		if err := json.Unmarshal([]byte(body), &v); err != nil || len(v.Widgets) == 0 {
			add("dashboard %s: body is not JSON with widgets: %v", id, err)
		}
	}
	slices.Sort(out)
	return out
}

// deadLetterQueues are the queues that are another queue's redrive target
// or a stream mapping's OnFailure destination.
func deadLetterQueues(t *testing.T, tpl *template.Template) []string {
	t.Helper()
	qs, err := tpl.Queues()
	if err != nil {
		t.Fatal(err)
	}
	fns, err := tpl.Functions()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, q := range qs {
		if q.DeadLetterQueue != "" {
			out = append(out, q.DeadLetterQueue)
		}
	}
	for _, f := range fns {
		for _, e := range f.StreamEvents {
			if e.OnFailure != "" {
				out = append(out, e.OnFailure)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// TestAlarms: the template's alarms and dashboard (see alarmViolations).
func TestAlarms(t *testing.T) {
	params := map[string]string{"AlarmTopicArn": alarmTopic}
	for k, v := range required {
		params[k] = v
	}
	for _, v := range alarmViolations(t, load(t, params), []string{"user-view", "actor-activity"}) {
		t.Error(v)
	}
}

// TestAlarmsWithoutTopic: with no AlarmTopicArn the alarms notify nobody
// (the console shows them), rather than an empty or invalid action.
func TestAlarmsWithoutTopic(t *testing.T) {
	tpl := load(t, required)
	alarms := tpl.GetAllCloudWatchAlarmResources()
	if len(alarms) == 0 {
		t.Fatal("no alarms")
	}
	for id, a := range alarms {
		if len(a.AlarmActions) != 0 || len(a.OKActions) != 0 {
			t.Errorf("alarm %s: actions %v / %v without a topic", id, a.AlarmActions, a.OKActions)
		}
	}
}
