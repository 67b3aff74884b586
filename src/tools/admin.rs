//! Admin commands: look at and change what the servers remember, from the shell.
//!
//! They open the database directly, while a server may be running: SQLite's locking
//! and the store's immediate transactions keep both consistent.

use std::io::{self, BufRead, IsTerminal, Write};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

use zeroize::Zeroizing;

use crate::credentials::password;
use crate::handler::auth::check_username;
use crate::store::{self, Created, Registrar, Store};
use crate::{terminal, text};

#[derive(Debug, Args)]
pub struct DbArgs {
    /// SQLite database shared by the server modes; created on first use. Default: the
    /// user's data directory (~/.local/share/netlab/netlab.db on Linux).
    #[arg(long, env = "NETLAB_DB", value_name = "PATH")]
    pub db: Option<PathBuf>,
}

impl DbArgs {
    pub fn path(&self) -> anyhow::Result<PathBuf> {
        match &self.db {
            Some(path) => Ok(path.clone()),
            None => store::default_path(),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum UsersAction {
    /// List the users, with their open sessions and failed logins.
    List {
        /// One JSON array, for scripts.
        #[arg(long, env = "NETLAB_JSON")]
        json: bool,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Create a user, as `--registration closed` requires. The password is read without
    /// echo on a terminal, twice; otherwise as one line from standard input.
    Add {
        name: String,
        #[command(flatten)]
        db: DbArgs,
        /// scrypt cost of the hash: N = 2^this, as for `serve auth`.
        #[arg(long, env = "NETLAB_SCRYPT_LOG_N", default_value_t = 17,
              value_parser = clap::value_parser!(u8).range(1..=21))]
        scrypt_log_n: u8,
    },
    /// Delete a user and end all of its sessions.
    Delete {
        name: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Lift the wait that failed sign-ins put on an account (the guessing sources keep
    /// theirs).
    Unlock {
        name: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum SessionsAction {
    /// List the open sessions (never their tokens).
    List {
        /// One JSON array, for scripts.
        #[arg(long, env = "NETLAB_JSON")]
        json: bool,
        #[command(flatten)]
        db: DbArgs,
    },
    /// End every session of a user: its tokens stop working at once.
    Revoke {
        user: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClientsAction {
    /// List the known clients, most recently seen first.
    List {
        /// One JSON array, for scripts.
        #[arg(long, env = "NETLAB_JSON")]
        json: bool,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Forget the client at an IP address: it will be asked its name again.
    Forget {
        ip: IpAddr,
        #[command(flatten)]
        db: DbArgs,
    },
}

/// `netlab clients ...`
pub fn clients(action: ClientsAction, out: &mut impl Write) -> anyhow::Result<()> {
    match action {
        ClientsAction::List { json, db } => {
            list_clients(&Store::open_existing(&db.path()?)?, json, out)
        }
        ClientsAction::Forget { ip, db } => {
            forget_client(&mut Store::open_existing(&db.path()?)?, ip, out)
        }
    }
}

/// `netlab users ...`
pub fn users(
    action: UsersAction,
    input: &mut impl BufRead,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match action {
        UsersAction::List { json, db } => {
            list_users(&Store::open_existing(&db.path()?)?, json, out)
        }
        UsersAction::Add {
            name,
            db,
            scrypt_log_n,
        } => {
            let name = check_username(&name)
                .map_err(anyhow::Error::msg)?
                .to_owned();
            let password = read_new_password(&name, input)?;
            // A new database is fine here: an admin may create users before the first
            // start of a server with closed registration.
            add_user(
                &mut Store::open(&db.path()?)?,
                &name,
                &password,
                scrypt_log_n,
                out,
            )
        }
        UsersAction::Delete { name, db } => {
            delete_user(&mut Store::open_existing(&db.path()?)?, &name, out)
        }
        UsersAction::Unlock { name, db } => {
            if !Store::open_existing(&db.path()?)?.unlock_user(&name)? {
                bail!("no user is called {name:?}");
            }
            writeln!(out, "unlocked {name}: failed sign-ins no longer delay it")?;
            Ok(())
        }
    }
}

/// `netlab users add`: hashes `password` and creates the user.
pub fn add_user(
    store: &mut Store,
    name: &str,
    password: &str,
    scrypt_log_n: u8,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    password::check_new(password).map_err(anyhow::Error::msg)?;
    let hash = password::hash_once(scrypt_log_n, password)?;
    match store.create_user(name, &hash, store::now(), Registrar::Admin)? {
        Created::User(user) => writeln!(out, "added {}", user.name)?,
        Created::Taken | Created::OverLimit => bail!("a user called {name:?} exists already"),
    }
    Ok(())
}

/// A new password: typed twice without echo on a terminal, else one line of `input`.
fn read_new_password(name: &str, input: &mut impl BufRead) -> anyhow::Result<Zeroizing<String>> {
    if io::stdin().is_terminal() && io::stderr().is_terminal() {
        let ask = |question: &str| -> anyhow::Result<Zeroizing<String>> {
            eprint!("{question}");
            terminal::read_hidden()?.context("no password given (input ended); nothing was changed")
        };
        let first = ask(&format!("Password for {name}: "))?;
        let again = ask("Repeat it: ")?;
        if *first != *again {
            bail!("the passwords do not match; nothing was changed");
        }
        return Ok(first);
    }
    let mut line = Zeroizing::new(String::new());
    if input.read_line(&mut line)? == 0 {
        bail!("no password on standard input (one line is expected)");
    }
    let len = line.trim_end_matches(['\n', '\r']).len();
    line.truncate(len);
    Ok(line)
}

/// `netlab sessions ...`
pub fn sessions(action: SessionsAction, out: &mut impl Write) -> anyhow::Result<()> {
    match action {
        SessionsAction::List { json, db } => {
            list_sessions(&Store::open_existing(&db.path()?)?, json, out)
        }
        SessionsAction::Revoke { user, db } => {
            revoke_sessions(&mut Store::open_existing(&db.path()?)?, &user, out)
        }
    }
}

/// `netlab clients list`: a table, or JSON for scripts.
pub fn list_clients(store: &Store, json: bool, out: &mut impl Write) -> anyhow::Result<()> {
    let clients = store.list_clients()?;
    let rows = clients.iter().map(|c| {
        vec![
            c.ip.to_string(),
            c.name.clone(),
            timestamp(c.first_seen),
            timestamp(c.last_seen),
            c.visits.to_string(),
        ]
    });
    let header = ["IP", "NAME", "FIRST SEEN", "LAST SEEN", "VISITS"];
    print_list(&clients, json, "no clients yet", &header, rows, out)
}

/// `netlab users list`.
pub fn list_users(store: &Store, json: bool, out: &mut impl Write) -> anyhow::Result<()> {
    let now = store::now();
    let users = store.list_users(now)?;
    let rows = users.iter().map(|u| {
        let locked = if u.locked_until > now {
            format!("until {}", timestamp(u.locked_until))
        } else {
            "no".to_owned()
        };
        vec![
            u.name.clone(),
            timestamp(u.created_at),
            u.sessions.to_string(),
            u.failures.to_string(),
            locked,
        ]
    });
    let header = ["USER", "CREATED", "SESSIONS", "FAILED LOGINS", "LOCKED"];
    print_list(&users, json, "no users yet", &header, rows, out)
}

/// `netlab sessions list`: who, since when, until when; never a token.
pub fn list_sessions(store: &Store, json: bool, out: &mut impl Write) -> anyhow::Result<()> {
    let sessions = store.list_sessions(store::now())?;
    let rows = sessions.iter().map(|s| {
        vec![
            s.user.clone(),
            timestamp(s.created_at),
            timestamp(s.last_used),
            timestamp(s.ends_at),
        ]
    });
    let header = ["USER", "CREATED", "LAST USED", "ENDS (IF UNUSED)"];
    print_list(&sessions, json, "no open sessions", &header, rows, out)
}

/// `netlab users delete NAME`.
pub fn delete_user(store: &mut Store, name: &str, out: &mut impl Write) -> anyhow::Result<()> {
    if !store.delete_user(name)? {
        bail!("no user is called {name:?}");
    }
    writeln!(out, "deleted {name} and ended its sessions")?;
    Ok(())
}

/// `netlab sessions revoke USER`.
pub fn revoke_sessions(store: &mut Store, user: &str, out: &mut impl Write) -> anyhow::Result<()> {
    match store.revoke_sessions_of(user)? {
        None => bail!("no user is called {user:?}"),
        Some(n) => writeln!(out, "ended {n} session(s) of {user}")?,
    }
    Ok(())
}

/// A JSON array of `items`, or a table of `rows` under `header`, or `empty`.
fn print_list<T: serde::Serialize>(
    items: &[T],
    json: bool,
    empty: &str,
    header: &[&str],
    rows: impl Iterator<Item = Vec<String>>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    if json {
        serde_json::to_writer(&mut *out, items)?;
        writeln!(out)?;
        return Ok(());
    }
    if items.is_empty() {
        writeln!(out, "{empty}")?;
        return Ok(());
    }
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    // Cells hold what clients chose (names): shown escaped, never as raw control or
    // format characters that could rearrange the table on the admin's terminal.
    let rows = rows.map(|row| {
        row.into_iter()
            .map(|cell| text::escape_unsafe(&cell).into_owned())
            .collect()
    });
    let table: Vec<Vec<String>> = std::iter::once(header).chain(rows).collect();
    let mut widths = vec![0; table[0].len()];
    for row in &table {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(text::columns(cell));
        }
    }
    for row in &table {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            line.push_str(cell);
            if i + 1 < row.len() {
                line.extend(std::iter::repeat_n(' ', w - text::columns(cell) + 2));
            }
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// `netlab clients forget IP`.
pub fn forget_client(store: &mut Store, ip: IpAddr, out: &mut impl Write) -> anyhow::Result<()> {
    match store.forget_client(ip)? {
        Some(client) => writeln!(out, "forgot {} ({})", client.ip, client.name)?,
        None => bail!("no client is known at {ip}"),
    }
    Ok(())
}

/// A Unix time as RFC 3339. RFC 3339 ends with the year 9999, and humantime's
/// formatter fails past it, so a value out of range (a hand-edited row, say) is named
/// rather than formatted.
fn timestamp(unix: i64) -> String {
    const YEAR_9999_END: i64 = 253_402_300_799;
    match unix {
        ..0 => "before 1970".to_owned(),
        0..=YEAR_9999_END => {
            let t = UNIX_EPOCH + Duration::from_secs(unix.unsigned_abs());
            humantime::format_rfc3339_seconds(t).to_string()
        }
        _ => "after 9999".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::users::Registrar;

    #[test]
    fn table_columns_line_up_with_wide_names() {
        let mut store = Store::open_in_memory().unwrap();
        store
            .name_client("127.0.0.2".parse().unwrap(), "Alice", 0)
            .unwrap();
        store
            .name_client("::1".parse().unwrap(), "Юлия", 60)
            .unwrap();
        let mut out = Vec::new();
        list_clients(&store, false, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "IP         NAME   FIRST SEEN            LAST SEEN             VISITS\n\
             ::1        Юлия   1970-01-01T00:01:00Z  1970-01-01T00:01:00Z  1\n\
             127.0.0.2  Alice  1970-01-01T00:00:00Z  1970-01-01T00:00:00Z  1\n"
        );
    }

    #[test]
    fn table_columns_line_up_with_double_width_and_combining_characters() {
        let mut store = Store::open_in_memory().unwrap();
        // Widths 4, 4 and 4 on a terminal; 2, 3 and 5 chars.
        for (ip, name) in [
            ("127.0.0.2", "李雷"),
            ("127.0.0.3", "🦀Bo"),
            ("127.0.0.4", "Zoe\u{301}y"),
        ] {
            store.name_client(ip.parse().unwrap(), name, 0).unwrap();
        }
        let mut out = Vec::new();
        list_clients(&store, false, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let visits_at: Vec<usize> = text
            .lines()
            .map(|line| {
                let cut = line.rfind("  ").unwrap();
                console::measure_text_width(&line[..cut])
            })
            .collect();
        assert_eq!(visits_at.len(), 4, "{text}");
        assert!(
            visits_at.iter().all(|&at| at == visits_at[0]),
            "{visits_at:?}\n{text}"
        );
        assert!(text.contains("\n127.0.0.2  李雷  1970"), "{text}");
    }

    #[test]
    fn names_that_could_spoof_the_table_are_shown_escaped() {
        let mut store = Store::open_in_memory().unwrap();
        // Written directly, as an older netlab or a hand edit could have.
        store
            .name_client("127.0.0.2".parse().unwrap(), "evil\u{202E}gnp.exe", 0)
            .unwrap();
        let mut out = Vec::new();
        list_clients(&store, false, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("evil\\u{202e}gnp.exe"), "{text}");
        assert!(!text.contains('\u{202E}'), "{text}");
    }

    #[test]
    fn json_is_one_array() {
        let mut store = Store::open_in_memory().unwrap();
        store
            .name_client("127.0.0.2".parse().unwrap(), "Alice", 5)
            .unwrap();
        let mut out = Vec::new();
        list_clients(&store, true, &mut out).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v[0]["ip"], "127.0.0.2");
        assert_eq!(v[0]["name"], "Alice");
        assert_eq!(v[0]["visits"], 1);
    }

    #[test]
    fn session_list_never_shows_a_token_or_hash() {
        let mut store = Store::open_in_memory().unwrap();
        let id = store
            .create_user("erin", "$scrypt$secret-hash", 0, Registrar::Admin)
            .unwrap()
            .user()
            .unwrap()
            .id;
        let limits = store::SessionLimits {
            idle_secs: i64::MAX / 4,
            lifetime_secs: i64::MAX / 4,
        };
        store
            .create_session(id, b"hash-of-a-token", 0, limits)
            .unwrap();
        for json in [false, true] {
            let mut out = Vec::new();
            list_sessions(&store, json, &mut out).unwrap();
            let text = String::from_utf8(out).unwrap();
            assert!(text.contains("erin"), "{text}");
            assert!(
                !text.contains("hash-of-a-token") && !text.contains("secret-hash"),
                "{text}"
            );
            let mut out = Vec::new();
            list_users(&store, json, &mut out).unwrap();
            assert!(!String::from_utf8(out).unwrap().contains("secret-hash"));
        }
    }

    #[test]
    fn timestamps_out_of_range_are_named_not_formatted() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(timestamp(-1), "before 1970");
        assert_eq!(timestamp(i64::MAX), "after 9999");
    }

    #[test]
    fn forgetting_an_unknown_ip_is_an_error() {
        let mut store = Store::open_in_memory().unwrap();
        let err = forget_client(&mut store, "10.0.0.1".parse().unwrap(), &mut Vec::new());
        assert_eq!(
            err.unwrap_err().to_string(),
            "no client is known at 10.0.0.1"
        );
    }
}
