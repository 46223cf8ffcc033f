//! Several hosts: the pairs with a formula form a graph; a breadth-first spanning tree from the
//! reference host chains the pair transforms into one transform per host.
//!
//! As in Trace Compass: every pair with a formula (approximate, accurate, or failed with its
//! last formula) is an edge both ways — reference → other labelled with the pair's transform
//! (other's time to reference's), other → reference with its inverse — added in the order the
//! pairs first appeared. The path from the root to a host is the breadth-first one: fewest
//! hops, ties going to the edge added first. A host's transform is the composition of the
//! labels along it, root side outermost, so it maps that host's time to the root's. Edge
//! weights (the pairs' accuracy) play no part, as in Trace Compass.

use std::collections::VecDeque;

use crate::quality::SyncQuality;
use crate::transform::ClockTransform;

/// A pair of hosts with a formula: an edge of the graph.
#[derive(Clone, Debug)]
pub(crate) struct Link {
    pub reference: usize,
    pub other: usize,
    /// Other host's time → reference host's time.
    pub to_reference: ClockTransform,
    pub quality: SyncQuality,
    /// Error bound of `to_reference`, in reference ns, when guaranteed.
    pub bound_at_reference: Option<f64>,
    /// Error bound of its inverse, in the other host's ns.
    pub bound_at_other: Option<f64>,
}

/// One direction of a link: from the host owning the adjacency list to `to`.
#[derive(Clone, Debug)]
struct Edge {
    to: usize,
    /// `to`'s time → the owning host's time.
    label: ClockTransform,
    quality: SyncQuality,
    bound_ns: Option<f64>,
}

/// Where the tree puts one host.
#[derive(Clone, Debug)]
pub(crate) struct Placement {
    /// This host's time → the root's time.
    pub transform: ClockTransform,
    /// The worst quality along the path (the root itself: accurate).
    pub quality: SyncQuality,
    /// Bound of the composed transform's error, in root ns, when every link guarantees one.
    pub bound_ns: Option<f64>,
    /// Hosts from the root to this one, both included.
    pub path: Vec<usize>,
}

/// The reference host: the one asked for, else the first in order among the hosts of the
/// links (so hosts without any formula do not become a root nobody can reach), else the
/// first of all hosts. `hosts_by_name` lists every host index, sorted by host id.
pub(crate) fn choose_root(
    requested: Option<usize>,
    links: &[Link],
    hosts_by_name: &[usize],
) -> Option<usize> {
    if requested.is_some() {
        return requested;
    }
    let linked = |h: &usize| links.iter().any(|l| l.reference == *h || l.other == *h);
    hosts_by_name
        .iter()
        .copied()
        .find(linked)
        .or_else(|| hosts_by_name.first().copied())
}

/// Places every host reachable from `root`; the others get `None`.
pub(crate) fn place_hosts(
    host_count: usize,
    root: usize,
    links: &[Link],
) -> Vec<Option<Placement>> {
    let mut adjacency: Vec<Vec<Edge>> = vec![Vec::new(); host_count];
    for link in links {
        adjacency[link.reference].push(Edge {
            to: link.other,
            label: link.to_reference.clone(),
            quality: link.quality,
            bound_ns: link.bound_at_reference,
        });
        if let Some(inverse) = link.to_reference.inverse() {
            adjacency[link.other].push(Edge {
                to: link.reference,
                label: inverse,
                quality: link.quality,
                bound_ns: link.bound_at_other,
            });
        }
    }

    // Breadth-first: each host remembers the edge it was first reached by.
    let mut reached_by: Vec<Option<(usize, usize)>> = vec![None; host_count];
    let mut seen = vec![false; host_count];
    let mut queue = VecDeque::from([root]);
    seen[root] = true;
    while let Some(host) = queue.pop_front() {
        for (index, edge) in adjacency[host].iter().enumerate() {
            if !seen[edge.to] {
                seen[edge.to] = true;
                reached_by[edge.to] = Some((host, index));
                queue.push_back(edge.to);
            }
        }
    }

    (0..host_count)
        .map(|host| {
            if !seen[host] {
                return None;
            }
            let mut edges = Vec::new();
            let mut path = vec![host];
            let mut at = host;
            while let Some((parent, index)) = reached_by[at] {
                edges.push(&adjacency[parent][index]);
                path.push(parent);
                at = parent;
            }
            edges.reverse();
            path.reverse();
            compose_path(&edges, path)
        })
        .collect()
}

