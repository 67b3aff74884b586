//! What the checker found, for a person (a table), a script (a JSON line) and a CI system
//! (JUnit XML).
//!
//! Invariant: every selected case has exactly one verdict, in the order the cases run,
//! and every verdict that is not OK says what was expected and what happened instead.

use std::fmt::Write as _;

use serde::Serialize;

/// A case's result, in the classes of Autobahn|Testsuite and h2spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING-KEBAB-CASE")]
pub enum Verdict {
    Ok,
    /// Allowed by the lab, short of what serious software does.
    NonStrict,
    /// Said for information: the server's dialogue is not netlab's, so it cannot be judged.
    Informational,
    Failed,
    /// Not applicable to this codec or mode, or the server died earlier.
    Skipped,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Ok => "OK",
            Verdict::NonStrict => "NON-STRICT",
            Verdict::Informational => "INFORMATIONAL",
            Verdict::Failed => "FAILED",
            Verdict::Skipped => "SKIPPED",
        }
    }
}

/// One case's verdict, with what was expected and what the server did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub verdict: Verdict,
    pub expected: String,
    pub actual: String,
}

impl Outcome {
    pub fn new(verdict: Verdict, expected: impl Into<String>, actual: impl Into<String>) -> Self {
        Outcome {
            verdict,
            expected: expected.into(),
            actual: actual.into(),
        }
    }

    pub fn ok(expected: impl Into<String>, actual: impl Into<String>) -> Self {
        Self::new(Verdict::Ok, expected, actual)
    }

    pub fn failed(expected: impl Into<String>, actual: impl Into<String>) -> Self {
        Self::new(Verdict::Failed, expected, actual)
    }

    pub fn skipped(why: impl Into<String>) -> Self {
        Self::new(Verdict::Skipped, "", why)
    }
}

/// A case as the report names it.
#[derive(Clone, Copy, Debug)]
pub struct Named {
    pub id: &'static str,
    pub task: u8,
    pub title: &'static str,
}

/// Everything the checker found about one server.
#[derive(Debug)]
pub struct Report {
    /// What was checked: the address, or with --exec the target.
    pub server: String,
    pub codec: &'static str,
    pub mode: &'static str,
    pub results: Vec<(Named, Outcome)>,
    /// The case after which the server was found dead (or no longer answering), the
    /// first time.
    pub died_at: Option<&'static str>,
    /// How it was lost then: "died", or "stopped answering".
    pub lost: &'static str,
    /// Whether NON-STRICT counts as a failure (--strict).
    pub strict: bool,
}

#[derive(Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

impl Report {
    pub fn fails(&self, verdict: Verdict) -> bool {
        verdict == Verdict::Failed || (self.strict && verdict == Verdict::NonStrict)
    }

    pub fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        for (_, outcome) in &self.results {
            match outcome.verdict {
                Verdict::Skipped => counts.skipped += 1,
                v if self.fails(v) => counts.failed += 1,
                _ => counts.passed += 1,
            }
        }
        counts
    }

    pub fn failed(&self) -> bool {
        self.counts().failed > 0
    }

    /// The ids of the cases that count as failed, in order.
    pub fn failed_ids(&self) -> Vec<&'static str> {
        self.results
            .iter()
            .filter(|(_, o)| self.fails(o.verdict))
            .map(|(case, _)| case.id)
            .collect()
    }

    /// The JSON line of `--json`, its fields and its results in the order of the table.
    pub fn json(&self, target: Option<&str>) -> String {
        let counts = self.counts();
        let line = Line {
            target,
            server: &self.server,
            codec: self.codec,
            mode: self.mode,
            passed: counts.passed,
            failed: counts.failed,
            skipped: counts.skipped,
            died_at: self.died_at,
            results: Results(&self.results),
        };
        serde_json::to_string(&line).expect("a report is plain data")
    }

    /// The closing line, as h2spec ends: "N tests, P passed, S skipped, F failed".
    pub fn tally(&self) -> String {
        let c = self.counts();
        let mut line = format!(
            "{} tests, {} passed, {} skipped, {} failed",
            self.results.len(),
            c.passed,
            c.skipped,
            c.failed
        );
        if let Some(id) = self.died_at {
            let _ = write!(line, "; the server {} at {id}", self.lost);
        }
        line
    }
}

