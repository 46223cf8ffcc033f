//! `virtflow doctor` tells the truth about the machine running the tests: checked against
//! `/proc/self/mounts` and the tracefs `events/kvm` folder read directly.

mod record_common;

use std::path::PathBuf;

use record_common::*;

/// tracefs's mount point according to the kernel, mounting it when needed and allowed.
fn tracefs_dir() -> Option<PathBuf> {
    // The standard place when tracefs is mounted there (it may also appear under debugfs).
    let mounted = |mounts: &str| {
        let dirs: Vec<PathBuf> = mounts
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.get(2) == Some(&"tracefs")).then(|| PathBuf::from(f[1]))
            })
            .collect();
        dirs.iter()
            .find(|d| d.as_os_str() == "/sys/kernel/tracing")
            .or(dirs.first())
            .cloned()
    };
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    if let Some(dir) = mounted(&mounts) {
        return Some(dir);
    }
    // Not mounted: the doctor must say so and give the command; then mount it, as
    // `virtflow record` would.
    let out = run(virtflow().arg("doctor"));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("not mounted") && stdout.contains("mount -t tracefs nodev"),
        "{stdout}"
    );
    host_for(virtflow_record::Backend::Tracefs)?;
    let m = run(std::process::Command::new("mount").args([
        "-t",
        "tracefs",
        "nodev",
        "/sys/kernel/tracing",
    ]));
    assert!(m.status.success(), "mount tracefs: {}", text(&m.stderr));
    mounted(&std::fs::read_to_string("/proc/self/mounts").unwrap())
}

#[test]
fn doctor_reports_this_host_truthfully() {
    let Some(tracefs) = tracefs_dir() else {
        return;
    };
    let out = run(virtflow().args(["doctor", "--json"]));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("doctor --json: {e}\n{}", text(&out.stdout)));
    let check = |name: &str| {
        json["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no `{name}` check in {json}"))
            .clone()
    };

    // tracefs: where the kernel says it is.
    let t = check("tracefs");
    assert_eq!(t["status"], "ok");
    assert_eq!(
        t["detail"],
        format!("mounted at {}", tracefs.display()),
        "{t}"
    );

    // KVM tracepoints: exactly the folders of events/kvm.
    let mut on_disk: Vec<String> = std::fs::read_dir(tracefs.join("events/kvm"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    on_disk.sort();
    let reported: Vec<String> = json["kvm_tracepoints"]
        .as_array()
        .expect("tracefs is mounted: the list is known")
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(reported, on_disk);
    let kvm = check("kvm tracepoints");
    let essentials = ["kvm_entry", "kvm_exit"]
        .iter()
        .all(|e| on_disk.iter().any(|d| d == e));
    if essentials {
        assert_eq!(kvm["status"], "ok", "{kvm}");
        assert!(
            kvm["detail"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{} present", on_disk.len())),
            "{kvm}"
        );
    } else {
        assert_eq!(kvm["status"], "missing", "{kvm}");
        assert!(kvm["fix"].as_str().unwrap().contains("modprobe"), "{kvm}");
    }
    assert_eq!(
        check("/dev/kvm")["status"],
        if std::path::Path::new("/dev/kvm").exists() {
            "ok"
        } else {
            "warn"
        }
    );

    // Exit status 0 exactly when recording is possible, and the text agrees.
    let can_record = json["can_record"].as_bool().unwrap();
    assert_eq!(out.status.success(), can_record);
    let plain = run(virtflow().arg("doctor"));
    let plain_text = text(&plain.stdout);
    assert_eq!(plain.status.success(), can_record);
    assert!(
        plain_text.contains(&format!("{} present", on_disk.len())) || !essentials,
        "{plain_text}"
    );
    if can_record {
        assert!(plain_text.contains("This host can record"), "{plain_text}");
        assert!(json["backend"].is_string());
    } else {
        // Every blocking line carries its fix or explains itself.
        assert!(plain_text.contains("MISS"), "{plain_text}");
    }
    // Tools: each present one is reported by path, each absent one with its install command.
    for (name, check_name) in [
        ("perf", "perf"),
        ("trace-cmd", "trace-cmd"),
        ("lttng", "lttng"),
    ] {
        let c = check(check_name);
        match virtflow_record::host::which(name) {
            Some(p) => assert!(
                c["detail"]
                    .as_str()
                    .unwrap()
                    .starts_with(&p.display().to_string()),
                "{c}"
            ),
            None => assert!(c["fix"].as_str().unwrap().contains("install"), "{c}"),
        }
    }
}
