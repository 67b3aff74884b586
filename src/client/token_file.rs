//! The client's session tokens: one per server, in a file only its owner can read.
//!
//! Invariant: the file is created 0600 in a 0700 directory and replaced atomically (a
//! temporary file, synced, then renamed), so a crash never leaves half a file; and a
//! file that other users can read is refused, as ssh refuses such a private key.
//!
//! Format: one line per server, `ADDRESS TOKEN`, the address as `127.0.0.1:9090` (or
//! `tls://127.0.0.1:9090` for a token won over TLS, never offered over plain TCP) and the
//! token as 64 hex digits. A line that is not one is reported, kept as it is, and never
//! used.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fs;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use zeroize::Zeroizing;

use crate::credentials::session_token::TOKEN_BYTES;
use crate::private_file;

pub struct TokenFile {
    path: PathBuf,
    /// Whether the lines that are not tokens have been reported: once per run is enough.
    warned: Cell<bool>,
}

/// What the file holds: the tokens, and the lines that are not one (with their numbers).
#[derive(Debug, Default, PartialEq)]
struct Contents {
    tokens: BTreeMap<String, String>,
    other: Vec<(usize, String)>,
}

impl TokenFile {
    pub fn at(path: PathBuf) -> TokenFile {
        TokenFile {
            path,
            warned: Cell::new(false),
        }
    }

    /// `<state dir>/netlab/tokens`, e.g. ~/.local/state/netlab/tokens on Linux.
    pub fn default_path() -> anyhow::Result<PathBuf> {
        let Some(dir) = dirs::state_dir().or_else(dirs::config_dir) else {
            bail!("no state directory for this user (is HOME set?)");
        };
        Ok(dir.join("netlab").join("tokens"))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn get(&self, server: &str) -> anyhow::Result<Option<Zeroizing<String>>> {
        Ok(self.load()?.tokens.remove(server).map(Zeroizing::new))
    }

    /// Keeps `token` for `server`. A token that is not 64 hex digits (a foreign server's
    /// idea of one) is refused: written as it came, it could forge lines of the file.
    pub fn set(&self, server: &str, token: &str) -> anyhow::Result<()> {
        if !is_token(token) {
            bail!("the server's session token is not 64 hex digits; it was not kept");
        }
        let mut contents = self.load()?;
        contents.tokens.insert(server.to_owned(), token.to_owned());
        self.save(&contents)
    }

    pub fn remove(&self, server: &str) -> anyhow::Result<()> {
        let mut contents = self.load()?;
        if contents.tokens.remove(server).is_some() {
            self.save(&contents)?;
        }
        Ok(())
    }

    fn load(&self) -> anyhow::Result<Contents> {
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => Zeroizing::new(text),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Contents::default()),
            Err(e) => {
                return Err(e).with_context(|| format!("could not read {}", self.path.display()));
            }
        };
        private_file::refuse_exposed("the token file", [self.path.as_path()])?;
        let contents = parse(&text);
        if !contents.other.is_empty() && !self.warned.replace(true) {
            let numbers: Vec<String> = contents.other.iter().map(|(n, _)| n.to_string()).collect();
            let (lines, are) = match numbers.len() {
                1 => ("line", "is"),
                _ => ("lines", "are"),
            };
            eprintln!(
                "netlab: warning: {}: {lines} {} {are} not `ADDRESS TOKEN` (an address such \
                 as 127.0.0.1:9090 and 64 hex digits); kept as they are, but not used",
                self.path.display(),
                numbers.join(", "),
            );
        }
        Ok(contents)
    }

    fn save(&self, contents: &Contents) -> anyhow::Result<()> {
        let mut text = Zeroizing::new(String::new());
        for (server, token) in &contents.tokens {
            text.push_str(server);
            text.push(' ');
            text.push_str(token);
            text.push('\n');
        }
        // Someone's lines, or a later version's: not netlab's to throw away.
        for (_, line) in &contents.other {
            text.push_str(line);
            text.push('\n');
        }
        private_file::replace(&self.path, text.as_bytes())
    }
}

