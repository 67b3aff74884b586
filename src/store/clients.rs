//! Clients of the identification server (lab task 7), known by IP address alone.

use std::net::IpAddr;

use rusqlite::{OptionalExtension, TransactionBehavior, params};
use serde::Serialize;

use super::{Store, canonical};

/// A client of the identification server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Client {
    pub ip: IpAddr,
    pub name: String,
    /// Unix seconds.
    pub first_seen: i64,
    pub last_seen: i64,
    pub visits: i64,
}

impl Store {
    /// The client at `ip`, if it is known.
    pub fn find_client(&self, ip: IpAddr) -> anyhow::Result<Option<Client>> {
        Ok(self
            .conn
            .query_row(
                "SELECT ip, name, first_seen, last_seen, visits FROM clients WHERE ip = ?1",
                [canonical(ip).to_string()],
                client_from_row,
            )
            .optional()?)
    }

    /// Counts a new visit of the client at `ip`, if it is known, and returns it.
    pub fn record_visit(&mut self, ip: IpAddr, now: i64) -> anyhow::Result<Option<Client>> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let client = tx
            .query_row(
                "UPDATE clients SET visits = visits + 1, last_seen = ?2 WHERE ip = ?1
                 RETURNING ip, name, first_seen, last_seen, visits",
                params![canonical(ip).to_string(), now],
                client_from_row,
            )
            .optional()?;
        tx.commit()?;
        Ok(client)
    }

    /// Names the client at `ip`: a new client on its first visit, or a new name for a
    /// known one (which keeps its history).
    pub fn name_client(&mut self, ip: IpAddr, name: &str, now: i64) -> anyhow::Result<Client> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let client = tx.query_row(
            "INSERT INTO clients (ip, name, first_seen, last_seen, visits)
             VALUES (?1, ?2, ?3, ?3, 1)
             ON CONFLICT (ip) DO UPDATE SET name = excluded.name, last_seen = excluded.last_seen
             RETURNING ip, name, first_seen, last_seen, visits",
            params![canonical(ip).to_string(), name, now],
            client_from_row,
        )?;
        tx.commit()?;
        Ok(client)
    }

    /// All known clients, most recently seen first.
    pub fn list_clients(&self) -> anyhow::Result<Vec<Client>> {
        let mut stmt = self.conn.prepare(
            "SELECT ip, name, first_seen, last_seen, visits FROM clients
             ORDER BY last_seen DESC, ip",
        )?;
        let clients = stmt
            .query_map([], client_from_row)?
            .collect::<Result<_, _>>()?;
        Ok(clients)
    }

    /// Forgets the client at `ip`; returns it if it was known.
    pub fn forget_client(&mut self, ip: IpAddr) -> anyhow::Result<Option<Client>> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let client = tx
            .query_row(
                "DELETE FROM clients WHERE ip = ?1
                 RETURNING ip, name, first_seen, last_seen, visits",
                [canonical(ip).to_string()],
                client_from_row,
            )
            .optional()?;
        tx.commit()?;
        Ok(client)
    }
}

fn client_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Client> {
    let ip: String = row.get(0)?;
    Ok(Client {
        ip: ip.parse().map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
        })?,
        name: row.get(1)?,
        first_seen: row.get(2)?,
        last_seen: row.get(3)?,
        visits: row.get(4)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_client_is_named_then_visits() {
        let mut store = Store::open_in_memory().unwrap();
        assert_eq!(store.record_visit(ip("127.0.0.2"), 100).unwrap(), None);
        let alice = store.name_client(ip("127.0.0.2"), "Alice", 100).unwrap();
        assert_eq!((alice.visits, alice.first_seen), (1, 100));
        let again = store.record_visit(ip("127.0.0.2"), 250).unwrap().unwrap();
        assert_eq!(again.name, "Alice");
        assert_eq!(
            (again.visits, again.first_seen, again.last_seen),
            (2, 100, 250)
        );
        assert_eq!(store.find_client(ip("127.0.0.3")).unwrap(), None);
    }

    #[test]
    fn an_ipv4_mapped_address_is_the_ipv4_client() {
        let mut store = Store::open_in_memory().unwrap();
        store.name_client(ip("::ffff:127.0.0.2"), "Bob", 1).unwrap();
        let bob = store.find_client(ip("127.0.0.2")).unwrap().unwrap();
        assert_eq!(bob.ip, ip("127.0.0.2"));
        assert_eq!(store.list_clients().unwrap().len(), 1);
    }

    #[test]
    fn forgetting_returns_the_client_once() {
        let mut store = Store::open_in_memory().unwrap();
        store.name_client(ip("::1"), "Carol", 1).unwrap();
        assert_eq!(
            store.forget_client(ip("::1")).unwrap().unwrap().name,
            "Carol"
        );
        assert_eq!(store.forget_client(ip("::1")).unwrap(), None);
        assert!(store.list_clients().unwrap().is_empty());
    }
}
