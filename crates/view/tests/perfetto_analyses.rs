//! The Perfetto export of what the analyses found, decoded and checked against the story's
//! model: each wake-up into or out of a VM's thread is a flow from an instant on the waker's
//! track to one on the woken thread's; the steal, memory and runnable counters are the model's
//! series; the phases are slices on their VM's process track.

use std::collections::HashMap;

use virtflow_graph::LinkKind;
use virtflow_model::Model;
use virtflow_view::perfetto::{self, proto};
use virtflow_view::synthetic::{self, story};

use proto::track_event::Type;

struct Decoded {
    descriptors: HashMap<u64, proto::TrackDescriptor>,
    /// By track: (timestamp, event), in order.
    events: HashMap<u64, Vec<(i64, proto::TrackEvent)>>,
}

fn decode(model: &Model) -> Decoded {
    let trace = perfetto::decode(&perfetto::encode(model)).expect("a Perfetto trace");
    let mut descriptors = HashMap::new();
    let mut events: HashMap<u64, Vec<(i64, proto::TrackEvent)>> = HashMap::new();
    let mut last = 0;
    for p in trace.packet {
        if let Some(d) = p.track_descriptor {
            assert!(descriptors.insert(d.uuid(), d).is_none(), "a uuid reused");
        }
        if let Some(e) = p.track_event {
            assert!(
                descriptors.contains_key(&e.track_uuid()),
                "an undeclared track"
            );
            assert!(p.timestamp.unwrap() >= last, "packets out of time order");
            last = p.timestamp.unwrap();
            events
                .entry(e.track_uuid())
                .or_default()
                .push((last as i64, e));
        }
    }
    Decoded {
        descriptors,
        events,
    }
}

impl Decoded {
    /// The track of thread `tid`: a thread track, or a host thread's track named `comm (tid)`.
    fn thread(&self, tid: u32) -> u64 {
        let suffix = format!("({tid})");
        self.descriptors
            .values()
            .find(|d| {
                d.thread.as_ref().is_some_and(|t| t.tid() == tid as i32)
                    || (d.thread.is_none() && d.name().ends_with(&suffix))
            })
            .unwrap_or_else(|| panic!("no track for thread {tid}"))
            .uuid()
    }

    fn named(&self, name: &str) -> &proto::TrackDescriptor {
        self.descriptors
            .values()
            .find(|d| d.name() == name)
            .unwrap_or_else(|| panic!("no track named {name:?}"))
    }

