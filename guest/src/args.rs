//! The command lines of the guest programs: `--flag VALUE` pairs, in any order.
//!
//! Every flag takes a value; there are no positional arguments. A program reads the flags one
//! by one with [`Flags::next_flag`], takes each flag's value with [`Flags::value`] and answers
//! a flag it does not know with [`unknown`]; the messages are the same in every program:
//!
//! ```
//! let mut flags = guest::args::Flags::new(["--suite", "s"].map(String::from));
//! let mut suite = None;
//! while let Some(flag) = flags.next_flag() {
//!     match flag.as_str() {
//!         "--suite" => suite = Some(flags.value(&flag)?),
//!         other => return Err(guest::args::unknown(other)),
//!     }
//! }
//! assert_eq!(guest::args::required(suite, "--suite")?, "s");
//! # Ok::<(), String>(())
//! ```

/// The arguments of a program (without the program name), read flag by flag.
pub struct Flags<I> {
    argv: I,
}

impl<I: Iterator<Item = String>> Flags<I> {
    /// Reads the arguments `argv`, e.g. `std::env::args().skip(1)`.
    pub fn new(argv: impl IntoIterator<Item = String, IntoIter = I>) -> Self {
        Self {
            argv: argv.into_iter(),
        }
    }

    /// The next flag, `None` after the last one. It is not checked: an argument the program
    /// does not know goes to [`unknown`].
    pub fn next_flag(&mut self) -> Option<String> {
        self.argv.next()
    }

    /// The value of `flag`, the argument after it. `Err` (`FLAG needs a value`) when `flag` was
    /// the last argument.
    pub fn value(&mut self, flag: &str) -> Result<String, String> {
        self.argv
            .next()
            .ok_or_else(|| format!("{flag} needs a value"))
    }
}

/// The message for an argument the program does not know: `unknown argument 'ARG'`.
pub fn unknown(arg: &str) -> String {
    format!("unknown argument '{arg}'")
}

/// The value of a flag that must be given: `Err` (`FLAG is required`) when it was not.
pub fn required<T>(value: Option<T>, flag: &str) -> Result<T, String> {
    value.ok_or_else(|| format!("{flag} is required"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(v: &[&str]) -> Flags<std::vec::IntoIter<String>> {
        Flags::new(v.iter().map(ToString::to_string).collect::<Vec<_>>())
    }

    #[test]
    fn flags_and_values_alternate() {
        let mut f = flags(&["--a", "1", "--b", "two words"]);
        assert_eq!(f.next_flag().as_deref(), Some("--a"));
        assert_eq!(f.value("--a"), Ok("1".into()));
        assert_eq!(f.next_flag().as_deref(), Some("--b"));
        assert_eq!(f.value("--b"), Ok("two words".into()));
        assert_eq!(f.next_flag(), None);
        assert_eq!(flags(&[]).next_flag(), None);
    }

    #[test]
    fn a_missing_value_an_unknown_flag_and_a_missing_flag_are_named() {
        let mut f = flags(&["--a"]);
        let flag = f.next_flag().unwrap();
        assert_eq!(f.value(&flag), Err("--a needs a value".into()));
        // A value may look like a flag: it is the next argument, whatever it is.
        let mut f = flags(&["--a", "--b"]);
        let flag = f.next_flag().unwrap();
        assert_eq!(f.value(&flag), Ok("--b".into()));
        assert_eq!(unknown("--bogus"), "unknown argument '--bogus'");
        assert_eq!(required(Some(3), "--n"), Ok(3));
        assert_eq!(required::<u32>(None, "--n"), Err("--n is required".into()));
    }
}