/// The file's lines, sorted into tokens and everything else. Blank lines are neither.
fn parse(text: &str) -> Contents {
    let mut contents = Contents::default();
    for (i, line) in text.lines().enumerate() {
        match line.trim().split_once(' ') {
            Some((server, token)) if is_server(server) && is_token(token.trim()) => {
                contents
                    .tokens
                    .insert(server.to_owned(), token.trim().to_owned());
            }
            _ if line.trim().is_empty() => {}
            _ => contents.other.push((i + 1, line.to_owned())),
        }
    }
    contents
}

/// `127.0.0.1:9090`, or `tls://127.0.0.1:9090` for a token won over TLS.
fn is_server(s: &str) -> bool {
    s.strip_prefix("tls://")
        .unwrap_or(s)
        .parse::<SocketAddr>()
        .is_ok()
}

fn is_token(s: &str) -> bool {
    s.len() == 2 * TOKEN_BYTES && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn tokens_are_kept_per_server_in_a_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = TokenFile::at(dir.path().join("netlab").join("tokens"));
        assert_eq!(file.get("127.0.0.1:9090").unwrap(), None);
        let (aa, bb) = ("aa".repeat(TOKEN_BYTES), "bb".repeat(TOKEN_BYTES));
        file.set("127.0.0.1:9090", &aa).unwrap();
        file.set("[::1]:9090", &bb).unwrap();
        assert_eq!(
            file.get("127.0.0.1:9090")
                .unwrap()
                .as_deref()
                .map(String::as_str),
            Some(aa.as_str())
        );
        file.remove("127.0.0.1:9090").unwrap();
        assert_eq!(file.get("127.0.0.1:9090").unwrap(), None);
        assert_eq!(
            file.get("[::1]:9090")
                .unwrap()
                .as_deref()
                .map(String::as_str),
            Some(bb.as_str())
        );

        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(file.path()), 0o600);
        assert_eq!(mode(file.path().parent().unwrap()), 0o700);
        let leftovers = fs::read_dir(file.path().parent().unwrap()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file is left behind");
    }

    #[test]
    fn a_file_others_can_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        fs::write(
            &path,
            format!("127.0.0.1:9090 {}\n", "aa".repeat(TOKEN_BYTES)),
        )
        .unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let file = TokenFile::at(path);
        let err = file.get("127.0.0.1:9090").unwrap_err().to_string();
        assert!(
            err.contains("can be read or written by other users") && err.contains("chmod 600"),
            "{err}"
        );
        assert!(
            file.set("127.0.0.1:9090", &"bb".repeat(TOKEN_BYTES))
                .is_err(),
            "and it is not written either"
        );
    }

    #[test]
    fn lines_that_are_not_tokens_are_set_apart() {
        let token = "0f".repeat(TOKEN_BYTES);
        let text = format!(
            "127.0.0.1:9090 {token}\n\ngarbage\n127.0.0.1:9091 short\nlocalhost:9090 {token}\n  [::1]:9092 {token}  \n"
        );
        let contents = parse(&text);
        assert_eq!(
            contents.tokens.keys().collect::<Vec<_>>(),
            ["127.0.0.1:9090", "[::1]:9092"]
        );
        assert_eq!(contents.tokens["[::1]:9092"], token);
        assert_eq!(
            contents.other,
            [
                (3, "garbage".to_owned()),
                (4, "127.0.0.1:9091 short".to_owned()),
                (5, format!("localhost:9090 {token}")),
            ]
        );
    }

    #[test]
    fn other_lines_survive_a_save_and_malformed_tokens_are_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        fs::write(&path, "# my notes\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let file = TokenFile::at(path.clone());
        let token = "0f".repeat(TOKEN_BYTES);
        file.set("127.0.0.1:9090", &token).unwrap();
        let forged = format!("{token}\n10.0.0.1:22 {token}");
        assert!(file.set("127.0.0.1:9091", &forged).is_err());
        assert!(file.set("127.0.0.1:9091", "xyz").is_err());
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            format!("127.0.0.1:9090 {token}\n# my notes\n")
        );
    }
}
