//! The state machine that turns classified lines into suites and cases: one frame per open
//! document or subtest, closed by its result line, a new document or the end of the log.

use super::lines::{classify, is_noise, names_test, strip_console_prefix, Kind, ResultLine};
use super::{Case, Outcome, Parsed, Suite};

/// Numbers for the tests a plan of `plan` still owes after `results` results, the last numbered
/// `last_num`.
fn missing(last_num: usize, results: usize, plan: usize) -> impl Iterator<Item = usize> {
    (1..=plan.saturating_sub(results)).map(move |k| last_num + k)
}

/// One open level: the document (index 0 of the stack) or a subtest.
#[derive(Debug, Default)]
struct Frame {
    indent: usize,
    name: Option<String>,
    plan: Option<usize>,
    /// Result lines seen at this level.
    results: usize,
    last_num: usize,
    cases: Vec<Case>,
    /// Lines since the last result, candidates for the next failure's detail.
    pending: Vec<String>,
    /// After a `not ok`: (case index, whether a line naming it was already attached).
    after: Option<(usize, bool)>,
    /// Index in `Parsed::suites` reserved for this frame.
    slot: Option<usize>,
    start_line: usize,
}

impl Frame {
    /// Checks the results of subtest `full` (a suite when `suite`) against its plan; every test
    /// the plan promised that never reported is added as a failed case `#N (no result)`, the
    /// lines pending since the last result in the first one's detail. `ended`: whether a result
    /// line closed the subtest (else `reason` says what did). Returns whether the plan held.
    fn check_plan(
        &mut self,
        full: &str,
        suite: bool,
        ended: bool,
        reason: &str,
        errors: &mut Vec<String>,
    ) -> bool {
        match self.plan {
            None if suite => {
                errors.push(format!(
                    "suite {full} (line {}) has no plan",
                    self.start_line
                ));
                false
            }
            Some(p) if self.results != p => {
                if ended {
                    errors.push(format!(
                        "subtest {full}: plan 1..{p} but {} results",
                        self.results
                    ));
                }
                let cause = if ended {
                    "no result line, though the plan promised one".to_string()
                } else {
                    format!("no result: {reason}")
                };
                let mut first = true;
                for n in missing(self.last_num, self.results, p) {
                    let mut detail = vec![cause.clone()];
                    if first {
                        detail.append(&mut self.pending);
                        first = false;
                    }
                    self.cases.push(Case {
                        name: format!("#{n} (no result)"),
                        outcome: Outcome::Fail,
                        detail,
                    });
                }
                false
            }
            _ => true,
        }
    }
}

#[derive(Default)]
pub(super) struct Parser {
    out: Parsed,
    stack: Vec<Frame>,
    docs: usize,
    line_no: usize,
    /// Spaces before the open document's header line, removed from each of its lines.
    doc_prefix: usize,
    /// `out.suites.len()` when the open document started.
    doc_first_suite: usize,
}

impl Parser {
    /// Parses a whole console log: see [`super::parse`].
    pub(super) fn run(log: &str) -> Parsed {
        let mut p = Parser::default();
        for (i, raw) in log.lines().enumerate() {
            p.line_no = i + 1;
            p.line(strip_console_prefix(raw));
        }
        p.line_no += 1;
        p.close_all("the console log ended");
        if p.docs == 0 {
            p.out
                .errors
                .push("no KTAP document found in the console log".to_string());
        }
        p.out
    }

    fn error(&mut self, msg: String) {
        self.out
            .errors
            .push(format!("line {}: {msg}", self.line_no));
    }

