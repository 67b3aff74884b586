//! Files only their owner may open: the database (password and token hashes), the
//! service log, the client's session tokens.
//!
//! Invariant: netlab refuses to use such a file once group or others have any access
//! to it, as ssh refuses a private key and PostgreSQL a data directory, rather than
//! carry on with secrets exposed. Files it creates itself are private from the start
//! (see [`crate::process::restrict_new_files`]).

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, bail};

/// Fails, with the `chmod` that fixes it, if any of `paths` that exists is open to
/// users other than its owner. `what` names the files for the message ("the database").
pub fn refuse_exposed<'a>(
    what: &str,
    paths: impl IntoIterator<Item = &'a Path>,
) -> anyhow::Result<()> {
    let mut exposed = Vec::new();
    for path in paths {
        match fs::metadata(path) {
            Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
                exposed.push((path, meta.permissions().mode() & 0o777));
            }
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("could not check {}", path.display())),
        }
    }
    let Some((first, mode)) = exposed.first() else {
        return Ok(());
    };
    let all: Vec<String> = exposed
        .iter()
        .map(|(p, _)| p.display().to_string())
        .collect();
    bail!(
        "{what} {} can be read or written by other users (mode {mode:04o}), so netlab \
         will not use it (fix with: chmod 600 {})",
        first.display(),
        all.join(" ")
    )
}

/// Replaces `path` with `contents`, private (0600, in a 0700 directory made if missing)
/// and atomically: a temporary file, synced, then renamed, so that a crash leaves the old
/// file or the new one, never half of one.
pub fn replace(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().context("the file has no directory")?;
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("could not create {}", dir.display()))?;
    let temp = path.with_extension(format!("tmp{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&temp, path)
    };
    write()
        .inspect_err(|_| {
            let _ = fs::remove_file(&temp);
        })
        .with_context(|| format!("could not write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_missing_files_pass_and_exposed_ones_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let private = dir.path().join("private");
        let open = dir.path().join("open");
        let wal = dir.path().join("open-wal");
        for (path, mode) in [(&private, 0o600), (&open, 0o644), (&wal, 0o640)] {
            fs::write(path, "x").unwrap();
            fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
        }
        let missing = dir.path().join("missing");
        refuse_exposed("the file", [private.as_path(), missing.as_path()]).unwrap();
        let err = refuse_exposed(
            "the database",
            [private.as_path(), open.as_path(), wal.as_path()],
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            format!(
                "the database {} can be read or written by other users (mode 0644), so \
                 netlab will not use it (fix with: chmod 600 {} {})",
                open.display(),
                open.display(),
                wal.display()
            )
        );
    }
}
