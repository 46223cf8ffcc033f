//! The Perfetto export, decoded with the Perfetto message definitions, against the model.

use std::collections::HashMap;

use virtflow_view::perfetto::{self, proto};
use virtflow_view::{synthetic, Labeler};

#[test]
fn tracks_and_slices_match_the_model() {
    let model = synthetic::model(3, 2, 2_000, 21);
    let bytes = perfetto::encode(&model);
    let trace = perfetto::decode(&bytes).expect("the export decodes as a Perfetto Trace");
    let labeler = Labeler::new(&model);

    let mut descriptors: HashMap<u64, &proto::TrackDescriptor> = HashMap::new();
    for p in &trace.packet {
        assert_eq!(p.trusted_packet_sequence_id, Some(1));
        if let Some(d) = &p.track_descriptor {
            assert!(
                descriptors.insert(d.uuid(), d).is_none(),
                "uuid {} reused",
                d.uuid()
            );
        }
    }
    // Events per track, in order.
    let mut events: HashMap<u64, Vec<(u64, &proto::TrackEvent)>> = HashMap::new();
    let mut last_ts = 0;
    for p in &trace.packet {
        if let Some(e) = &p.track_event {
            assert!(
                descriptors.contains_key(&e.track_uuid()),
                "event on an undeclared track"
            );
            assert!(p.timestamp() >= last_ts, "packets out of time order");
            last_ts = p.timestamp();
            events
                .entry(e.track_uuid())
                .or_default()
                .push((p.timestamp(), e));
        }
    }

    for vm in &model.vms {
        let process = descriptors
            .values()
            .find(|d| d.process.as_ref().is_some_and(|p| p.pid() == vm.pid as i32))
            .unwrap_or_else(|| panic!("no process track for VM {}", vm.pid));
        assert_eq!(process.process.as_ref().unwrap().process_name(), vm.name);
        for v in &vm.vcpus {
            let thread = descriptors
                .values()
                .find(|d| d.thread.as_ref().is_some_and(|t| t.tid() == v.tid as i32))
                .unwrap_or_else(|| panic!("no thread track for vCPU tid {}", v.tid));
            assert_eq!(thread.thread.as_ref().unwrap().pid(), vm.pid as i32);
            assert_eq!(
                thread.parent_uuid(),
                process.uuid(),
                "vCPU not under its VM"
            );

            // Slices: begin/end pairs, one per interval, same times and names.
            let evs = &events[&thread.uuid()];
            assert_eq!(evs.len(), 2 * v.intervals.len());
            for (iv, pair) in v.intervals.iter().zip(evs.chunks(2)) {
                let (b, e) = (&pair[0], &pair[1]);
                assert_eq!(b.1.r#type(), proto::track_event::Type::SliceBegin);
                assert_eq!(e.1.r#type(), proto::track_event::Type::SliceEnd);
                assert_eq!(b.0 as i64, iv.start);
                assert_eq!(e.0 - b.0, (iv.end - iv.start) as u64, "slice duration");
                assert_eq!(b.1.name(), labeler.label(&iv.state));
            }

            // Counters: steal and interrupt rate under the thread, with values.
            let counters: Vec<_> = descriptors
                .values()
                .filter(|d| d.counter.is_some() && d.parent_uuid() == thread.uuid())
                .collect();
            assert_eq!(counters.len(), 2);
            let preempted: i64 = v
                .intervals
                .iter()
                .filter(|i| matches!(i.state, virtflow_model::VcpuState::Preempted { .. }))
                .map(|i| i.end - i.start)
                .sum();
            let steal = counters
                .iter()
                .find(|d| d.name().ends_with("steal %"))
                .unwrap();
            let samples = &events[&steal.uuid()];
            // The steal percentages, weighted by their windows, add up to the preempted time.
            assert!(samples.len() > 1, "one steal sample per window");
            let window = samples[1].0 - samples[0].0;
            let steal_ns: f64 = samples
                .iter()
                .map(|(_, e)| e.double_counter_value() / 100.0 * window as f64)
                .sum();
            assert!(
                (steal_ns - preempted as f64).abs() <= 1.0 + preempted as f64 * 1e-9,
                "steal {steal_ns} vs preempted {preempted}"
            );
        }
    }
}
