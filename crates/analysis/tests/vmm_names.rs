//! VMs named by their VMM's command line: markers in the trace (tracefs text, `trace-cmd
//! report` text, the `.dat`'s `print` event) and command lines given from outside (the
//! recorder's sidecar file), on small hand-written traces and on a real host trace. The
//! expected names are derived by hand from QEMU's option syntax (`-name
//! [guest=]NAME[,process=P]`, `,,` a literal comma, `-uuid U`).

use std::path::Path;

use virtflow_analysis::{analyze, Options, VmmCommandLine};
use virtflow_ftrace::{DatSource, TextSource};
use virtflow_model::Model;
use virtflow_trace::{Value, VecEvent, VecSource};

const UUID: &str = "c7a5fdbd-edaf-9455-926a-d65c16db1809";

fn argv(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// libvirt's command line for the domain `foo=1,bar=2` (its test `name-escape`, abridged but
/// long enough that the recorder writes it in several parts).
fn libvirt_argv() -> Vec<String> {
    let mut a = argv(&[
        "/usr/bin/qemu-system-x86_64",
        "-name",
        "guest=foo=1,,bar=2,debug-threads=on",
        "-S",
        "-object",
        r#"{"qom-type":"secret","id":"masterKey0","format":"raw","file":"/var/lib/libvirt/qemu/domain--1-foo=1,bar=2/master-key.aes"}"#,
        "-machine",
        "pc,usb=off,dump-guest-core=off,memory-backend=pc.ram,acpi=off",
        "-uuid",
        "c7a5fdbd-edaf-9455-926a-d65c16db1809",
    ]);
    for i in 0..20 {
        a.push("-device".into());
        a.push(format!(
            r#"{{"driver":"virtio-blk-pci","bus":"pci.0","addr":"0x{i:x}","drive":"libvirt-{i}-format","id":"virtio-disk{i}"}}"#
        ));
    }
    a
}

fn run_text(text: &str, options: &Options) -> Model {
    let mut src = TextSource::from_bytes(Path::new("scenario.txt"), text.as_bytes().to_vec())
        .expect("text trace");
    analyze(&mut src, options).expect("analysis")
}

fn vm(model: &Model, pid: u32) -> &virtflow_model::Vm {
    model
        .vms
        .iter()
        .find(|v| v.pid == pid)
        .unwrap_or_else(|| panic!("no VM {pid} in {:#?}", model.vms))
}

/// One VM's events in tracefs text with the thread-group column (`options/record-tgid`): its
/// main thread `main` switches to its vCPU thread `pid + 1` on `cpu`, which enters the guest
/// and exits on HLT.
fn vm_lines(main: &str, pid: u32, cpu: u32, t: u32) -> String {
    let vcpu = pid + 1;
    format!(
        "{main:>16}-{pid:<7} ({pid:>7}) [{cpu:03}] d..2. 100.{t:06}: sched_switch: prev_comm={main} \
prev_pid={pid} prev_prio=120 prev_state=S ==> next_comm=CPU 0/KVM next_pid={vcpu} next_prio=120\n\
       CPU 0/KVM-{vcpu:<7} ({pid:>7}) [{cpu:03}] d..1. 100.{t1:06}: kvm_entry: vcpu 0, rip 0xffffffff81000000\n\
       CPU 0/KVM-{vcpu:<7} ({pid:>7}) [{cpu:03}] d..1. 100.{t2:06}: kvm_exit: vcpu 0 reason HLT rip \
0xffffffff81000010 info1 0x0000000000000000 info2 0x0000000000000000 intr_info 0x00000000 \
error_code 0x00000000\n",
        t1 = t + 100,
        t2 = t + 400,
    )
}

/// A tracefs `trace` text: markers written by the recorder (pid 900) for VMs 1200 (one line)
/// and 1300 (several parts, as `virtflow_record` cuts them), and for 1400, a paused QEMU whose
/// vCPU never ran; a VM 1500 whose QEMU was started with `process=qemu:db1` and no command
/// line is known for.
fn tracefs_text() -> String {
    let marker = |line: &str, t: u32| {
        format!("           <...>-900     (    900) [001] ..... 100.{t:06}: tracing_mark_write: {line}\n")
    };
    let mut text = String::from(
        "# tracer: nop\n#\n#           TASK-PID     TGID     CPU#  |||||  TIMESTAMP  FUNCTION\n\
         #              | |         |         |   |||||     |         |\n",
    );
    text += &marker(
        &format!(
            r#"virtflow-vmm pid=1200 argv=["/usr/bin/qemu-system-x86_64","-name","guest=web1,debug-threads=on","-uuid","{UUID}"]"#
        ),
        10,
    );
    let parts = virtflow_record::vmm::marker_lines(1300, &libvirt_argv());
    assert!(
        parts.len() > 1,
        "the libvirt command line is meant to need parts"
    );
    // Parts out of order do no harm.
    for (i, p) in parts.iter().enumerate().rev() {
        text += &marker(p, 20 + i as u32);
    }
    text += &marker(
        r#"virtflow-vmm pid=1400 argv=["qemu-system-x86_64","-name","guest=paused","-S"]"#,
        40,
    );
    text += &vm_lines("qemu-system-x86", 1200, 0, 100);
    text += &vm_lines("qemu-system-x86", 1300, 1, 1000);
    text += &vm_lines("qemu:db1", 1500, 0, 2000);
    text
}

#[test]
fn tracefs_text_markers_name_the_vms() {
    let m = run_text(&tracefs_text(), &Options::default());
    assert_eq!(
        m.vms.iter().map(|v| v.pid).collect::<Vec<_>>(),
        vec![1200, 1300, 1500]
    );
    let web1 = vm(&m, 1200);
    assert_eq!(web1.guest_name.as_deref(), Some("web1"));
    assert_eq!(web1.uuid.as_deref(), Some(UUID));
    assert_eq!(web1.name, "web1 (qemu-system-x86/1200)");
    // `guest=foo=1,,bar=2,debug-threads=on`: the value runs to the first single comma.
    let libvirt = vm(&m, 1300);
    assert_eq!(libvirt.guest_name.as_deref(), Some("foo=1,bar=2"));
    assert_eq!(libvirt.uuid.as_deref(), Some(UUID));
    assert_eq!(libvirt.name, "foo=1,bar=2 (qemu-system-x86/1300)");
    // No command line: the comm QEMU's `process=` set.
    let db = vm(&m, 1500);
    assert_eq!((db.guest_name.as_deref(), db.uuid.as_deref()), (None, None));
    assert_eq!(db.name, "qemu:db1/1500");
    assert!(
        m.notes.iter().any(|n| n.ends_with(
            "VMM processes known by their command line but with no vCPU entering a guest in the \
             trace: pid 1400 (paused)"
        )),
        "{:?}",
        m.notes
    );
    // The JSON carries both fields; the VM without them has neither key.
    let json = serde_json::to_value(&m).unwrap();
    assert_eq!(json["vms"][0]["guest_name"], "web1");
    assert_eq!(json["vms"][0]["uuid"], UUID);
    assert!(json["vms"][2].get("guest_name").is_none());
    assert!(json["vms"][2].get("uuid").is_none());
}

#[test]
fn markers_leave_the_states_as_they_were() {
    // The same trace with the markers' text made another tool's: the same events at the same
    // times, so everything but the names and the notes must be equal.
    let text = tracefs_text();
    let other = text.replace(
        "tracing_mark_write: virtflow-vmm",
        "tracing_mark_write: other-tool",
    );
    assert_ne!(text, other);
    let opts = Options {
        intervals: true,
        ..Options::default()
    };
    let (mut named, mut plain) = (run_text(&text, &opts), run_text(&other, &opts));
    assert!(plain
        .vms
        .iter()
        .all(|v| v.guest_name.is_none() && v.uuid.is_none()));
    assert_eq!(
        named.vms.iter().filter(|v| v.guest_name.is_some()).count(),
        2
    );
    for (n, p) in named.vms.iter_mut().zip(&plain.vms) {
        if n.guest_name.is_some() {
            assert_eq!(
                n.name,
                format!("{} ({})", n.guest_name.as_deref().unwrap(), p.name)
            );
        }
        n.name = p.name.clone();
        n.guest_name = None;
        n.uuid = None;
        // The verdicts quote the VMs' names.
        n.overcommit.verdict = p.overcommit.verdict.clone();
    }
    // So do the preemption matrix and the host's verdict.
    named.hosts[0].overcommit.matrix = plain.hosts[0].overcommit.matrix.clone();
    named.hosts[0].overcommit.verdict = plain.hosts[0].overcommit.verdict.clone();
    named.notes.clear();
    plain.notes.clear();
    assert_eq!(named, plain);
}

#[test]
fn trace_cmd_report_text_markers_name_the_vm() {
    // `trace-cmd report` prints the `print` event as `print: tracing_mark_write: <buf>`, and the
    // KVM and sched events through its plugins; it has no thread-group column.
    let text = format!(
        "cpus=2\n\
           <...>-900   [001]   100.000010: print:                tracing_mark_write: virtflow-vmm pid=126 argv=[\"/usr/bin/kvm\",\"-id\",\"100\",\"-name\",\"lab\\u0020vm,debug-threads=on\",\"-smbios\",\"type=1,uuid={UUID}\"]\n\
 qemu-system-x86-126   [000]   100.000100: sched_switch:         qemu-system-x86:126 [120] S ==> CPU 0/KVM:139 [120]\n\
       CPU 0/KVM-139   [000]   100.000200: kvm_entry:            vcpu 0 rip 0xffffffffa90592eb\n\
       CPU 0/KVM-139   [000]   100.000500: kvm_exit:             reason EXIT_HLT rip 0xffffffffa9c592ea info 0 0\n"
    );
    let m = run_text(&text, &Options::default());
    assert_eq!(m.vms.len(), 1, "{:#?}", m.vms);
    let v = &m.vms[0];
    assert_eq!(v.pid, 126);
    assert_eq!(v.guest_name.as_deref(), Some("lab vm"));
    assert_eq!(v.uuid.as_deref(), Some(UUID));
    assert_eq!(v.name, "lab vm (qemu-system-x86/126)");
}

#[test]
fn a_print_event_as_the_dat_reader_gives_it_names_the_vm() {
    // trace-cmd's `.dat` has the ftrace `print` event with its `buf` as written, the newline
    // the kernel appends included.
    let ev = |ts: i64, name: &str, fields: Vec<(&str, Value<'static>)>| VecEvent {
        ts,
        cpu: 0,
        name: name.into(),
        fields: fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    };
    let s = |v: &str| Value::Str(v.to_string().into());
    let events = vec![
        ev(
            10,
            "ftrace:print",
            vec![
                ("common_pid", Value::UInt(900)),
                ("ip", Value::UInt(0xffff_ffff_8123_4567)),
                (
                    "buf",
                    s("virtflow-vmm pid=50 argv=[\"qemu-kvm\",\"-name\",\"guest=db,process=qemu:db\"]\n"),
                ),
            ],
        ),
        ev(
            20,
            "kvm:kvm_entry",
            vec![
                ("common_pid", Value::UInt(51)),
                ("common_tgid", Value::UInt(50)),
                ("vcpu_id", Value::UInt(0)),
            ],
        ),
        ev(
            30,
            "kvm:kvm_exit",
            vec![
                ("common_pid", Value::UInt(51)),
                ("common_tgid", Value::UInt(50)),
                ("exit_reason", Value::UInt(12)),
                ("isa", Value::UInt(1)),
            ],
        ),
    ];
    let m = analyze(&mut VecSource::new(events), &Options::default()).unwrap();
    assert_eq!(m.vms.len(), 1);
    assert_eq!(m.vms[0].pid, 50);
    assert_eq!(m.vms[0].guest_name.as_deref(), Some("db"));
    assert_eq!(m.vms[0].uuid, None);
    assert!(m.vms[0].name.starts_with("db ("), "{}", m.vms[0].name);
}

/// `shared/traces/kvm-lab/s1_idle`: one real VM, QEMU pid 126 (its `manifest.json`).
fn s1_idle() -> std::path::PathBuf {
    virtflow_testkit::shared_traces().join("kvm-lab/s1_idle/trace.dat")
}

#[test]
fn command_lines_given_from_outside_name_the_vm_of_a_real_trace() {
    let path = s1_idle();
    let plain = analyze(&mut DatSource::open(&path).unwrap(), &Options::default()).unwrap();
    assert_eq!(plain.vms.len(), 1);
    assert_eq!(plain.vms[0].pid, 126);
    let before = plain.vms[0].name.clone();
    assert_eq!(plain.vms[0].guest_name, None);

    // As the sidecar file gives them: the VM's own, and one of a process that is no VM.
    let options = Options {
        vmm_cmdlines: vec![
            VmmCommandLine {
                pid: 126,
                argv: argv(&[
                    "qemu-system-x86_64",
                    "-name",
                    "vm1,,idle,process=vm1",
                    "-uuid",
                    UUID,
                ]),
            },
            VmmCommandLine {
                pid: 4000,
                argv: argv(&["/usr/bin/firecracker", "--api-sock", "/run/fc.sock"]),
            },
        ],
        ..Options::default()
    };
    let named = analyze(&mut DatSource::open(&path).unwrap(), &options).unwrap();
    let v = &named.vms[0];
    assert_eq!(v.guest_name.as_deref(), Some("vm1,idle"));
    assert_eq!(v.uuid.as_deref(), Some(UUID));
    assert_eq!(v.name, format!("vm1,idle ({before})"));
    assert_eq!(v.vcpus, plain.vms[0].vcpus);
    assert!(
        named
            .notes
            .iter()
            .any(|n| n.ends_with(": pid 4000 (firecracker)")),
        "{:?}",
        named.notes
    );
}
