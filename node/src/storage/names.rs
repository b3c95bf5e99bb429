//! The subject name index: which market subjects' names start with or contain a piece of
//! text, for the console's search by a fragment of a Chinese name (`鄂尔多斯`, `建工`).
//!
//! Chinese names have no spaces to split words at, so the index is of character bigrams, the
//! way CJK full-text indexes (Lucene's CJK analyzer) do it: a name `abcd` is filed under
//! `^a`, `ab`, `bc`, `cd` and `d$` (`^`/`$` are the start and end markers). A query of two or
//! more characters intersects the postings of its bigrams (a leapfrog join over sorted
//! lists, so a rare bigram makes a common one cheap) and keeps the names that really contain
//! it; one character is every bigram that starts with it. Each posting carries the normalized
//! name, so checking a candidate reads no subject.
//!
//! The index is the node's own, not chain state: it is kept in the same write batch as the
//! state writes it follows ([`index_writes`]), filled from a state snapshot's entries as they
//! are restored, and built from the state once when a store written before it is opened.

use std::collections::BTreeSet;

use caihong_chaincode::{WriteSet, codec, keys, subjects::Subject};
use rocksdb::{DB, Snapshot, WriteBatch};

use super::{StorageError, cf, db_error};

/// Bigram, `0`, USCC → the normalized name.
pub const CF_SUBJECT_NAMES: &str = "subject_names";

/// Present once every subject in the state is indexed.
pub(super) const META_NAMES_INDEXED: &[u8] = b"subject_names_indexed";

const START: char = '\u{2}';
const END: char = '\u{3}';

/// Most candidates a search checks before it answers with what it found (a query whose
/// bigrams are all common but seldom adjacent); the page says the search stopped there.
pub const MAX_CANDIDATES: usize = 50_000;

/// The form names are indexed and searched in: ASCII letters lower-cased, full-width forms
/// (`（`, `Ａ`, `１`) as their ASCII twins, white space dropped. Exports write the same
/// company as `（内蒙古）` and `(内蒙古)`.
pub fn normalize(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            _ => c,
        })
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The bigrams a normalized name is filed under.
fn grams(name: &str) -> BTreeSet<String> {
    let chars: Vec<char> = name.chars().collect();
    let mut out = BTreeSet::new();
    let Some(first) = chars.first() else {
        return out;
    };
    out.insert(format!("{START}{first}"));
    for (i, c) in chars.iter().enumerate() {
        let next = chars.get(i + 1).copied().unwrap_or(END);
        out.insert(format!("{c}{next}"));
    }
    out
}

fn posting_key(gram: &str, uscc: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(gram.len() + 1 + uscc.len());
    k.extend_from_slice(gram.as_bytes());
    k.push(0);
    k.extend_from_slice(uscc);
    k
}

fn subject_name(value: &[u8]) -> Option<String> {
    codec::decode::<Subject>(value)
        .ok()
        .map(|s| normalize(&s.name))
}

/// Puts (or, with `old`, first takes away) the postings of one subject's name.
fn repost(db: &DB, batch: &mut WriteBatch, uscc: &[u8], old: Option<&str>, new: Option<&str>) {
    if old == new {
        return;
    }
    let names = cf(db, CF_SUBJECT_NAMES);
    let old_grams = old.map(grams).unwrap_or_default();
    let new_grams = new.map(grams).unwrap_or_default();
    for g in old_grams.difference(&new_grams) {
        batch.delete_cf(names, posting_key(g, uscc));
    }
    if let Some(name) = new {
        // Every posting holds the name, so a changed name rewrites them all.
        for g in &new_grams {
            batch.put_cf(names, posting_key(g, uscc), name.as_bytes());
        }
    }
}

