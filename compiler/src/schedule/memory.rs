//! The memory plan: storage slots for buffers, temporaries sharing slots by lifetime.
//!
//! A temporary lives from the launch that writes it to the last launch that reads it,
//! both inclusive. Two temporaries share a slot only when their lifetimes are disjoint,
//! so no launch ever binds two buffers that share memory. Inputs, parameters, constants
//! and outputs each get a slot of their own (they live for the whole run and beyond).

use super::plan::{BufferInfo, BufferRole, Launch, StorageSlot};

/// Live range of a buffer in launch indices (inclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifetime {
    /// First launch using it.
    pub first: usize,
    /// Last launch using it.
    pub last: usize,
}

/// Lifetimes of every buffer over the launches (`None` when no launch binds it).
pub fn lifetimes(num_buffers: usize, launches: &[Launch]) -> Vec<Option<Lifetime>> {
    let mut out: Vec<Option<Lifetime>> = vec![None; num_buffers];
    for (i, l) in launches.iter().enumerate() {
        for a in &l.args {
            let slot = &mut out[a.0 as usize];
            *slot = Some(match *slot {
                None => Lifetime { first: i, last: i },
                Some(lt) => Lifetime {
                    first: lt.first.min(i),
                    last: lt.last.max(i),
                },
            });
        }
    }
    out
}

/// Assigns [`BufferInfo::storage`] for every buffer and returns the slots.
///
/// Temporaries are placed in order of their first launch; each takes the smallest free
/// slot that is large enough, else the largest free slot (which grows), else a new one.
pub fn assign_storage(buffers: &mut [BufferInfo], launches: &[Launch]) -> Vec<StorageSlot> {
    let lts = lifetimes(buffers.len(), launches);
    let mut slots: Vec<StorageSlot> = Vec::new();
    // Per slot: the last launch of its current occupant (None: permanent).
    let mut busy_until: Vec<Option<usize>> = Vec::new();
    let bytes = |b: &BufferInfo| b.len * b.dtype.size_bytes();
    let mut temps: Vec<usize> = Vec::new();
    for (i, b) in buffers.iter_mut().enumerate() {
        match (&b.role, lts[i]) {
            (BufferRole::Temp, Some(_)) => temps.push(i),
            _ => {
                b.storage = slots.len();
                slots.push(StorageSlot { bytes: bytes(b) });
                busy_until.push(None);
            }
        }
    }
    temps.sort_by_key(|&i| (lts[i].map(|l| l.first), i));
    for i in temps {
        let lt = lts[i].expect("temps with a lifetime");
        let need = bytes(&buffers[i]);
        let free: Vec<usize> = (0..slots.len())
            .filter(|&s| busy_until[s].is_some_and(|u| u < lt.first))
            .collect();
        let fitting = free
            .iter()
            .copied()
            .filter(|&s| slots[s].bytes >= need)
            .min_by_key(|&s| (slots[s].bytes, s));
        let chosen = fitting.or_else(|| {
            free.iter()
                .copied()
                .max_by_key(|&s| (slots[s].bytes, std::cmp::Reverse(s)))
        });
        let s = match chosen {
            Some(s) => {
                slots[s].bytes = slots[s].bytes.max(need);
                s
            }
            None => {
                slots.push(StorageSlot { bytes: need });
                busy_until.push(None);
                slots.len() - 1
            }
        };
        busy_until[s] = Some(lt.last);
        buffers[i].storage = s;
    }
    slots
}