#[derive(Serialize)]
struct Line<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<&'a str>,
    server: &'a str,
    codec: &'a str,
    mode: &'a str,
    passed: usize,
    failed: usize,
    skipped: usize,
    died_at: Option<&'a str>,
    results: Results<'a>,
}

/// Results as a JSON object keyed by case id, in the order they ran.
struct Results<'a>(&'a [(Named, Outcome)]);

impl Serialize for Results<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(case, outcome)| (case.id, outcome)))
    }
}

/// The heading printed before the rows.
pub fn heading(server: &str, codec: &str, mode: &str) -> String {
    format!("netlab check {server} (codec {codec}, mode {mode})\n")
}

/// One row of the table; for a verdict other than OK and SKIPPED, what was expected and
/// what happened on the lines below, and for SKIPPED why, on the row.
pub fn row(case: &Named, outcome: &Outcome) -> String {
    let mut out = format!(
        "  {:<5} task {:<3} {:<62} {}",
        case.id,
        case.task,
        case.title,
        outcome.verdict.label()
    );
    match outcome.verdict {
        Verdict::Ok => out.push('\n'),
        Verdict::Skipped => {
            let _ = writeln!(out, " ({})", outcome.actual);
        }
        _ => {
            out.push('\n');
            if !outcome.expected.is_empty() {
                let _ = writeln!(out, "          expected: {}", outcome.expected);
            }
            let _ = writeln!(out, "          actual:   {}", outcome.actual);
        }
    }
    out
}

/// The tasks a summary has a column for, in order.
const TASKS: [u8; 7] = [0, 3, 6, 7, 8, 9, 10];

/// The summary of several targets: one row each, a column per task ("passed/run", or
/// "-" when none of its cases ran), then the totals.
pub fn summary(reports: &[(String, Result<Report, String>)]) -> String {
    let width = reports
        .iter()
        .map(|(t, _)| crate::text::columns(t))
        .max()
        .unwrap_or(6)
        .max(6);
    let mut out = format!("\n{:<width$}", "target");
    for task in TASKS {
        let _ = write!(out, "  {:>7}", format!("task {task}"));
    }
    out.push_str("  result\n");
    let (mut clean, mut total_failed) = (0, 0);
    for (target, report) in reports {
        let pad = width.saturating_sub(crate::text::columns(target));
        let _ = write!(out, "{target}{:pad$}", "");
        match report {
            Err(why) => {
                total_failed += 1;
                for _ in TASKS {
                    let _ = write!(out, "  {:>7}", "-");
                }
                let _ = writeln!(out, "  did not start: {why}");
            }
            Ok(report) => {
                for task in TASKS {
                    let ran: Vec<_> = report
                        .results
                        .iter()
                        .filter(|(c, o)| c.task == task && o.verdict != Verdict::Skipped)
                        .collect();
                    let cell = if ran.is_empty() {
                        "-".to_owned()
                    } else {
                        let passed = ran.iter().filter(|(_, o)| !report.fails(o.verdict));
                        format!("{}/{}", passed.count(), ran.len())
                    };
                    let _ = write!(out, "  {cell:>7}");
                }
                let failed = report.failed_ids();
                if failed.is_empty() {
                    clean += 1;
                    out.push_str("  passed\n");
                } else {
                    total_failed += 1;
                    let _ = writeln!(out, "  failed {}", failed.join(" "));
                }
            }
        }
    }
    let _ = writeln!(
        out,
        "{} targets, {clean} passed every case, {total_failed} did not",
        reports.len()
    );
    out
}

/// JUnit XML: a test suite per server, a test case per case.
pub fn junit(reports: &[(String, Result<Report, String>)]) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n");
    for (target, report) in reports {
        match report {
            Err(why) => {
                let _ = writeln!(
                    out,
                    "  <testsuite name=\"{}\" tests=\"1\" failures=\"0\" errors=\"1\" skipped=\"0\">\n    \
                     <testcase classname=\"start\" name=\"start\"><error message=\"{}\"/></testcase>\n  </testsuite>",
                    xml(target),
                    xml(why)
                );
            }
            Ok(report) => {
                let c = report.counts();
                let _ = writeln!(
                    out,
                    "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\">",
                    xml(target),
                    report.results.len(),
                    c.failed,
                    c.skipped
                );
                for (case, o) in &report.results {
                    let _ = write!(
                        out,
                        "    <testcase classname=\"task{}\" name=\"{} {}\">",
                        case.task,
                        case.id,
                        xml(case.title)
                    );
                    if report.fails(o.verdict) {
                        let _ = write!(
                            out,
                            "<failure message=\"{}\">expected: {}\nactual: {}</failure>",
                            xml(&o.actual),
                            xml(&o.expected),
                            xml(&o.actual)
                        );
                    } else if o.verdict == Verdict::Skipped {
                        let _ = write!(out, "<skipped message=\"{}\"/>", xml(&o.actual));
                    } else if o.verdict != Verdict::Ok {
                        let _ = write!(
                            out,
                            "<system-out>{}: {}</system-out>",
                            o.verdict.label(),
                            xml(&o.actual)
                        );
                    }
                    out.push_str("</testcase>\n");
                }
                out.push_str("  </testsuite>\n");
            }
        }
    }
    out.push_str("</testsuites>\n");
    out
}