    fn line(&mut self, raw: &str) {
        let raw_indent = raw.bytes().take_while(|&b| b == b' ').count();
        // A document whose header came with a prefix of spaces (output captured with a leading
        // space, as kunit.py's `pound_no_prefix` data has it) has it removed from every line.
        let text = match self.doc_prefix {
            0 => raw,
            n => raw
                .get(n..)
                .filter(|_| raw[..n].bytes().all(|b| b == b' '))
                .unwrap_or(raw),
        };
        // Older KUnit (and kunit.py's test data) indents with tabs: one tab is one level.
        let expanded;
        let text = if text.starts_with('\t') {
            let lead = text.len() - text.trim_start_matches(['\t', ' ']).len();
            expanded = text[..lead].replace('\t', "    ") + &text[lead..];
            expanded.as_str()
        } else {
            text
        };
        let indent = text.bytes().take_while(|&b| b == b' ').count();
        let body = &text[indent..];
        let kind = classify(body);
        let outside = self.stack.is_empty();
        if matches!(kind, Kind::Version) && (indent == 0 || outside) {
            self.close_all("a new KTAP document started");
            self.docs += 1;
            // The whole indentation of the raw line (what the old prefix stripped, or all of it
            // outside a document) is the new document's prefix.
            self.doc_prefix = raw_indent;
            self.doc_first_suite = self.out.suites.len();
            self.stack.push(Frame {
                start_line: self.line_no,
                ..Frame::default()
            });
            return;
        }
        if self.stack.is_empty() {
            return;
        }
        if body.contains("Kernel panic - not syncing") {
            self.close_all(&format!("kernel panic: {}", body.trim()));
            return;
        }
        match kind {
            Kind::Version => self.open(indent, None, text),
            Kind::Subtest(name) => self.open(indent, Some(name), text),
            Kind::Plan(n) => self.plan(indent, n, text),
            Kind::Result(r) => self.result(indent, r, text),
            Kind::Diag => self.text(indent, text, true),
            Kind::Other => self.text(indent, text, false),
        }
    }

    /// A `KTAP version` (name `None`) or `# Subtest:` line at `indent`.
    fn open(&mut self, indent: usize, name: Option<&str>, text: &str) {
        let nested = self.stack.len() > 1;
        let top = self.stack.last_mut().expect("document open");
        if let Some(name) = name {
            if nested && top.indent == indent && top.name.is_none() && top.results == 0 {
                top.name = Some(name.to_string());
                return;
            }
        }
        if indent <= top.indent {
            match self.stack.iter().skip(1).position(|f| f.indent == indent) {
                Some(k) => {
                    while self.stack.len() > k + 1 {
                        self.close_subtest(None, "the next subtest started first");
                    }
                }
                None => return self.text(indent, text, name.is_some()),
            }
        }
        let slot = self.out.suites.len();
        self.out.suites.push(Suite {
            name: String::new(),
            status: Outcome::Fail,
            tests: Vec::new(),
            plan: None,
        });
        self.stack.push(Frame {
            indent,
            name: name.map(str::to_string),
            slot: Some(slot),
            start_line: self.line_no,
            ..Frame::default()
        });
    }

    fn plan(&mut self, indent: usize, n: usize, text: &str) {
        let depth = self.stack.len() - 1;
        let top = self.stack.last_mut().expect("document open");
        if top.indent != indent {
            return self.text(indent, text, false);
        }
        if let Some(old) = top.plan {
            return self.error(format!("second plan 1..{n} after 1..{old} ignored"));
        }
        top.plan = Some(n);
        if depth == 0 && top.results >= n {
            self.close_doc(None);
        }
    }

    fn result(&mut self, indent: usize, r: ResultLine<'_>, text: &str) {
        let Some(j) = self.stack.iter().rposition(|f| f.indent == indent) else {
            return self.text(indent, text, false);
        };
        while self.stack.len() > j + 2 {
            self.close_subtest(None, "its parent reported first");
        }
        let closed_child = self.stack.len() == j + 2;
        if closed_child {
            self.close_subtest(Some(&r), "");
        }
        let frame = &mut self.stack[j];
        let expected = frame.last_num + 1;
        frame.last_num = r.num;
        frame.results += 1;
        let outcome = r.outcome();
        if j > 0 || !closed_child {
            let detail = match (outcome, r.skip) {
                (Outcome::Fail, _) => std::mem::take(&mut frame.pending),
                (Outcome::Skip, Some(reason)) if !reason.is_empty() => vec![reason.to_string()],
                _ => Vec::new(),
            };
            frame.cases.push(Case {
                name: r.name.to_string(),
                outcome,
                detail,
            });
            frame.after = (outcome == Outcome::Fail).then_some((frame.cases.len() - 1, false));
        } else {
            frame.after = None;
        }
        frame.pending.clear();
        let done = j == 0 && frame.plan.is_some_and(|p| frame.results >= p);
        if r.num != expected {
            self.error(format!(
                "result {} out of order, expected {expected}",
                r.num
            ));
        }
        if done {
            self.close_doc(None);
        }
    }