/// Chains the labels from the root outwards. An edge's error, in its near host's ns, reaches
/// the root scaled by the slope of what lies between them.
fn compose_path(edges: &[&Edge], path: Vec<usize>) -> Option<Placement> {
    let mut transform = ClockTransform::identity();
    let mut quality = SyncQuality::Accurate;
    let mut bound_ns = Some(0.0);
    for edge in edges {
        bound_ns = match (bound_ns, edge.bound_ns) {
            (Some(total), Some(step)) => Some(total + transform.slope().to_f64().abs() * step),
            _ => None,
        };
        if edge.quality.formula_rank() < quality.formula_rank() {
            quality = edge.quality;
        }
        // A composition leaving the usable range (slopes multiplying past 2^54) is no
        // relation: the host is left unplaced.
        transform = transform.after(&edge.label)?;
    }
    Some(Placement {
        transform,
        quality,
        bound_ns,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decimal::Decimal;

    fn link(reference: usize, other: usize, slope: &str, offset: &str) -> Link {
        let to_reference =
            ClockTransform::new(slope.parse().unwrap(), offset.parse().unwrap()).unwrap();
        Link {
            reference,
            other,
            to_reference,
            quality: SyncQuality::Accurate,
            bound_at_reference: Some(10.0),
            bound_at_other: Some(10.0),
        }
    }

    #[test]
    fn fewest_hops_and_first_added_edge_win() {
        // 0–1, 1–2, 0–2 (direct), 2–3: host 2 is reached directly, host 3 through 2.
        let links = [
            link(0, 1, "1", "100"),
            link(1, 2, "1", "1000"),
            link(0, 2, "1", "5000"),
            link(2, 3, "2", "0"),
        ];
        let placed = place_hosts(5, 0, &links);
        let path = |h: usize| placed[h].as_ref().map(|p| p.path.clone());
        assert_eq!(path(0), Some(vec![0]));
        assert_eq!(path(2), Some(vec![0, 2]));
        assert_eq!(path(3), Some(vec![0, 2, 3]));
        assert!(placed[4].is_none());
        let to_root = |h: usize, t: i64| placed[h].as_ref().unwrap().transform.apply(t);
        assert_eq!(to_root(2, 0), 5000);
        assert_eq!(to_root(3, 7), 5014);
        // Bounds add up, scaled by the slope between: 10 + 1 × 10.
        assert_eq!(placed[3].as_ref().unwrap().bound_ns, Some(20.0));
        assert_eq!(placed[0].as_ref().unwrap().bound_ns, Some(0.0));

        // From host 3 as root, the edges are walked backwards through inverses.
        let placed = place_hosts(4, 3, &links);
        let zero = placed[0].as_ref().unwrap();
        assert_eq!(zero.path, vec![3, 2, 0]);
        assert_eq!(zero.transform.apply(5014), 7);
        assert_eq!(zero.transform.slope(), "0.5".parse::<Decimal>().unwrap());
    }

    #[test]
    fn worst_link_sets_the_quality() {
        let mut links = vec![link(0, 1, "1", "1"), link(1, 2, "1", "1")];
        links[1].quality = SyncQuality::Approximate;
        links[1].bound_at_reference = None;
        links[1].bound_at_other = None;
        let placed = place_hosts(3, 0, &links);
        let two = placed[2].as_ref().unwrap();
        assert_eq!(
            (two.quality, two.bound_ns),
            (SyncQuality::Approximate, None)
        );
        links[0].quality = SyncQuality::Fail;
        let placed = place_hosts(3, 0, &links);
        assert_eq!(placed[2].as_ref().unwrap().quality, SyncQuality::Fail);
        assert_eq!(placed[1].as_ref().unwrap().quality, SyncQuality::Fail);
    }

    #[test]
    fn root_is_requested_or_first_linked() {
        let links = [link(2, 1, "1", "0")];
        let by_name = [0, 1, 2];
        assert_eq!(choose_root(None, &links, &by_name), Some(1));
        assert_eq!(choose_root(Some(0), &links, &by_name), Some(0));
        assert_eq!(choose_root(None, &[], &by_name), Some(0));
        assert_eq!(choose_root(None, &[], &[]), None);
    }
}