/// Text made safe for XML attributes and content. Characters XML 1.0 cannot hold at all
/// (most control characters) become U+FFFD: a server's bytes end up here.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\n' => out.push_str("&#10;"),
            '\t' | '\r' => out.push(' '),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(verdicts: &[(&'static str, Verdict)], strict: bool) -> Report {
        Report {
            server: "127.0.0.1:9".into(),
            codec: "raw",
            mode: "echo",
            results: verdicts
                .iter()
                .map(|&(id, v)| {
                    let task = id.split('.').next().unwrap().parse().unwrap();
                    (
                        Named {
                            id,
                            task,
                            title: "t",
                        },
                        Outcome::new(v, "e", "a"),
                    )
                })
                .collect(),
            died_at: None,
            lost: "died",
            strict,
        }
    }

    #[test]
    fn non_strict_fails_only_under_strict() {
        let cases = [
            ("3.1", Verdict::Ok),
            ("3.2", Verdict::NonStrict),
            ("8.1", Verdict::Informational),
            ("9.7", Verdict::Skipped),
        ];
        let lenient = report(&cases, false);
        assert_eq!(
            lenient.counts(),
            Counts {
                passed: 3,
                failed: 0,
                skipped: 1
            }
        );
        let strict = report(&cases, true);
        assert_eq!(strict.failed_ids(), ["3.2"]);
        assert_eq!(strict.tally(), "4 tests, 2 passed, 1 skipped, 1 failed");
    }

    #[test]
    fn json_line_has_the_documented_fields() {
        let mut r = report(&[("3.1", Verdict::Failed)], false);
        r.died_at = Some("3.1");
        let text = r.json(None);
        assert!(
            text.starts_with(r#"{"server":"127.0.0.1:9","codec":"raw","mode":"echo","passed""#),
            "{text}"
        );
        let line: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(line["failed"], 1);
        assert_eq!(line["died_at"], "3.1");
        assert_eq!(line["results"]["3.1"]["verdict"], "FAILED");
        assert_eq!(line["results"]["3.1"]["expected"], "e");
        let ok: serde_json::Value =
            serde_json::from_str(&report(&[("3.2", Verdict::NonStrict)], false).json(None))
                .unwrap();
        assert_eq!(ok["results"]["3.2"]["verdict"], "NON-STRICT");
        assert!(ok["died_at"].is_null());
    }

    #[test]
    fn junit_escapes_what_a_server_sent() {
        let mut r = report(&[("9.8", Verdict::Failed)], false);
        r.results[0].1.actual = "<b>&\"\u{1}".into();
        let xml = junit(&[("a&b".into(), Ok(r))]);
        assert!(xml.contains("name=\"a&amp;b\""), "{xml}");
        assert!(xml.contains("&lt;b&gt;&amp;&quot;\u{FFFD}"), "{xml}");
        assert!(xml.contains("failures=\"1\""), "{xml}");
    }

    #[test]
    fn summary_counts_each_task_and_names_the_failures() {
        let r = report(
            &[
                ("3.1", Verdict::Ok),
                ("3.5", Verdict::Failed),
                ("9.1", Verdict::Skipped),
            ],
            false,
        );
        let text = summary(&[
            ("good.py".into(), Ok(r)),
            ("bad.py".into(), Err("exit status 1".into())),
        ]);
        let good = text.lines().find(|l| l.starts_with("good.py")).unwrap();
        assert!(
            good.contains("    1/2") && good.ends_with("failed 3.5"),
            "{good}"
        );
        assert!(text.contains("did not start: exit status 1"), "{text}");
        assert!(
            text.contains("2 targets, 0 passed every case, 2 did not"),
            "{text}"
        );
    }
}