    fn counter_values(&self, name: &str) -> Vec<(i64, f64)> {
        let d = self.named(name);
        assert!(d.counter.is_some(), "{name} is not a counter track");
        self.events[&d.uuid()]
            .iter()
            .map(|(t, e)| {
                assert_eq!(e.r#type(), Type::Counter);
                (*t, e.double_counter_value())
            })
            .collect()
    }
}

#[test]
fn wakeups_are_flows_between_the_threads_tracks() {
    let model = synthetic::story();
    let d = decode(&model);
    let eg = model.graph.as_ref().unwrap();
    // Every flow's start and end, by id: (track, time).
    let mut starts: HashMap<u64, (u64, i64)> = HashMap::new();
    let mut ends: HashMap<u64, (u64, i64)> = HashMap::new();
    for (track, evs) in &d.events {
        for (t, e) in evs {
            for id in &e.flow_ids {
                assert_eq!(e.r#type(), Type::Instant);
                assert!(
                    starts.insert(*id, (*track, *t)).is_none(),
                    "flow {id} starts twice"
                );
            }
            for id in &e.terminating_flow_ids {
                assert_eq!(e.r#type(), Type::Instant);
                assert!(
                    ends.insert(*id, (*track, *t)).is_none(),
                    "flow {id} ends twice"
                );
            }
        }
    }
    let links: Vec<_> = eg
        .graph
        .links()
        .filter(|l| l.kind == LinkKind::Wakeup)
        .collect();
    assert_eq!(links.len(), 4, "the story's four wake-ups");
    assert_eq!(starts.len(), links.len());
    assert_eq!(ends.len(), links.len());
    for l in links {
        let tid = |w: virtflow_graph::WorkerId| eg.workers[w.index()].tid;
        let (from, to) = (
            d.thread(tid(l.source.worker)),
            d.thread(tid(l.target.worker)),
        );
        let id = starts
            .iter()
            .find(|(_, &(track, t))| track == from && t == l.source.time)
            .map(|(id, _)| *id)
            .unwrap_or_else(|| {
                panic!(
                    "no flow leaves {} at {}",
                    tid(l.source.worker),
                    l.source.time
                )
            });
        assert_eq!(
            ends[&id],
            (to, l.target.time),
            "flow {id} from thread {} ends on thread {}'s track",
            tid(l.source.worker),
            tid(l.target.worker)
        );
    }
    // The waker's and the woken thread's instants say who.
    let vhost = d.thread(story::VHOST);
    let names: Vec<&str> = d.events[&vhost]
        .iter()
        .filter(|(_, e)| e.r#type() == Type::Instant)
        .map(|(_, e)| e.name())
        .collect();
    assert_eq!(
        names,
        ["woken by host thread sshd (800)", "wakes web vCPU 0"]
    );
    // vhost's track is a thread of web's process, sshd's a track under the host's.
    let vhost_d = &d.descriptors[&vhost];
    let web = d.named("web");
    assert_eq!(vhost_d.parent_uuid(), web.uuid());
    assert_eq!(vhost_d.thread.as_ref().unwrap().pid(), story::WEB as i32);
    let sshd = &d.descriptors[&d.thread(story::SSHD)];
    assert_eq!(
        sshd.parent_uuid(),
        d.named("host synthetic-host (2 pCPUs)").uuid()
    );
    // A helper's track carries its own states: vhost ran 0–5 ms, then was blocked.
    let first = &d.events[&vhost][0];
    assert_eq!((first.0, first.1.name()), (story::at(0), "running"));
}

#[test]
fn counters_are_the_models_series_and_phases_are_slices() {
    let model = synthetic::story();
    let d = decode(&model);
    let b = model.hosts[0].buckets.unwrap();
    for vm in &model.vms {
        let steal = d.counter_values(&format!("{} steal (vCPUs)", vm.name));
        let want: Vec<(i64, f64)> = vm
            .overcommit
            .steal
            .iter()
            .enumerate()
            .map(|(i, &s)| (b.start_of(i), s as f64 / b.step_ns as f64))
            .collect();
        assert_eq!(steal, want, "{} steal", vm.name);
        // Held memory: nothing at the start, then the running sum at each bucket's end.
        let held = d.counter_values(&format!("{} memory held", vm.name));
        let mut sum = 0.0;
        let mut want = vec![(b.start_ns, 0.0)];
        for (i, (a, f)) in vm.memory.allocated.iter().zip(&vm.memory.freed).enumerate() {
            sum += *a as f64 - *f as f64;
            want.push((b.start_of(i + 1), sum));
        }
        assert_eq!(held, want, "{} memory", vm.name);
        let unit = d
            .named(&format!("{} memory held", vm.name))
            .counter
            .as_ref()
            .unwrap()
            .unit();
        assert_eq!(unit, proto::counter_descriptor::Unit::SizeBytes);

        // Phases: begin/end pairs on the VM's process track.
        let process = d.named(&vm.name);
        let slices: Vec<(i64, i64, String)> = d.events[&process.uuid()]
            .chunks(2)
            .map(|pair| {
                assert_eq!(pair[0].1.r#type(), Type::SliceBegin);
                assert_eq!(pair[1].1.r#type(), Type::SliceEnd);
                (pair[0].0, pair[1].0, pair[0].1.name().to_string())
            })
            .collect();
        let want: Vec<(i64, i64, String)> = vm
            .phases
            .iter()
            .map(|p| (p.start, p.end, p.name.clone()))
            .collect();
        assert_eq!(slices, want, "{} phases", vm.name);
    }
    let runnable = d.counter_values("synthetic-host runnable vCPUs");
    let want: Vec<(i64, f64)> = model.hosts[0]
        .overcommit
        .runnable
        .iter()
        .enumerate()
        .map(|(i, &r)| (b.start_of(i), r as f64 / b.step_ns as f64))
        .collect();
    assert_eq!(runnable, want);
    // The story's first millisecond: all four vCPUs runnable on two pCPUs.
    assert_eq!(runnable[0].1, 4.0);
}

#[test]
fn without_graph_series_or_page_events_nothing_new_is_written() {
    // The export of a model that has none of it is what it was: no flow, no host track, no
    // memory counter, no phase slice.
    let model = synthetic::model(2, 2, 500, 3);
    let d = decode(&model);
    assert!(d
        .events
        .values()
        .flatten()
        .all(|(_, e)| e.flow_ids.is_empty() && e.terminating_flow_ids.is_empty()));
    assert!(d
        .descriptors
        .values()
        .all(|t| !t.name().starts_with("host ")
            && !t.name().ends_with("memory held")
            && !t.name().ends_with("steal (vCPUs)")));
    let stats = perfetto::write(&model, &mut Vec::new()).unwrap();
    assert_eq!(stats.flows, 0);
}
