//! The viewport index against brute force over the model's intervals.

use virtflow_model::Model;
use virtflow_view::states::{StateKey, STATE_KEYS};
use virtflow_view::timeline::{RowKind, MAX_WIDTH};
use virtflow_view::{synthetic, TimelineIndex};

fn index_of(model: &Model) -> TimelineIndex {
    TimelineIndex::take_from(&mut model.clone())
}

/// Time per state of one vCPU within `[a, b)` (absolute), summing clipped intervals.
fn brute_force(model: &Model, vm: usize, vcpu: usize, a: i64, b: i64) -> [u64; STATE_KEYS] {
    let mut out = [0; STATE_KEYS];
    for iv in &model.vms[vm].vcpus[vcpu].intervals {
        let (s, e) = (iv.start.max(a), iv.end.min(b));
        if e > s {
            out[StateKey::of(&iv.state) as usize] += (e - s) as u64;
        }
    }
    out
}

#[test]
fn selection_totals_equal_brute_force() {
    // 4096 intervals: a whole number of blocks, the edge where the last block closes.
    for n in [4_096, 5_000] {
        selection_totals_equal_brute_force_for(n);
    }
}

fn selection_totals_equal_brute_force_for(n: usize) {
    let model = synthetic::model(2, 3, n, 7);
    let index = index_of(&model);
    let o = index.origin;
    let span = index.end - index.start;
    for (a, b) in [
        (0, span),
        (span / 7, span / 3),
        (span / 2, span / 2 + 12_345),
        (span / 5, span / 5),
    ] {
        let sel = index.selection(a, b);
        for (row, totals) in index.rows.iter().zip(&sel) {
            match &row.kind {
                RowKind::Vcpu { vm, vcpu, .. } => {
                    let want = brute_force(&model, *vm, *vcpu as usize, a + o, b + o);
                    assert_eq!(totals, &want, "row {} window [{a}, {b})", row.label);
                }
                RowKind::Vm { vm, .. } => {
                    let mut want = [0; STATE_KEYS];
                    for c in 0..model.vms[*vm].vcpus.len() {
                        let one = brute_force(&model, *vm, c, a + o, b + o);
                        for k in 0..STATE_KEYS {
                            want[k] += one[k];
                        }
                    }
                    assert_eq!(
                        totals,
                        &want,
                        "VM row {} window [{a}, {b}) n {}",
                        row.label,
                        model.vms[*vm].vcpus[0].intervals.len()
                    );
                }
                // The synthetic model has no guest processes nor nested guests.
                RowKind::Process { .. } | RowKind::Nested { .. } => {
                    panic!("unexpected row {}", row.label)
                }
            }
        }
    }
}

#[test]
fn whole_trace_view_merges_sub_pixel_intervals_and_stays_bounded() {
    let model = synthetic::model(1, 2, 50_000, 3);
    let index = index_of(&model);
    let width = 800;
    let vp = index.viewport(index.start, index.end, width, 0, usize::MAX);
    let ns_per_px = (index.end - index.start) as f64 / width as f64;
    for (row, segs) in index.rows.iter().zip(&vp.rows) {
        assert!(
            segs.len() <= 2 * width as usize + 2,
            "{}: {} segments for {width} px",
            row.label,
            segs.len()
        );
        assert!(!segs.is_empty(), "{} drew nothing", row.label);
        for w in segs.windows(2) {
            assert!(
                w[0].end() <= w[1].start(),
                "segments overlap in {}",
                row.label
            );
        }
        for s in segs {
            // Nothing narrower than a pixel is sent unmerged.
            if !s.is_merged() {
                assert!(
                    (s.end() - s.start()) as f64 >= ns_per_px,
                    "{s:?} is sub-pixel"
                );
            }
        }
        if let RowKind::Vcpu { .. } = row.kind {
            let merged: u64 = segs.iter().filter(|s| s.is_merged()).map(|s| s.4).sum();
            assert!(
                merged > 1000,
                "{}: only {merged} intervals merged",
                row.label
            );
        }
    }
}

#[test]
fn deep_zoom_sends_the_intervals_themselves() {
    let model = synthetic::model(1, 1, 2_000, 11);
    let index = index_of(&model);
    let o = index.origin;
    let ivs = &model.vms[0].vcpus[0].intervals;
    // A window of ten intervals at a width where each is many pixels wide.
    let (a, b) = (ivs[100].start - o, ivs[110].end - o);
    let vp = index.viewport(a, b, MAX_WIDTH, 1, 1);
    let segs = &vp.rows[0];
    let want: Vec<(i64, i64, StateKey)> = ivs[100..=110]
        .iter()
        .filter(|iv| (iv.end - iv.start) as f64 >= (b - a) as f64 / MAX_WIDTH as f64)
        .map(|iv| (iv.start - o, iv.end - o, StateKey::of(&iv.state)))
        .collect();
    let exact: Vec<(i64, i64, StateKey)> = segs
        .iter()
        .filter(|s| !s.is_merged())
        .map(|s| (s.start(), s.end(), s.key()))
        .collect();
    assert_eq!(exact, want);
    for s in segs.iter().filter(|s| !s.is_merged()) {
        let label = &index.details[s.3 as usize].label;
        assert!(!label.is_empty());
    }
}

#[test]
fn overlapping_intervals_are_clipped_not_double_counted() {
    let mut model = synthetic::model(1, 1, 10, 5);
    let ivs = &mut model.vms[0].vcpus[0].intervals;
    let s = ivs[3].start;
    ivs[2].end = s + 100; // overlaps the next interval by 100 ns
    let index = index_of(&model);
    assert_eq!(index.repaired, 1);
    let total: u64 = index.selection(index.start, index.end)[1].iter().sum();
    assert_eq!(total, (index.end - index.start) as u64);
}

#[test]
fn vm_row_shows_what_its_vcpus_show() {
    // Two identical vCPUs: wherever a vCPU segment covers a whole pixel, the VM row must
    // show that segment's state there.
    let mut model = synthetic::model(1, 1, 20_000, 23);
    let mut twin = model.vms[0].vcpus[0].clone();
    twin.vcpu = 1;
    twin.tid += 1;
    model.vms[0].vcpus.push(twin);
    let index = index_of(&model);
    for zoom in [1, 10, 1000] {
        let span = (index.end - index.start) / zoom;
        let (start, end, width) = (
            index.start + span / 3,
            index.start + span / 3 + span,
            700u32,
        );
        let vp = index.viewport(start, end, width, 0, 3);
        let (vm_row, vcpu_row) = (&vp.rows[0], &vp.rows[1]);
        let bound = |p: i64| start + ((end - start) as i128 * p as i128 / width as i128) as i64;
        let mut checked = 0;
        for p in 0..width as i64 {
            let (a, b) = (bound(p), bound(p + 1));
            let Some(v) = vcpu_row.iter().find(|s| s.start() <= a && s.end() >= b) else {
                continue;
            };
            let vm = vm_row
                .iter()
                .find(|s| s.start() <= a && s.end() >= b)
                .unwrap_or_else(|| panic!("VM row has no segment over pixel {p}"));
            assert_eq!(vm.key(), v.key(), "pixel {p} at zoom {zoom}");
            checked += 1;
        }
        assert!(checked > 50, "only {checked} pixels checked at zoom {zoom}");
    }
}
