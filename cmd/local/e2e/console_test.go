package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/google/uuid"
)

// Environment of the browser test.
const (
	envChromium        = "CHRONICLE_CHROMIUM"         // the browser; default /usr/bin/chromium (Debian's package)
	envRequireChromium = "CHRONICLE_REQUIRE_CHROMIUM" // 1: a missing browser fails the test (CI) instead of skipping it
	envScreenshots     = "CHRONICLE_SCREENSHOTS"      // where the screenshots go; default <tmp>/chronicle-console-screenshots
)

// TestConsoleInBrowser clicks the audit console through "who deleted my
// user?" in headless Chromium against the service: a user created, renamed
// and deleted over the API; then, in the page, found by id, its timeline
// with the delete's actor and reason, the state at v1 and v2 (the version
// slider, by keyboard), a what-if at v2, the deleter's activity that day,
// the projections, and the page at 360 px wide. It writes a screenshot of
// each step, for people to look at, and fails on any error the page logs
// (a Content-Security-Policy violation included).
func TestConsoleInBrowser(t *testing.T) {
	browser := envOr(envChromium, "/usr/bin/chromium")
	if _, err := os.Stat(browser); err != nil {
		if os.Getenv(envRequireChromium) == "1" {
			t.Fatalf("%s=1 but there is no browser at %s: apt-get install chromium", envRequireChromium, browser)
		}
		t.Skipf("no browser at %s (apt-get install chromium, or set %s)", browser, envChromium)
	}
	shots := envOr(envScreenshots, filepath.Join(os.TempDir(), "chronicle-console-screenshots"))
	if err := os.RemoveAll(shots); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", shots)

	start := time.Now()
	// The browser starts while the story below runs: both take seconds.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser),
		chromedp.NoSandbox, // as root, in a container
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1100, 900),
	)...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer cancelBrowser()

	// Whatever the page logs as an error, and every exception, fails the
	// test at the end: a CSP violation is one.
	var mu sync.Mutex
	var pageErrors []string
	listen := func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			pageErrors = append(pageErrors, fmt.Sprintf("exception: %s (%s:%d)", exceptionText(e.ExceptionDetails), e.ExceptionDetails.URL, e.ExceptionDetails.LineNumber))
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError {
				var args []string
				for _, a := range e.Args {
					args = append(args, string(a.Value))
				}
				pageErrors = append(pageErrors, "console.error: "+strings.Join(args, " "))
			}
		case *log.EventEntryAdded:
			// A deleted user answers 410, which the page expects and
			// shows; Chromium logs every 4xx of a fetch all the same.
			gone := e.Entry.Source == log.EntrySourceNetwork && strings.Contains(e.Entry.Text, "status of 410")
			if e.Entry.Level == log.EntryLevelError && !gone {
				pageErrors = append(pageErrors, fmt.Sprintf("%s: %s (%s)", e.Entry.Source, e.Entry.Text, e.Entry.URL))
			}
		}
	}
	started := make(chan error, 1)
	go func() { started <- chromedp.Listen(bctx, listen) }() // it starts the browser

	// The story, over the API: alice (the suite's admin) creates and
	// renames; carol, another admin, deletes with a reason.
	carol := newIdentity(t, "admin")
	email := uniqueEmail("bob")
	id := createUser(t, admin(), "Bob", email).ID
	do(t, req{method: "PUT", path: "/users/" + id + "/name", token: s.admin, body: map[string]string{"name": "Robert"}}).want(t, http.StatusOK)
	deleteRequest := "e2e-delete-" + uuid.NewString()[:8]
	do(t, req{method: "DELETE", path: "/users/" + id, token: carol.token, body: map[string]string{"reason": "asked to be forgotten"},
		header: map[string]string{"X-Request-Id": deleteRequest}}).want(t, http.StatusOK)
	// A live user, to be found by email (the lookup is the read model's).
	adaEmail := uniqueEmail("ada")
	adaID := createUser(t, admin(), "Ada", adaEmail).ID
	// The actor's activity is a projection: wait for it, so that the page's
	// answer is a fact, not a race.
	eventually(t, 20*time.Second, "carol's activity shows the delete", func() (bool, string) {
		r := do(t, req{method: "GET", path: "/actors/" + carol.sub + "/activity", token: s.admin})
		return r.status == http.StatusOK && strings.Contains(string(r.body), id), string(r.body)
	})
	projected(t, admin(), adaID, 1, http.StatusOK)
	t.Logf("the story over the API, and the projections caught up: %s", time.Since(start).Round(time.Millisecond))
	if err := <-started; err != nil {
		t.Fatalf("start %s: %v", browser, err)
	}
	t.Logf("%s started: %s", browser, time.Since(start).Round(time.Millisecond))

	step := func(name string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		start := time.Now()
		if err := chromedp.Do(bctx, actions...); err != nil {
			buf, _ := chromedp.Run(bctx, chromedp.FullScreenshot(100))
			if len(buf) > 0 {
				_ = os.WriteFile(filepath.Join(shots, "failed-"+name+".png"), buf, 0o644)
			}
			t.Fatalf("%s: %v (page errors: %v)", name, err, pageErrors)
		}
		t.Logf("%s: %s", name, time.Since(start).Round(time.Millisecond))
	}
	screenshot := func(name, what string) {
		t.Helper()
		buf, err := chromedp.Run(bctx, chromedp.FullScreenshot(100)) // 100: PNG
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		path := filepath.Join(shots, name)
		if err := os.WriteFile(path, buf, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot %s: %s", path, what)
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return s
	}
	wantText := func(sel string, want ...string) {
		t.Helper()
		got := text(sel)
		for _, w := range want {
			if !strings.Contains(got, w) {
				t.Errorf("%s shows %q, want it to hold %q", sel, got, w)
			}
		}
	}
	// waitText waits until the element's text holds want: the page
	// answers asynchronously.
	waitText := func(sel, want string) chromedp.Action[chromedp.Void] {
		poll := chromedp.Poll[bool](fmt.Sprintf(`(document.querySelector(%q)?.textContent || "").includes(%q)`, sel, want),
			chromedp.WithPollingTimeout(20*time.Second))
		return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			if _, err := poll(ctx, t); err != nil {
				return fmt.Errorf("wait for %s to hold %q: %w", sel, want, err)
			}
			return nil
		})
	}

	// Who deleted my user? Open the link make run prints, find the user.
	step("open the console with #token=",
		chromedp.Navigate(s.base+"/console#token="+s.admin),
		chromedp.WaitVisible(chromedp.ID("q")))
	href, err := chromedp.Run(bctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(href, "token=") {
		t.Errorf("the token stays in the address bar: %s", href)
	}
	wantText("#who", "Signed in as "+s.adminSub)
	step("find the user by id",
		chromedp.SendKeys(chromedp.ID("q"), id),
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(chromedp.ID("ev-3")),
		waitText("#status", "3 events"))
	wantText("#user-now", "deleted", carol.sub, "asked to be forgotten")
	wantText("#ev-1", "user.created.v1", s.adminSub, "Bob", email)
	wantText("#ev-2", "user.renamed.v1", "Bob", "Robert")
	wantText("#ev-3", "user.deleted.v1", carol.sub, "asked to be forgotten", deleteRequest, "deleted")
	trace, err := chromedp.Run(bctx, chromedp.AttributeValue(chromedp.CSS("#ev-3 a"), "href"))
	if err != nil {
		t.Fatal(err)
	}
	if want := s.base + "/_local/traces/" + deleteRequest; s.local != nil && trace.Value != want { // in AWS: the X-Ray console
		t.Errorf("the delete's trace link is %q, want %q", trace.Value, want)
	}
	screenshot("01-who-deleted-my-user.png", "the user found by id: deleted by "+carol.sub+" (\"asked to be forgotten\"), its timeline of three events with a diff each, actor, reason, correlation id and trace link")

	// Time travel: the slider, by keyboard.
	step("time travel to v1 (Home on the slider)",
		chromedp.Focus(chromedp.ID("version")),
		chromedp.KeyEvent(kb.Home),
		waitText("#version-out", "v1 of 3"),
		waitText("#state", "Bob"))
	wantText("#state", "active", email)
	if st := text("#state"); strings.Contains(st, "Robert") {
		t.Errorf("the state at v1 shows the later name: %q", st)
	}
	step("scroll to the slider", chromedp.ScrollIntoView(chromedp.ID("travel")))
	screenshot("02-time-travel-v1.png", "the version slider at v1: the state as created (name Bob, active), v1's event outlined in the timeline")
	step("time travel to v2 (ArrowRight)",
		chromedp.KeyEvent(kb.ArrowRight),
		waitText("#version-out", "v2 of 3"),
		waitText("#state", "Robert"))

	// What if carol had suspended the user at v2 instead of deleting it?
	step("ask what if: suspend at v2",
		chromedp.SetValue(chromedp.ID("wi-command"), "suspend"),
		chromedp.Evaluate[chromedp.Void](`void document.getElementById("wi-command").dispatchEvent(new Event("change"))`),
		chromedp.SendKeys(chromedp.ID("wi-value"), "what if we had suspended instead"),
		chromedp.Click(chromedp.CSS("#whatif-form button[type=submit]")),
		waitText("#whatif-out", "Nothing was written"))
	wantText("#whatif-out", "What if suspend at v2", "user.suspended.v1", "suspended", s.adminSub)
	step("scroll to what-if", chromedp.ScrollIntoView(chromedp.ID("whatif-out")))
	screenshot("03-what-if.png", "what if the user had been suspended at v2: the event it would append (v3 user.suspended.v1) and the diff active -> suspended; nothing written")
	// And a what-if the rules refuse: suspending the deleted user at v3.
	step("ask what if: suspend at v3, refused",
		chromedp.Focus(chromedp.ID("version")),
		chromedp.KeyEvent(kb.End),
		waitText("#version-out", "v3 of 3"),
		chromedp.Click(chromedp.CSS("#whatif-form button[type=submit]")),
		waitText("#whatif-out", "Rejected"))

	// What else did carol do that day?
	step("open carol's activity from the delete",
		chromedp.Click(chromedp.CSS("#ev-3 button.actor")),
		waitText("#activity-list", id))
	wantText("#activity-h", "What else did "+carol.sub+" do on")
	wantText("#activity-list", "user.deleted.v1", "asked to be forgotten")

	// The projections: lag and dead letters.
	step("show the projections",
		chromedp.Click(chromedp.ID("ops-refresh")),
		waitText("#ops-out", "user-view"))
	wantText("#ops-out", "actor-activity", "welcome-mail", "dead letters")
	screenshot("04-activity-and-projections.png", "what else "+carol.sub+" did that day (the delete), and each projection's lag, queue, in flight and dead letters")

	// Find a live user by email.
	step("find a user by email",
		chromedp.Evaluate[chromedp.Void](`void (document.getElementById("q").value = "")`),
		chromedp.SendKeys(chromedp.ID("q"), adaEmail),
		chromedp.KeyEvent(kb.Enter),
		waitText("#status", "User "+adaID+": 1 event"))
	wantText("#user-now", "Ada", adaEmail, "active")
	wantText("#ev-1", "user.created.v1")

	// Keyboard and labels: every control is a real one, with a label.
	unlabeled, err := chromedp.Run(bctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("input, select")]
		.filter((e) => !e.hidden && e.labels.length === 0 && !e.getAttribute("aria-label")).map((e) => e.id)`))
	if err != nil {
		t.Fatal(err)
	}
	if len(unlabeled) > 0 {
		t.Errorf("controls without a label: %v", unlabeled)
	}
	step("focus the projections' button", chromedp.Focus(chromedp.ID("ops-refresh")))
	focusOutline, err := chromedp.Run(bctx, chromedp.Evaluate[string](`getComputedStyle(document.activeElement).outlineStyle`))
	if err != nil {
		t.Fatal(err)
	}
	if focusOutline == "none" || focusOutline == "" {
		t.Errorf("a focused button has no outline (%q)", focusOutline)
	}

	// 360 px wide: nothing wider than the screen.
	step("at 360 px wide",
		chromedp.EmulateViewport(360, 780),
		chromedp.ScrollIntoView(chromedp.ID("timeline")))
	overflow, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth - document.documentElement.clientWidth`))
	if err != nil {
		t.Fatal(err)
	}
	if overflow > 0 {
		t.Errorf("at 360 px the page is %d px wider than the screen", overflow)
	}
	screenshot("05-narrow-360px.png", "the same page at 360 px wide: one column, no horizontal scrolling")

	mu.Lock()
	defer mu.Unlock()
	if len(pageErrors) > 0 {
		t.Errorf("the page logged errors: %s", strings.Join(pageErrors, "\n"))
	}
	if err := ctx.Err(); errors.Is(err, context.DeadlineExceeded) {
		t.Error("the browser test ran out of time")
	}
}

// exceptionText is what an exception says: its description when it has one.
func exceptionText(d *runtime.ExceptionDetails) string {
	if d.Exception != nil && d.Exception.Description != "" {
		return d.Exception.Description
	}
	return d.Text
}