    /// A diagnostic or unstructured line: failure detail, or an unrelated kernel message.
    fn text(&mut self, indent: usize, text: &str, diag: bool) {
        let base = self.stack.get(1).map_or(0, |f| f.indent);
        let top = self.stack.last_mut().expect("document open");
        if indent < base || (base == 0 && !diag) {
            return;
        }
        let content = &text[base..];
        if diag && is_noise(content.trim_start()) {
            return;
        }
        if let Some((idx, named)) = top.after {
            if (diag && names_test(content.trim_start(), &top.cases[idx].name)) || (!diag && named)
            {
                top.cases[idx].detail.push(content.to_string());
                top.after = Some((idx, true));
                return;
            }
            top.after = None;
        }
        top.pending.push(content.to_string());
    }

    /// Closes the top frame (a subtest). `r` is its result line from the parent; `None` means it
    /// never got one, for `reason`.
    fn close_subtest(&mut self, r: Option<&ResultLine<'_>>, reason: &str) {
        let names: Vec<&str> = self.stack[1..]
            .iter()
            .map(|f| f.name.as_deref().unwrap_or("?"))
            .collect();
        let mut full = names.join(".");
        let depth = self.stack.len() - 1;
        let mut f = self.stack.pop().expect("subtest open");
        if f.name.is_none() {
            if let Some(r) = r {
                full = format!("{}{}", full.strip_suffix('?').unwrap_or(&full), r.name);
            }
        }
        let mut errors = Vec::new();
        if let (Some(r), Some(name)) = (r, &f.name) {
            if r.name != name {
                errors.push(format!(
                    "subtest {full} ended by the result of '{}'",
                    r.name
                ));
            }
        }
        let mut status = r.map_or(Outcome::Fail, ResultLine::outcome);
        if r.is_none() {
            errors.push(format!(
                "subtest {full} (line {}) has no result line: {reason}; {} of {} tests reported",
                f.start_line,
                f.results,
                f.plan.map_or("?".to_string(), |p| p.to_string()),
            ));
        }
        if f.results == 0 && f.plan.unwrap_or(0) == 0 {
            // kunit.py: NO_TESTS, an error.
            errors.push(format!(
                "subtest {full} (line {}) ran no tests",
                f.start_line
            ));
            status = Outcome::Fail;
        }
        if !f.check_plan(&full, depth == 1, r.is_some(), reason, &mut errors) {
            status = Outcome::Fail;
        }
        if let (Some(idx), false) = (f.after.map(|a| a.0), f.pending.is_empty()) {
            if idx + 1 == f.cases.len() {
                f.cases[idx].detail.append(&mut f.pending);
            }
        }
        if f.cases.iter().any(|c| c.outcome == Outcome::Fail) {
            status = Outcome::Fail;
        }
        for e in errors {
            self.error(e);
        }
        let slot = f.slot.expect("subtests reserve a slot");
        self.out.suites[slot] = Suite {
            name: full,
            status,
            tests: f.cases,
            plan: f.plan,
        };
    }

    /// Closes the document (the only frame left). `reason` is set when it was cut short.
    fn close_doc(&mut self, reason: Option<&str>) {
        let f = self.stack.pop().expect("document open");
        self.doc_prefix = 0;
        let doc = format!("KTAP document {} (line {})", self.docs, f.start_line);
        if f.results == 0 && f.cases.is_empty() && self.out.suites.len() == self.doc_first_suite {
            // kunit.py: NO_TESTS, an error. Nothing that ran nothing is a pass.
            self.error(format!("{doc} ran no tests"));
        }
        match f.plan {
            None => self.error(format!("{doc} has no plan")),
            Some(p) if f.results != p => self.error(format!(
                "{doc}: plan 1..{p} but {} results{}",
                f.results,
                reason.map(|r| format!(" ({r})")).unwrap_or_default()
            )),
            _ => {}
        }
        if !f.cases.is_empty() {
            let mut tests = f.cases;
            if let Some(p) = f.plan {
                for n in missing(f.last_num, f.results, p) {
                    tests.push(Case {
                        name: format!("#{n} (no result)"),
                        outcome: Outcome::Fail,
                        detail: vec![format!("no result: {}", reason.unwrap_or("not reported"))],
                    });
                }
            }
            let status = if tests.iter().any(|c| c.outcome == Outcome::Fail) {
                Outcome::Fail
            } else {
                Outcome::Pass
            };
            self.out.suites.push(Suite {
                name: format!("document{}", self.docs),
                status,
                tests,
                plan: f.plan,
            });
        }
    }

    fn close_all(&mut self, reason: &str) {
        while self.stack.len() > 1 {
            self.close_subtest(None, reason);
        }
        if !self.stack.is_empty() {
            self.close_doc(Some(reason));
        }
    }
}
