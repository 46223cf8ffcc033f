//! The overcommitment, memory and phase panels' data in `/api/meta`, against the model they
//! come from (the story's, and a trace without page events).

mod http;

use virtflow_view::analyses::MEMORY_UNTRACED;
use virtflow_view::synthetic;
use virtflow_view::synthetic::story::{at, MS, T0};

#[test]
fn meta_carries_each_vms_steal_memory_and_phases() {
    let model = synthetic::story();
    let addr = http::start(model.clone());
    let meta = http::json(addr, "/api/meta");
    let a = &meta["analyses"];
    assert!(a["memory_note"].is_null(), "the story has page events");
    assert_eq!(a["phases"], true);
    let host = &a["hosts"][0];
    assert_eq!(host["pcpus"], 2);
    assert_eq!(host["verdict"], model.hosts[0].overcommit.verdict.as_str());
    // Buckets of 1 ms from the story's start, relative to the viewer's origin.
    assert_eq!(host["series"]["start"], at(0) - T0);
    assert_eq!(host["series"]["step"], MS);
    let runnable: Vec<f64> = host["runnable"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let want: Vec<f64> = model.hosts[0]
        .overcommit
        .runnable
        .iter()
        .map(|&v| v as f64 / MS as f64)
        .collect();
    assert_eq!(runnable, want);
    // In its first 10 ms every vCPU of the story is runnable: four of them on two pCPUs.
    assert_eq!(runnable[0], 4.0);

    for (i, vm) in model.vms.iter().enumerate() {
        let v = &a["vms"][i];
        assert_eq!(v["name"], vm.name.as_str());
        assert_eq!(v["steal"]["verdict"], vm.overcommit.verdict.as_str());
        assert_eq!(v["steal"]["steal_ns"], vm.overcommit.steal_ns);
        let steal: Vec<f64> = v["steal"]["vcpus"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        let want: Vec<f64> = vm
            .overcommit
            .steal
            .iter()
            .map(|&s| s as f64 / MS as f64)
            .collect();
        assert_eq!(steal, want, "{}", vm.name);
        // Held memory: the running sum of what was allocated and freed per bucket.
        let held: Vec<i64> = v["memory"]["held"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_i64().unwrap())
            .collect();
        let mut sum = 0i64;
        let want: Vec<i64> = vm
            .memory
            .allocated
            .iter()
            .zip(&vm.memory.freed)
            .map(|(a, f)| {
                sum += *a as i64 - *f as i64;
                sum
            })
            .collect();
        assert_eq!(held, want, "{}", vm.name);
        let phases: Vec<(i64, i64, String)> = v["phases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["start"].as_i64().unwrap(),
                    p["end"].as_i64().unwrap(),
                    p["name"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let want: Vec<(i64, i64, String)> = vm
            .phases
            .iter()
            .map(|p| (p.start - T0, p.end - T0, p.name.clone()))
            .collect();
        assert_eq!(phases, want);
    }
    // The story's web VM: 2 MiB a millisecond for 20 ms, 1 MiB back in each of 60–70 ms.
    let web = &a["vms"][0]["memory"];
    assert_eq!(web["held"][19], 40 << 20);
    assert_eq!(web["held"][99], 30 << 20);
    assert_eq!(web["peak_bytes"], 40 << 20);
    // web vCPU 0's 3 ms ready and 10 ms preempted, batch's 4 + 2 + 1 ms.
    assert_eq!(a["vms"][0]["steal"]["steal_ns"], 13 * MS);
    assert_eq!(a["vms"][1]["steal"]["steal_ns"], 7 * MS);
}

#[test]
fn without_page_events_the_memory_panel_says_how_to_record_them() {
    let mut model = synthetic::story();
    for h in &mut model.hosts {
        h.memory = Default::default();
    }
    for vm in &mut model.vms {
        vm.memory = Default::default();
        vm.phases.clear();
    }
    let addr = http::start(model);
    let a = &http::json(addr, "/api/meta")["analyses"];
    assert_eq!(a["memory_note"], MEMORY_UNTRACED);
    assert!(MEMORY_UNTRACED.contains("virtflow record --memory"));
    assert!(a["vms"][0]["memory"].is_null());
    assert_eq!(a["phases"], false);
}
