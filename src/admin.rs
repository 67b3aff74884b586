//! Admin commands: look at and change what the servers remember, from the shell.
//!
//! They open the database directly, while a server may be running: SQLite's locking
//! and the store's immediate transactions keep both consistent.

use std::io::Write;
use std::net::IpAddr;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::bail;

use crate::store::{Client, Store};

/// `netlab clients list`: a table, or JSON for scripts.
pub fn list_clients(store: &Store, json: bool, out: &mut impl Write) -> anyhow::Result<()> {
    let clients = store.list_clients()?;
    if json {
        serde_json::to_writer(&mut *out, &clients)?;
        writeln!(out)?;
        return Ok(());
    }
    if clients.is_empty() {
        writeln!(out, "no clients yet")?;
        return Ok(());
    }
    let rows: Vec<[String; 5]> = clients.iter().map(row).collect();
    let header = ["IP", "NAME", "FIRST SEEN", "LAST SEEN", "VISITS"].map(String::from);
    let mut widths = [0; 5];
    for r in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for r in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, (cell, w)) in r.iter().zip(widths).enumerate() {
            if i + 1 == r.len() {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', w - cell.chars().count() + 2));
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

fn row(c: &Client) -> [String; 5] {
    [
        c.ip.to_string(),
        c.name.clone(),
        timestamp(c.first_seen),
        timestamp(c.last_seen),
        c.visits.to_string(),
    ]
}

fn timestamp(unix: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_secs(unix.max(0).unsigned_abs());
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn forgetting_an_unknown_ip_is_an_error() {
        let mut store = Store::open_in_memory().unwrap();
        let err = forget_client(&mut store, "10.0.0.1".parse().unwrap(), &mut Vec::new());
        assert_eq!(
            err.unwrap_err().to_string(),
            "no client is known at 10.0.0.1"
        );
    }
}
