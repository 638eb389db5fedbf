//! A conversation's messages as a tree: each message under the one it
//! follows, siblings where an answer was regenerated or a question edited.
//! Messages are known by a local key (a saved one has a server id too),
//! kept in the order they were made.

/// A message's place in the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    pub key: u64,
    pub parent: Option<u64>,
}

/// The keys from the first message down to `last`.
pub fn branch(places: &[Place], last: Option<u64>) -> Vec<u64> {
    let mut path = Vec::new();
    let mut next = last;
    while let Some(key) = next {
        let Some(place) = places.iter().find(|place| place.key == key) else {
            break;
        };
        path.push(key);
        next = place.parent;
        if path.len() > places.len() {
            break;
        }
    }
    path.reverse();
    path
}

/// The messages sharing `key`'s parent, in the order they were made.
pub fn siblings(places: &[Place], key: u64) -> Vec<u64> {
    let Some(parent) = places
        .iter()
        .find(|place| place.key == key)
        .map(|place| place.parent)
    else {
        return Vec::new();
    };
    places
        .iter()
        .filter(|place| place.parent == parent)
        .map(|place| place.key)
        .collect()
}

/// Where `key` stands among its siblings: `(position from 1, how many)`.
pub fn position(places: &[Place], key: u64) -> (usize, usize) {
    let siblings = siblings(places, key);
    let at = siblings
        .iter()
        .position(|&k| k == key)
        .map_or(0, |at| at + 1);
    (at, siblings.len())
}

/// The sibling `offset` steps from `key` (-1: the one before), if any.
pub fn sibling(places: &[Place], key: u64, offset: isize) -> Option<u64> {
    let siblings = siblings(places, key);
    let at = siblings.iter().position(|&k| k == key)?;
    let to = at.checked_add_signed(offset)?;
    siblings.get(to).copied()
}

/// The end of the branch below `key` that a reader would expect: at each
/// step the most recent child, as the conversation last went on there.
pub fn leaf_below(places: &[Place], key: u64) -> u64 {
    let mut at = key;
    for _ in 0..places.len() {
        match places.iter().rev().find(|place| place.parent == Some(at)) {
            Some(child) => at = child.key,
            None => break,
        }
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    /// q1 ─ a1
    ///    └ a2 ─ q2 ─ a3
    /// q3 (an edit of q1) ─ a4
    fn tree() -> Vec<Place> {
        let place = |key, parent| Place { key, parent };
        vec![
            place(1, None),
            place(2, Some(1)),
            place(3, Some(1)),
            place(4, Some(3)),
            place(5, Some(4)),
            place(6, None),
            place(7, Some(6)),
        ]
    }

    #[test]
    fn a_branch_runs_from_the_first_message_down() {
        assert_eq!(branch(&tree(), Some(5)), [1, 3, 4, 5]);
        assert_eq!(branch(&tree(), Some(7)), [6, 7]);
        assert_eq!(branch(&tree(), None), Vec::<u64>::new());
    }

    #[test]
    fn siblings_are_counted_in_the_order_they_were_made() {
        assert_eq!(position(&tree(), 3), (2, 2));
        assert_eq!(position(&tree(), 2), (1, 2));
        assert_eq!(position(&tree(), 6), (2, 2));
        assert_eq!(position(&tree(), 4), (1, 1));
    }

    #[test]
    fn switching_goes_to_the_sibling_and_down_its_latest_branch() {
        assert_eq!(sibling(&tree(), 2, 1), Some(3));
        assert_eq!(sibling(&tree(), 2, -1), None);
        assert_eq!(sibling(&tree(), 3, 1), None);
        assert_eq!(leaf_below(&tree(), 3), 5);
        assert_eq!(leaf_below(&tree(), 1), 5);
        assert_eq!(leaf_below(&tree(), 2), 2);
        assert_eq!(leaf_below(&tree(), 6), 7);
    }
}
