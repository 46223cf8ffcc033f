//! Which threads belong together: a union-find over threads and processes, and the device
//! vectors each group's helper threads raise.

use rustc_hash::FxHashMap;
use virtflow_model::WaitCause;

/// Linux guests' fixed vectors.
pub fn fixed_vector_class(vector: u32) -> Option<WaitCause> {
    match vector {
        0xec | 0xef => Some(WaitCause::Timer),
        0xfb..=0xfd => Some(WaitCause::Task),
        _ => None,
    }
}

/// Key of a thread in [`Groups`].
pub fn thread_key(tid: u32) -> u64 {
    u64::from(tid)
}

/// Key of a process (thread group) in [`Groups`].
pub fn process_key(pid: u32) -> u64 {
    (1 << 32) | u64::from(pid)
}

/// The pid a vhost worker serves, from its name `vhost-<pid>`.
pub fn vhost_pid(comm: &str) -> Option<u32> {
    comm.strip_prefix("vhost-")?.parse().ok()
}

/// Union-find over threads and processes; each group knows the device vectors its helper
/// threads raise, with how often each was raised for which cause.
#[derive(Default)]
pub(crate) struct Groups {
    parent: FxHashMap<u64, u64>,
    /// The process (thread group) a group is known to be, by its root.
    process: FxHashMap<u64, u32>,
    vectors: FxHashMap<u64, Vec<(u32, WaitCause, u64)>>,
}

impl Groups {
    /// The group of `key`, without shortening paths on the way (for readers that hold the
    /// groups shared, such as the device analysis during the pass).
    pub fn root(&self, key: u64) -> u64 {
        let mut root = key;
        while let Some(&p) = self.parent.get(&root) {
            if p == root {
                break;
            }
            root = p;
        }
        root
    }

    pub fn find(&mut self, key: u64) -> u64 {
        let mut root = key;
        while let Some(&p) = self.parent.get(&root) {
            if p == root {
                break;
            }
            root = p;
        }
        // Path compression keeps later look-ups short.
        let mut k = key;
        while k != root {
            let next = *self.parent.get(&k).unwrap_or(&root);
            self.parent.insert(k, root);
            k = next;
        }
        root
    }

    pub fn union(&mut self, a: u64, b: u64) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return;
        }
        self.parent.insert(ra, ra);
        self.parent.insert(rb, ra);
        for key in [a, b] {
            if key >> 32 == 1 {
                self.process.entry(ra).or_insert(key as u32);
            }
        }
        if let Some(pid) = self.process.remove(&rb) {
            self.process.entry(ra).or_insert(pid);
        }
        if let Some(moved) = self.vectors.remove(&rb) {
            for (v, c, n) in moved {
                self.add_vector(ra, v, c, n);
            }
        }
    }

    /// Joins the groups of `a` and `b` on behavioural evidence (an interrupt raised then a
    /// wake-up, an IPI), unless the trace says they belong to different processes: a known
    /// thread group is a fact, a behaviour only a clue. Returns whether they are one group now.
    pub fn join_by_behaviour(&mut self, a: u64, b: u64) -> bool {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return true;
        }
        if let (Some(pa), Some(pb)) = (self.process.get(&ra), self.process.get(&rb)) {
            if pa != pb {
                return false;
            }
        }
        self.union(a, b);
        true
    }

    pub fn same(&mut self, a: u64, b: u64) -> bool {
        self.find(a) == self.find(b)
    }

    fn add_vector(&mut self, root: u64, vector: u32, cause: WaitCause, n: u64) {
        let list = self.vectors.entry(root).or_default();
        match list
            .iter_mut()
            .find(|(v, c, _)| *v == vector && *c == cause)
        {
            Some(e) => e.2 += n,
            None => list.push((vector, cause, n)),
        }
    }

    pub fn learn(&mut self, key: u64, vector: u32, cause: WaitCause) {
        let root = self.find(key);
        self.add_vector(root, vector, cause, 1);
    }

    /// What a vector injected into `key`'s VM serves: fixed Linux vectors, then the device
    /// vectors learned from the VM's helper threads (the cause raised most often wins).
    pub fn vector_class(&self, key: u64, vector: u32) -> Option<WaitCause> {
        if let Some(c) = fixed_vector_class(vector) {
            return Some(c);
        }
        let root = self.root(key);
        self.vectors
            .get(&root)?
            .iter()
            .filter(|(v, _, _)| *v == vector)
            .max_by_key(|(_, _, n)| *n)
            .map(|(_, c, _)| *c)
    }

    /// Every key in the same group as some key, as `(key, root)` pairs.
    pub fn all(&mut self) -> Vec<(u64, u64)> {
        let keys: Vec<u64> = self.parent.keys().copied().collect();
        keys.into_iter().map(|k| (k, self.find(k))).collect()
    }
}
