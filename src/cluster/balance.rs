//! How many worlds a node should hold: each of N live nodes holds
//! ⌊W/N⌋ or ⌈W/N⌉, the ⌈⌉ going to the `W mod N` nodes that hold the most
//! already (ties by node id), so only surplus moves. Pure.

use std::collections::BTreeMap;

/// The number of worlds `me` should hold, given every live node's live
/// leases (`holdings`, `me` included) and `worlds` in all.
pub fn target(holdings: &BTreeMap<String, usize>, me: &str, worlds: usize) -> usize {
    let mut nodes: Vec<(&str, usize)> = holdings.iter().map(|(n, h)| (n.as_str(), *h)).collect();
    if !holdings.contains_key(me) {
        nodes.push((me, 0));
    }
    let n = nodes.len().max(1);
    let (base, extra) = (worlds / n, worlds % n);
    nodes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let rank = nodes.iter().position(|(id, _)| *id == me).unwrap_or(n);
    if rank < extra { base + 1 } else { base }
}

/// What a node does about its share this tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    /// Take up to this many free leases.
    Acquire(usize),
    /// Give one world up (at its worker's next scrape boundary).
    Shed,
    /// Hold what it holds.
    Hold,
}

/// [`target`] turned into this tick's move, for a node holding `held`.
pub fn next_move(holdings: &BTreeMap<String, usize>, me: &str, worlds: usize, held: usize) -> Move {
    let want = target(holdings, me, worlds);
    if held > want {
        Move::Shed
    } else if held < want {
        Move::Acquire(want - held)
    } else {
        Move::Hold
    }
}

/// Largest minus smallest holding (0 for no node).
pub fn spread(holdings: &BTreeMap<String, usize>) -> usize {
    let max = holdings.values().max().copied().unwrap_or(0);
    let min = holdings.values().min().copied().unwrap_or(0);
    max - min
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
        pairs.iter().map(|(n, c)| (n.to_string(), *c)).collect()
    }

    #[test]
    fn twelve_worlds_on_three_nodes_are_four_each() {
        let all = h(&[("a", 0), ("b", 0), ("c", 0)]);
        for me in ["a", "b", "c"] {
            assert_eq!(target(&all, me, 12), 4);
        }
    }

    #[test]
    fn a_fourth_node_takes_one_from_each() {
        let all = h(&[("a", 4), ("b", 4), ("c", 4), ("d", 0)]);
        for me in ["a", "b", "c"] {
            assert_eq!(next_move(&all, me, 12, 4), Move::Shed);
        }
        assert_eq!(next_move(&all, "d", 12, 0), Move::Acquire(3));
    }

    #[test]
    fn the_remainder_stays_with_those_holding_most() {
        // 10 worlds, 3 nodes: 4/3/3, and the 4 is whoever has it.
        let all = h(&[("a", 3), ("b", 4), ("c", 3)]);
        assert_eq!(target(&all, "b", 10), 4);
        assert_eq!(target(&all, "a", 10), 3);
        assert_eq!(target(&all, "c", 10), 3);
        // Ties go by id: only one of the two holding 4 keeps 4.
        let tie = h(&[("a", 4), ("b", 4), ("c", 2)]);
        assert_eq!(next_move(&tie, "a", 10, 4), Move::Hold);
        assert_eq!(next_move(&tie, "b", 10, 4), Move::Shed);
        assert_eq!(next_move(&tie, "c", 10, 2), Move::Acquire(1));
    }

    #[test]
    fn a_lone_node_holds_everything_and_a_node_not_listed_counts() {
        assert_eq!(target(&h(&[("a", 0)]), "a", 7), 7);
        assert_eq!(target(&h(&[("a", 7)]), "b", 7), 3);
        assert_eq!(target(&BTreeMap::new(), "a", 0), 0);
    }

    #[test]
    fn targets_always_add_up_to_the_worlds_and_differ_by_at_most_one() {
        for nodes in 1..6usize {
            for worlds in 0..30usize {
                // Some uneven holdings.
                let all: BTreeMap<String, usize> = (0..nodes)
                    .map(|i| (format!("n{i}"), (i * 7 + worlds) % (worlds + 1)))
                    .collect();
                let targets: Vec<usize> = all.keys().map(|me| target(&all, me, worlds)).collect();
                assert_eq!(targets.iter().sum::<usize>(), worlds, "{nodes} {worlds}");
                let (max, min) = (targets.iter().max(), targets.iter().min());
                assert!(max.zip(min).is_some_and(|(a, b)| a - b <= 1));
            }
        }
    }
}
