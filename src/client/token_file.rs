//! The client's session tokens: one per server, in a file only its owner can read.
//!
//! Invariant: the file is created 0600 in a 0700 directory and replaced atomically (a
//! temporary file, synced, then renamed), so a crash never leaves half a file; and a
//! file that other users can read is refused, as ssh refuses such a private key.
//!
//! Format: one line per server, `ADDRESS TOKEN`, the address as `127.0.0.1:9090`.

use std::collections::BTreeMap;
use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use zeroize::Zeroizing;

use crate::private_file;

pub struct TokenFile {
    path: PathBuf,
}

impl TokenFile {
    pub fn at(path: PathBuf) -> TokenFile {
        TokenFile { path }
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
        Ok(self.load()?.remove(server).map(Zeroizing::new))
    }

    pub fn set(&self, server: &str, token: &str) -> anyhow::Result<()> {
        let mut all = self.load()?;
        all.insert(server.to_owned(), token.to_owned());
        self.save(&all)
    }

    pub fn remove(&self, server: &str) -> anyhow::Result<()> {
        let mut all = self.load()?;
        if all.remove(server).is_some() {
            self.save(&all)?;
        }
        Ok(())
    }

    fn load(&self) -> anyhow::Result<BTreeMap<String, String>> {
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => Zeroizing::new(text),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(e) => {
                return Err(e).with_context(|| format!("could not read {}", self.path.display()));
            }
        };
        private_file::refuse_exposed("the token file", [self.path.as_path()])?;
        Ok(text
            .lines()
            .filter_map(|line| line.split_once(' '))
            .map(|(server, token)| (server.to_owned(), token.trim().to_owned()))
            .collect())
    }

    fn save(&self, all: &BTreeMap<String, String>) -> anyhow::Result<()> {
        let dir = self
            .path
            .parent()
            .context("the token file has no directory")?;
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("could not create {}", dir.display()))?;
        let mut text = Zeroizing::new(String::new());
        for (server, token) in all {
            text.push_str(server);
            text.push(' ');
            text.push_str(token);
            text.push('\n');
        }
        let temp = self
            .path
            .with_extension(format!("tmp{}", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&temp)?;
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
            fs::rename(&temp, &self.path)
        };
        write()
            .inspect_err(|_| {
                let _ = fs::remove_file(&temp);
            })
            .with_context(|| format!("could not write {}", self.path.display()))
    }
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
        file.set("127.0.0.1:9090", "aa").unwrap();
        file.set("[::1]:9090", "bb").unwrap();
        assert_eq!(
            file.get("127.0.0.1:9090")
                .unwrap()
                .as_deref()
                .map(String::as_str),
            Some("aa")
        );
        file.remove("127.0.0.1:9090").unwrap();
        assert_eq!(file.get("127.0.0.1:9090").unwrap(), None);
        assert_eq!(
            file.get("[::1]:9090")
                .unwrap()
                .as_deref()
                .map(String::as_str),
            Some("bb")
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
        fs::write(&path, "127.0.0.1:9090 aa\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let file = TokenFile::at(path);
        let err = file.get("127.0.0.1:9090").unwrap_err().to_string();
        assert!(
            err.contains("can be read or written by other users") && err.contains("chmod 600"),
            "{err}"
        );
        assert!(
            file.set("127.0.0.1:9090", "bb").is_err(),
            "and it is not written either"
        );
    }
}
