//! One console line at a time: the printk prefix removed, then what the line is (a version,
//! a plan, a result, a subtest header, a diagnostic).

use super::Outcome;

/// Removes line-end `\r`s, a leading `\r`, and a printk `[ seconds.micros]` timestamp (with an
/// optional `[ T123]` / `[ C1]` caller id) plus the one space after it. Indentation is kept.
pub(super) fn strip_console_prefix(raw: &str) -> &str {
    let line = raw.trim_end_matches(['\r', '\n']).trim_start_matches('\r');
    let Some(rest) = strip_bracket(line, |s| {
        let (secs, micros) = s.split_once('.').unwrap_or(("", ""));
        !secs.is_empty()
            && !micros.is_empty()
            && secs.bytes().all(|b| b.is_ascii_digit())
            && micros.bytes().all(|b| b.is_ascii_digit())
    }) else {
        return line;
    };
    let rest = strip_bracket(rest, |s| {
        s.len() > 1 && s.starts_with(['T', 'C']) && s[1..].bytes().all(|b| b.is_ascii_digit())
    })
    .unwrap_or(rest);
    rest.strip_prefix(' ').unwrap_or(rest)
}

/// Strips `[ ... ]` from the start of `s` when the trimmed inside satisfies `ok`.
fn strip_bracket(s: &str, ok: impl Fn(&str) -> bool) -> Option<&str> {
    let inner = s.strip_prefix('[')?;
    let end = inner.find(']')?;
    ok(inner[..end].trim()).then(|| &inner[end + 1..])
}

/// A result line: `ok 3 name`, `not ok 3 - name # SKIP reason`.
#[derive(Debug)]
pub(super) struct ResultLine<'a> {
    pub(super) ok: bool,
    pub(super) num: usize,
    pub(super) name: &'a str,
    pub(super) skip: Option<&'a str>,
}

impl ResultLine<'_> {
    pub(super) fn outcome(&self) -> Outcome {
        match (self.skip.is_some(), self.ok) {
            (true, _) => Outcome::Skip,
            (false, true) => Outcome::Pass,
            (false, false) => Outcome::Fail,
        }
    }
}

/// What a console line is, structurally.
#[derive(Debug)]
pub(super) enum Kind<'a> {
    Version,
    Plan(usize),
    Result(ResultLine<'a>),
    Subtest(&'a str),
    Diag,
    Other,
}

pub(super) fn classify(body: &str) -> Kind<'_> {
    if let Some(v) = body
        .strip_prefix("KTAP version ")
        .or(body.strip_prefix("TAP version "))
    {
        if !v.is_empty() && v.trim().bytes().all(|b| b.is_ascii_digit()) {
            return Kind::Version;
        }
    }
    if let Some(n) = body.strip_prefix("1..") {
        let digits = n.bytes().take_while(u8::is_ascii_digit).count();
        let tail = n[digits..].trim_start();
        if digits > 0 && (tail.is_empty() || tail.starts_with('#')) {
            if let Ok(n) = n[..digits].parse() {
                return Kind::Plan(n);
            }
        }
    }
    let (ok, rest) = if let Some(r) = body.strip_prefix("not ok ") {
        (false, Some(r))
    } else {
        (true, body.strip_prefix("ok "))
    };
    if let Some(rest) = rest {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let after = &rest[digits..];
        if digits > 0 && (after.is_empty() || after.starts_with(' ')) {
            if let Ok(num) = rest[..digits].parse() {
                let text = after.trim_start();
                let text = text.strip_prefix("- ").unwrap_or(text);
                let (name, skip) = split_skip(text);
                return Kind::Result(ResultLine {
                    ok,
                    num,
                    name,
                    skip,
                });
            }
        }
    }
    if let Some(d) = body.strip_prefix('#') {
        if let Some(name) = d.trim_start().strip_prefix("Subtest:") {
            return Kind::Subtest(name.trim());
        }
        return Kind::Diag;
    }
    Kind::Other
}

/// Splits `name # SKIP reason` at the last `#` that starts a SKIP directive (any case).
fn split_skip(text: &str) -> (&str, Option<&str>) {
    for (i, _) in text.rmatch_indices('#') {
        let d = text[i + 1..].trim_start();
        if d.len() >= 4 && d[..4].eq_ignore_ascii_case("skip") {
            let rest = &d[4..];
            if rest.is_empty() || rest.starts_with([' ', ':']) {
                return (
                    text[..i].trim_end(),
                    Some(rest.trim_start_matches(':').trim()),
                );
            }
        }
    }
    (text.trim_end(), None)
}

/// KUnit lines that carry no per-test information.
pub(super) fn is_noise(diag: &str) -> bool {
    let d = diag.trim_start_matches('#').trim_start();
    d.starts_with("Totals:")
        || d.starts_with("module:")
        || d.starts_with("speed:")
        || (d.contains(": pass:") && d.contains(" fail:") && d.contains(" total:"))
}

/// Whether diagnostic `line` (`# ...`) names test `name` first: `# name:`, `# name.` or `# name `.
pub(super) fn names_test(line: &str, name: &str) -> bool {
    let Some(rest) = line.strip_prefix('#') else {
        return false;
    };
    match rest.trim_start().strip_prefix(name) {
        Some(tail) => !name.is_empty() && (tail.is_empty() || tail.starts_with([':', '.', ' '])),
        None => false,
    }
}
