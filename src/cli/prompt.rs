//! Asking for a host and a port that were not given (lab task 4).
//!
//! Invariant: netlab never waits for an answer that cannot come. A value given by flag or
//! environment is used as it is; a missing one is asked for only when both stdin and
//! stderr (where the question is drawn) are terminals; otherwise the default is taken
//! without a word, so scripts, make targets and CI never hang.
//!
//! A bad answer gets a one-line reason and the same question again.

use std::io::IsTerminal;
use std::net::ToSocketAddrs;

use anyhow::Context;
use dialoguer::Input;

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
    let answer: String = Input::new()
        .with_prompt(question)
        .default(value.to_string())
        .validate_with(|s: &String| parse_port(s, allow_zero).map(drop))
        .interact_text()
        .context("could not read the port")?;
    parse_port(&answer, allow_zero).map_err(anyhow::Error::msg)
}

/// The host, asked for if it was not given and a terminal is there to ask on.
pub fn host(given: bool, value: String) -> anyhow::Result<String> {
    if given || !can_ask() {
        return Ok(value);
    }
    let answer: String = Input::new()
        .with_prompt("Host")
        .default(value)
        .validate_with(|s: &String| check_host(s))
        .interact_text()
        .context("could not read the host")?;
    Ok(answer.trim().to_owned())
}

/// A port typed by a person: a whole number from 1 (or 0) to 65535.
pub fn parse_port(s: &str, allow_zero: bool) -> Result<u16, String> {
    let s = s.trim();
    let low = if allow_zero { 0 } else { 1 };
    match s.parse::<u64>() {
        Ok(n) if (low..=65535).contains(&n) => Ok(n as u16),
        Ok(_) => Err(format!("{s} is out of range: a port is {low} to 65535")),
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
    }

    #[test]
    fn hosts_must_resolve() {
        assert_eq!(check_host("127.0.0.1"), Ok(()));
        assert_eq!(check_host("localhost"), Ok(()));
        assert!(check_host("no such host!").is_err());
    }
}
