//! How many connections one source may have open at once.
//!
//! Invariant: a connection counts against its source from the moment it is accepted until
//! its task ends, however it ends (the count is an RAII slot), and one over the cap is
//! refused before any handler, database or hashing work. The map holds only sources
//! with connections open, so its size is bounded by the connection limit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::transport::Source;

/// Connections open per source.
type Counts = Arc<Mutex<HashMap<Source, usize>>>;

/// The per-source cap; `None` counts nothing.
pub struct PerSource {
    cap: Option<usize>,
    open: Counts,
}

impl PerSource {
    pub fn new(cap: Option<usize>) -> Self {
        PerSource {
            cap,
            open: Arc::default(),
        }
    }

    /// A slot for one more connection from `source`, or the cap it is at.
    pub fn admit(&self, source: Source) -> Result<SourceSlot, usize> {
        let Some(cap) = self.cap else {
            return Ok(SourceSlot { held: None });
        };
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(source).or_insert(0);
        if *count >= cap {
            return Err(cap);
        }
        *count += 1;
        Ok(SourceSlot {
            held: Some((source, Arc::clone(&self.open))),
        })
    }
}

/// One connection's place in its source's count, given back on drop.
pub struct SourceSlot {
    held: Option<(Source, Counts)>,
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let Some((source, open)) = self.held.take() else {
            return;
        };
        let mut open = open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&source) {
            *count -= 1;
            if *count == 0 {
                open.remove(&source);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(ip: &str) -> Source {
        Source::of(ip.parse().unwrap())
    }

    #[test]
    fn each_source_gets_its_cap_and_slots_come_back() {
        let limit = PerSource::new(Some(2));
        let a1 = limit.admit(source("127.0.0.2")).unwrap();
        let _a2 = limit.admit(source("127.0.0.2")).unwrap();
        assert_eq!(limit.admit(source("127.0.0.2")).err(), Some(2));
        let _b = limit.admit(source("127.0.0.3")).unwrap();
        drop(a1);
        let _a3 = limit.admit(source("127.0.0.2")).unwrap();
        drop((_a2, _a3, _b));
        assert!(
            limit.open.lock().unwrap().is_empty(),
            "nothing kept for idle sources"
        );
    }

    #[test]
    fn no_cap_counts_nothing() {
        let limit = PerSource::new(None);
        let slots: Vec<_> = (0..100)
            .map(|_| limit.admit(source("127.0.0.2")).unwrap())
            .collect();
        assert_eq!(slots.len(), 100);
        assert!(limit.open.lock().unwrap().is_empty());
    }
}
