//! Asking for a host and a port that were not given (lab task 4).
//!
//! Invariant: netlab never waits for an answer that cannot come. A value given by flag or
//! environment is used as it is; a missing one is asked for only when both stdin and
//! stderr (where the question is drawn) are terminals; otherwise the default is taken
//! without a word, so scripts, make targets and CI never hang.
//!
//! A bad answer gets a one-line reason and the same question again; Ctrl-D ends the
//! program with a reason instead of an answer.

use std::io::IsTerminal;
use std::net::ToSocketAddrs;

use anyhow::{Context, bail};
use console::Term;
use dialoguer::theme::{SimpleTheme, Theme};

use crate::terminal;

/// Whether questions can be asked: someone at a terminal can see and answer them.
pub fn can_ask() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// The port, asked for if it was not given and a terminal is there to ask on.
pub fn port(given: bool, value: u16, allow_zero: bool) -> anyhow::Result<u16> {
    if given || !can_ask() {
        return Ok(value);
    }
    let question = if allow_zero {
        "Port (0: any free port)"
    } else {
        "Port"
    };
    ask(question, &value.to_string(), |s| parse_port(s, allow_zero))
        .context("could not read the port")
}

/// The host, asked for if it was not given and a terminal is there to ask on.
pub fn host(given: bool, value: String) -> anyhow::Result<String> {
    if given || !can_ask() {
        return Ok(value);
    }
    ask("Host", &value, |s| {
        check_host(s).map(|()| s.trim().to_owned())
    })
    .context("could not read the host")
}

/// Asks `question` until `parse` takes the answer (an empty one is `default`), in
/// dialoguer's look. The key loop is netlab's own (see `terminal`), for Ctrl-D.
fn ask<T>(
    question: &str,
    default: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> anyhow::Result<T> {
    let term = Term::stderr();
    let theme = SimpleTheme;
    loop {
        let mut prompt = String::new();
        theme.format_input_prompt(&mut prompt, question, Some(default))?;
        term.write_str(&prompt)?;
        term.flush()?;
        let Some(typed) = terminal::read_line(&term)? else {
            term.write_line("")?;
            bail!("no answer to {question:?}: input ended (Ctrl-D)");
        };
        let answer = if typed.trim().is_empty() {
            default
        } else {
            &typed
        };
        term.clear_line()?;
        match parse(answer) {
            Ok(value) => {
                let mut shown = String::new();
                theme.format_input_prompt_selection(&mut shown, question, answer.trim())?;
                term.write_line(&shown)?;
                return Ok(value);
            }
            Err(reason) => {
                let mut shown = String::new();
                theme.format_error(&mut shown, &reason)?;
                term.write_line(&shown)?;
            }
        }
    }
}

/// A port typed by a person: a whole number from 1 (or 0) to 65535.
pub fn parse_port(s: &str, allow_zero: bool) -> Result<u16, String> {
    let s = s.trim();
    let low = if allow_zero { 0 } else { 1 };
    let out_of_range = || format!("{s} is out of range: a port is {low} to 65535");
    match s.parse::<u64>() {
        Ok(n) if (low..=65535).contains(&n) => Ok(n as u16),
        Ok(_) => Err(out_of_range()),
        // Digits too many for any integer are a number still: just far out of range.
        Err(_) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => Err(out_of_range()),
        Err(_) => Err(format!(
            "{s:?} is not a port: type a whole number from {low} to 65535"
        )),
    }
}

/// A host typed by a person: well formed, and it resolves to at least one address.
pub fn check_host(s: &str) -> Result<(), String> {
    let host = crate::cli::parse_host(s)?;
    let resolves = (host.as_str(), 0)
        .to_socket_addrs()
        .is_ok_and(|mut addrs| addrs.next().is_some());
    if resolves {
        Ok(())
    } else {
        Err(format!("{host} does not resolve to an address"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_whole_numbers_in_range() {
        assert_eq!(parse_port("9090", false), Ok(9090));
        assert_eq!(parse_port(" 65535 ", false), Ok(65535));
        assert_eq!(parse_port("0", true), Ok(0));
        for bad in [
            "0",
            "70000",
            "abc",
            "",
            "-1",
            "80.5",
            "99999999999999999999",
        ] {
            assert!(parse_port(bad, false).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            parse_port("70000", false).unwrap_err(),
            "70000 is out of range: a port is 1 to 65535"
        );
        assert_eq!(
            parse_port("99999999999999999999", false).unwrap_err(),
            "99999999999999999999 is out of range: a port is 1 to 65535"
        );
        assert!(
            parse_port("9o9o", false)
                .unwrap_err()
                .contains("is not a port")
        );
    }

    #[test]
    fn hosts_must_resolve() {
        assert_eq!(check_host("127.0.0.1"), Ok(()));
        assert_eq!(check_host("localhost"), Ok(()));
        assert!(check_host("no such host!").is_err());
    }
}
