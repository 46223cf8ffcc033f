//! Guest processes (CR3) and nested L2 guests: rows under their vCPU in the timeline index,
//! and child tracks of the vCPU's in the Perfetto export, checked against the model's spans.

use std::collections::HashMap;

use virtflow_model::{GuestProcess, Interval, Model, NestedGuest, Span, Vcpu, VcpuState, Vm};
use virtflow_view::perfetto::{self, proto};
use virtflow_view::timeline::RowKind;
use virtflow_view::{StateKey, TimelineIndex};

const CR3_A: u64 = 0x1_0a03_1000;
const CR3_B: u64 = 0x1_0a03_8000;
const VMCS: u64 = 0x1_2345_6000;

fn spans(v: &[(i64, i64)]) -> Vec<Span> {
    v.iter().map(|&(start, end)| Span { start, end }).collect()
}

/// One VM, one vCPU alternating guest and hypervisor every 100 ns from 1000; processes A and
/// B take turns, and the last two guest runs are in an L2 guest.
fn model() -> Model {
    let mut intervals = Vec::new();
    for k in 0..10 {
        let t = 1000 + k * 200;
        intervals.push(Interval {
            start: t,
            end: t + 100,
            state: VcpuState::Guest,
        });
        intervals.push(Interval {
            start: t + 100,
            end: t + 200,
            state: VcpuState::Unknown,
        });
    }
    let a = spans(&[(1000, 1100), (1400, 1500), (1800, 1900), (2200, 2300)]);
    let b = spans(&[(1200, 1300), (1600, 1700), (2000, 2100)]);
    let l2 = spans(&[(2400, 2500), (2600, 2700)]);
    Model {
        vms: vec![Vm {
            pid: 10,
            name: "vm".into(),
            vcpus: vec![Vcpu {
                vcpu: 0,
                tid: 11,
                intervals,
                processes: vec![
                    GuestProcess {
                        cr3: CR3_A,
                        guest_ns: 400,
                        intervals: a,
                        ..GuestProcess::default()
                    },
                    GuestProcess {
                        cr3: CR3_B,
                        guest_ns: 300,
                        intervals: b,
                        ..GuestProcess::default()
                    },
                ],
                l2_ns: 200,
                nested: vec![NestedGuest {
                    vmcs: VMCS,
                    entries: 2,
                    guest_ns: 200,
                    intervals: l2,
                }],
                ..Vcpu::default()
            }],
            ..Vm::default()
        }],
        ..Model::default()
    }
}

#[test]
fn process_and_l2_rows_follow_their_vcpu() {
    let mut m = model();
    let index = TimelineIndex::take_from(&mut m);
    let kinds: Vec<String> = index
        .rows
        .iter()
        .map(|r| match &r.kind {
            RowKind::Vm { .. } => "vm".to_string(),
            RowKind::Vcpu { .. } => "vcpu".to_string(),
            RowKind::Process { cr3, l2, .. } => format!("process {cr3:#x} {l2}"),
            RowKind::Nested { vmcs, .. } => format!("nested {vmcs:#x}"),
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            "vm".to_string(),
            "vcpu".to_string(),
            format!("process {CR3_A:#x} false"),
            format!("process {CR3_B:#x} false"),
            format!("nested {VMCS:#x}"),
        ]
    );
    // A window over [1150, 2050): A runs 1400-1500, 1800-1900 wholly: 200 ns; B runs
    // 1200-1300, 1600-1700 and 2000-2050: 250 ns; L2 nothing.
    let o = index.origin;
    let sel = index.selection(1150 - o, 2050 - o);
    let guest = StateKey::Guest as usize;
    assert_eq!(sel[2][guest], 200);
    assert_eq!(sel[3][guest], 250);
    assert_eq!(sel[4][guest], 0);
    // The VM row still sums only its vCPUs' states.
    assert_eq!(sel[0], sel[1]);
    // At full resolution each span is a segment whose detail names the process.
    let vp = index.viewport(0, 3000, 3000, 0, 10);
    let a_segments: Vec<(i64, i64)> = vp.rows[2].iter().map(|s| (s.0 + o, s.1 + o)).collect();
    assert_eq!(
        a_segments,
        vec![(1000, 1100), (1400, 1500), (1800, 1900), (2200, 2300)]
    );
    let detail = vp.rows[2][0].3 as usize;
    assert!(
        index.details[detail].label.contains(&format!("{CR3_A:#x}")),
        "{}",
        index.details[detail].label
    );
    assert_eq!(index.details[detail].key, StateKey::Guest);
    let l2_detail = vp.rows[4][0].3 as usize;
    assert!(index.details[l2_detail].label.contains("L2"));
}

#[test]
fn perfetto_has_a_child_track_per_process_and_l2_guest() {
    let m = model();
    let bytes = perfetto::encode(&m);
    let trace = perfetto::decode(&bytes).expect("the export decodes as a Perfetto Trace");
    let mut tracks: HashMap<u64, &proto::TrackDescriptor> = HashMap::new();
    for p in &trace.packet {
        if let Some(d) = &p.track_descriptor {
            tracks.insert(d.uuid(), d);
        }
    }
    let vcpu_track = tracks
        .values()
        .find(|d| d.thread.is_some())
        .expect("a vCPU thread track")
        .uuid();
    let mut slices: HashMap<u64, Vec<(u64, u64)>> = HashMap::new();
    let mut open: HashMap<u64, u64> = HashMap::new();
    for p in &trace.packet {
        let Some(e) = &p.track_event else { continue };
        match e.r#type() {
            proto::track_event::Type::SliceBegin => {
                open.insert(e.track_uuid(), p.timestamp());
            }
            proto::track_event::Type::SliceEnd => {
                let start = open.remove(&e.track_uuid()).expect("end after begin");
                slices
                    .entry(e.track_uuid())
                    .or_default()
                    .push((start, p.timestamp()));
            }
            _ => {}
        }
    }
    let by_name = |needle: &str| -> Vec<(u64, u64)> {
        let d = tracks
            .values()
            .find(|d| d.name().contains(needle))
            .unwrap_or_else(|| panic!("no track named like {needle}"));
        assert_eq!(
            d.parent_uuid,
            Some(vcpu_track),
            "{} is under its vCPU",
            d.name()
        );
        slices.get(&d.uuid()).cloned().unwrap_or_default()
    };
    let want = |v: &[Span]| -> Vec<(u64, u64)> {
        v.iter().map(|s| (s.start as u64, s.end as u64)).collect()
    };
    let v = &m.vms[0].vcpus[0];
    assert_eq!(
        by_name(&format!("cr3 {CR3_A:#x}")),
        want(&v.processes[0].intervals)
    );
    assert_eq!(
        by_name(&format!("cr3 {CR3_B:#x}")),
        want(&v.processes[1].intervals)
    );
    assert_eq!(
        by_name(&format!("vmcs {VMCS:#x}")),
        want(&v.nested[0].intervals)
    );
}