/// Adds to a block's batch the index changes its state writes make. `before` reads a
/// subject's previous value (its old name's postings go).
pub(super) fn index_writes(
    db: &DB,
    batch: &mut WriteBatch,
    before: &dyn Fn(&[u8]) -> Option<Vec<u8>>,
    writes: &WriteSet,
) {
    for (k, v) in writes.range(keys::SUBJECT_PREFIX.to_vec()..) {
        let Some(uscc) = k.strip_prefix(keys::SUBJECT_PREFIX) else {
            break;
        };
        let old = before(k).and_then(|v| subject_name(&v));
        let new = v.as_deref().and_then(subject_name);
        repost(db, batch, uscc, old.as_deref(), new.as_deref());
    }
}

/// Adds the postings of restored state entries (a fresh store: nothing to take away).
pub(super) fn index_entries(db: &DB, batch: &mut WriteBatch, entries: &[(Vec<u8>, Vec<u8>)]) {
    for (k, v) in entries {
        if let Some(uscc) = k.strip_prefix(keys::SUBJECT_PREFIX) {
            repost(db, batch, uscc, None, subject_name(v).as_deref());
        }
    }
}

/// Adds to `batch` the removal of every posting.
pub(super) fn clear(db: &DB, batch: &mut WriteBatch) -> Result<(), StorageError> {
    let names = cf(db, CF_SUBJECT_NAMES);
    for item in db.iterator_cf(names, rocksdb::IteratorMode::Start) {
        let (k, _) = item.map_err(|e| db_error(db, e))?;
        batch.delete_cf(names, k);
    }
    Ok(())
}

/// Subjects indexed per write while building.
const BUILD_BATCH: usize = 10_000;

/// Builds the index from the state, for a store written before it; returns how many subjects
/// were indexed. Written in batches (a large store's whole index would not fit in memory at
/// once); the mark that it is complete goes last, so an interrupted build starts again.
pub(super) fn build(db: &DB, meta: &str, state: &str) -> Result<usize, StorageError> {
    let mut batch = WriteBatch::default();
    clear(db, &mut batch)?;
    let mut count = 0;
    let iter = db.iterator_cf(
        cf(db, state),
        rocksdb::IteratorMode::From(keys::SUBJECT_PREFIX, rocksdb::Direction::Forward),
    );
    for item in iter {
        let (k, v) = item.map_err(|e| db_error(db, e))?;
        let Some(uscc) = k.strip_prefix(keys::SUBJECT_PREFIX) else {
            break;
        };
        repost(db, &mut batch, uscc, None, subject_name(&v).as_deref());
        count += 1;
        if count % BUILD_BATCH == 0 {
            db.write(std::mem::take(&mut batch))
                .map_err(|e| db_error(db, e))?;
        }
    }
    batch.put_cf(cf(db, meta), META_NAMES_INDEXED, []);
    db.write(batch).map_err(|e| db_error(db, e))?;
    Ok(count)
}

/// Most characters of a query: a name is far shorter, and each character past the first
/// adds a posting list to the join.
pub const MAX_QUERY_CHARS: usize = 64;

/// How a name must match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameMatch {
    StartsWith,
    Contains,
    /// Contains, but not at the start (what a list after the `StartsWith` one adds).
    Inside,
}

/// One page of a name search.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct NameHits {
    /// USCCs in ascending order.
    pub usccs: Vec<String>,
    /// The USCC to continue after, when there may be more.
    pub more_after: Option<String>,
    /// The search checked [`MAX_CANDIDATES`] and stopped: a narrower query finds the rest.
    pub stopped: bool,
}

