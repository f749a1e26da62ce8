//! [`VecMap`]: the map the core keeps per stream or per name, a `Vec` sorted
//! by key.
//!
//! A client follows a handful of streams. For that many entries a sorted
//! `Vec` is as fast as a hash map and much smaller in the browser build:
//! each `HashMap<K, V>` brings its own probing, growth and rehash code and
//! the hasher's random keys, where this is a binary search and a `Vec`
//! insert. Lookups are O(log n); an insert or a remove moves the entries
//! after it, one `memmove` of O(n) entries of a few machine words each.
//!
//! No peer can add an entry: the server's frames only update the entries
//! of streams the application subscribed, and those are at most
//! [`Config::max_streams`](crate::Config). The foreign requests in flight
//! are bounded by a constant. Resume positions are those the application
//! gave ([`Session::resume_from`](crate::Session::resume_from)) plus those
//! of its subscribed streams.

use alloc::vec::Vec;
use core::borrow::Borrow;

/// A map over a `Vec` of `(key, value)` sorted by key, without repeats.
#[derive(Clone, Debug)]
pub(crate) struct VecMap<K, V> {
    entries: Vec<(K, V)>,
}

impl<K, V> Default for VecMap<K, V> {
    fn default() -> Self {
        VecMap {
            entries: Vec::new(),
        }
    }
}

impl<K: Ord, V> VecMap<K, V> {
    /// An empty map; allocates nothing.
    pub(crate) const fn new() -> Self {
        VecMap {
            entries: Vec::new(),
        }
    }

    /// How many entries the map holds.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map holds no entry.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Where `key` is (`Ok`) or would be inserted (`Err`).
    fn find<Q: Ord + ?Sized>(&self, key: &Q) -> Result<usize, usize>
    where
        K: Borrow<Q>,
    {
        self.entries.binary_search_by(|(k, _)| k.borrow().cmp(key))
    }

    /// The value of `key`.
    pub(crate) fn get<Q: Ord + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        let at = self.find(key).ok()?;
        self.entries.get(at).map(|(_, v)| v)
    }

    /// Whether `key` has a value.
    pub(crate) fn contains_key<Q: Ord + ?Sized>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.find(key).is_ok()
    }

    /// Sets the value of `key`; returns the value it replaced.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.find(&key) {
            Ok(at) => self
                .entries
                .get_mut(at)
                .map(|(_, v)| core::mem::replace(v, value)),
            Err(at) => {
                self.entries.insert(at, (key, value));
                None
            }
        }
    }

    /// Takes the value of `key` out of the map.
    pub(crate) fn remove<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        let at = self.find(key).ok()?;
        Some(self.entries.remove(at).1)
    }

    /// Keeps only the entries for which `keep` is true.
    #[cfg_attr(not(feature = "foreign"), allow(dead_code))]
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        self.entries.retain_mut(|(k, v)| keep(k, v));
    }

    /// The values, in the order of their keys.
    #[cfg_attr(not(feature = "foreign"), allow(dead_code))]
    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.entries.iter().map(|(_, v)| v)
    }
}

#[cfg(test)]
mod tests {
    use super::VecMap;
    use alloc::collections::BTreeMap;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    #[test]
    fn lookups_by_borrowed_key_find_what_was_inserted() {
        let mut map = VecMap::new();
        assert_eq!(map.insert(alloc::string::String::from("b"), 2), None);
        assert_eq!(map.insert("a".into(), 1), None);
        assert_eq!(map.insert("b".into(), 3), Some(2));
        assert_eq!(map.get("b"), Some(&3));
        assert!(map.contains_key("a"));
        assert_eq!(map.len(), 2);
        assert_eq!(map.remove("a"), Some(1));
        assert_eq!(map.remove("a"), None);
        assert_eq!(map.get("a"), None);
    }

    proptest! {
        /// Against the standard library's B-tree: the same answers for any
        /// sequence of inserts, removes and retains, and the values in key
        /// order.
        #[test]
        fn behaves_as_an_ordered_map(ops in proptest::collection::vec((0u8..4, 0u8..32, any::<u16>()), 0..200)) {
            let mut map = VecMap::new();
            let mut model = BTreeMap::new();
            for (op, key, value) in ops {
                match op {
                    0 | 1 => prop_assert_eq!(map.insert(key, value), model.insert(key, value)),
                    2 => prop_assert_eq!(map.remove(&key), model.remove(&key)),
                    _ => {
                        map.retain(|k, v| (k ^ *v as u8) & 1 == 0);
                        model.retain(|k, v| (k ^ *v as u8) & 1 == 0);
                    }
                }
                prop_assert_eq!(map.get(&key), model.get(&key));
                prop_assert_eq!(map.contains_key(&key), model.contains_key(&key));
                prop_assert_eq!(map.len(), model.len());
                prop_assert_eq!(map.is_empty(), model.is_empty());
            }
            let values: Vec<u16> = map.values().copied().collect();
            let expected: Vec<u16> = model.values().copied().collect();
            prop_assert_eq!(values, expected);
        }
    }
}