/// The subjects whose names match `query`, after USCC `after`, at most `limit`.
pub(super) fn search(
    db: &DB,
    snapshot: &Snapshot<'_>,
    query: &str,
    how: NameMatch,
    after: Option<&str>,
    limit: usize,
) -> Result<NameHits, StorageError> {
    let q: String = normalize(query).chars().take(MAX_QUERY_CHARS).collect();
    let chars: Vec<char> = q.chars().collect();
    let mut hits = NameHits::default();
    if chars.is_empty() || limit == 0 {
        return Ok(hits);
    }
    // Posting lists to intersect, each a key prefix.
    // Each bigram once (a repeated one narrows nothing).
    let mut lists: BTreeSet<Vec<u8>> = chars
        .windows(2)
        .map(|w| posting_key(&format!("{}{}", w[0], w[1]), b""))
        .collect();
    if how == NameMatch::StartsWith {
        lists.insert(posting_key(&format!("{START}{}", chars[0]), b""));
    }
    let lists: Vec<Vec<u8>> = lists.into_iter().collect();
    let names = cf(db, CF_SUBJECT_NAMES);
    let keep = |name: &str| match how {
        NameMatch::StartsWith => name.starts_with(&q),
        NameMatch::Contains => name.contains(&q),
        NameMatch::Inside => !name.starts_with(&q) && name.contains(&q),
    };
    let mut candidates = 0usize;
    if lists.is_empty() {
        // One character and any position: every bigram that starts with it, gathered (the
        // postings of different bigrams are not in one USCC order).
        let prefix = chars[0].to_string().into_bytes();
        let mut found = BTreeSet::new();
        let mut iter = snapshot.raw_iterator_cf(names);
        iter.seek(&prefix);
        while let (Some(k), true) = (iter.key(), iter.valid()) {
            if !k.starts_with(&prefix) {
                break;
            }
            candidates += 1;
            if candidates > MAX_CANDIDATES {
                hits.stopped = true;
                break;
            }
            if let (Some(zero), Some(name)) = (k.iter().position(|b| *b == 0), iter.value()) {
                let uscc = String::from_utf8_lossy(&k[zero + 1..]).into_owned();
                if after.is_none_or(|a| uscc.as_str() > a) && keep(&String::from_utf8_lossy(name)) {
                    found.insert(uscc);
                }
            }
            iter.next();
        }
        iter.status().map_err(|e| db_error(db, e))?;
        hits.usccs = found.into_iter().take(limit + 1).collect();
    } else {
        let mut iters: Vec<_> = lists
            .iter()
            .map(|_| snapshot.raw_iterator_cf(names))
            .collect();
        // The next USCC to look for: every list is sought to it, then to the greatest USCC
        // any list holds at or after it, until all agree (the leapfrog join).
        let mut target: Vec<u8> = match after {
            Some(a) => {
                let mut t = a.as_bytes().to_vec();
                t.push(0);
                t
            }
            None => Vec::new(),
        };
        'join: loop {
            let mut agreed = 0;
            let mut i = 0;
            while agreed < lists.len() {
                let it = &mut iters[i];
                let mut seek = lists[i].clone();
                seek.extend_from_slice(&target);
                it.seek(&seek);
                let at = match (it.valid(), it.key()) {
                    (true, Some(k)) if k.starts_with(&lists[i]) => k[lists[i].len()..].to_vec(),
                    _ => {
                        // The list ended, or reading it failed: say which.
                        it.status().map_err(|e| db_error(db, e))?;
                        break 'join;
                    }
                };
                if at == target {
                    agreed += 1;
                } else {
                    target = at;
                    agreed = 1;
                }
                i = (i + 1) % lists.len();
            }
            iters[0].status().map_err(|e| db_error(db, e))?;
            candidates += 1;
            if candidates > MAX_CANDIDATES {
                hits.stopped = true;
                break;
            }
            let name = iters[0]
                .value()
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default();
            if keep(&name) {
                hits.usccs
                    .push(String::from_utf8_lossy(&target).into_owned());
                if hits.usccs.len() > limit {
                    break;
                }
            }
            target.push(0);
        }
    }
    if hits.usccs.len() > limit {
        hits.usccs.truncate(limit);
        hits.more_after = hits.usccs.last().cloned();
    }
    if hits.stopped {
        // A next page would check the same candidates again: the query must narrow instead.
        hits.more_after = None;
    }
    Ok(hits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalized_and_filed_under_their_bigrams() {
        assert_eq!(normalize("Ａ建工（集团） 有限公司"), "a建工(集团)有限公司");
        let g = grams("建工集团");
        let expect: BTreeSet<String> = ["\u{2}建", "建工", "工集", "集团", "团\u{3}"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(g, expect);
        assert!(grams("").is_empty());
    }
}
