//! Naming VMs by their VMM's command line: QEMU's `-name` and `-uuid`.
//!
//! Kernel tracers keep a task's 16-byte name, never its command line. A command line reaches
//! the analysis in two ways:
//!
//! - in the trace: ftrace `print` events (tracefs `trace_marker`) in the form `virtflow record`
//!   writes — `virtflow-vmm pid=1234 argv=["/usr/bin/qemu-system-x86_64","-name","guest=web1"]`,
//!   or, for a long one, parts `virtflow-vmm pid=1234 part=1/3 argv=<piece>` whose pieces
//!   joined in order are the JSON array. Any tool may write such lines while tracing;
//! - from outside, through [`crate::Options::vmm_cmdlines`] (the recorder's sidecar file).
//!
//! [`qemu_names`] reads an argv as QEMU does (`-name`, `-uuid`); `name_vm` gives the
//! [`Vm`] of the same pid its `guest_name`, `uuid` and a `name` that leads with the guest's
//! name. Without a command line a VM keeps `<comm>/<pid>`, and the comm is the name QEMU's
//! `-name …,process=NAME` gave its main thread, when it was given one.

use rustc_hash::FxHashMap;
use virtflow_model::Vm;

/// How a marker line starts (after the `print` event's own prefix, if any).
pub const MARKER: &str = "virtflow-vmm";

/// A VMM process's command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmmCommandLine {
    pub pid: u32,
    pub argv: Vec<String>,
}

/// What a QEMU command line says about its guest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QemuNames {
    /// `-name NAME` or `-name guest=NAME,…` (the last one given, as QEMU merges them).
    pub guest: Option<String>,
    /// `-name …,process=PNAME`: the name QEMU gives its main thread (the comm a trace shows,
    /// cut to 15 bytes by the kernel).
    pub process: Option<String>,
    /// `-uuid U`, else the `uuid` of `-smbios type=1,…` (Proxmox gives only that one).
    pub uuid: Option<String>,
}

/// QEMU by its executable's name: `qemu-system-*`, `qemu-kvm` (RHEL), `kvm` (Debian, Proxmox),
/// `qemu`.
pub fn is_qemu(argv0: &str) -> bool {
    let base = argv0.rsplit('/').next().unwrap_or(argv0);
    base.starts_with("qemu-system-") || matches!(base, "qemu-kvm" | "kvm" | "qemu")
}

/// Reads `-name`, `-uuid` and `-smbios type=1,uuid=…` as QEMU does: `--opt` is `-opt`, an
/// option's argument is the next item, and the argument is in QEMU's option syntax
/// (`key=value` pairs separated by commas, `,,` a literal comma, the first value of `-name`
/// standing for `guest=` when it has no key). Another VMM's argv gives nothing.
pub fn qemu_names(argv: &[String]) -> QemuNames {
    let mut names = QemuNames::default();
    if !argv.first().is_some_and(|a| is_qemu(a)) {
        return names;
    }
    let mut smbios_uuid = None;
    let mut i = 1;
    while i < argv.len() {
        let opt = argv[i]
            .strip_prefix("--")
            .or_else(|| argv[i].strip_prefix('-'));
        let (Some(opt), Some(arg)) = (opt, argv.get(i + 1)) else {
            i += 1;
            continue;
        };
        match opt {
            "name" => {
                for (key, value) in qemu_opts(arg, Some("guest")) {
                    match key {
                        "guest" => names.guest = Some(value),
                        "process" => names.process = Some(value),
                        _ => {}
                    }
                }
            }
            "uuid" if is_uuid(arg) => names.uuid = Some(arg.clone()),
            "smbios" => {
                let opts = qemu_opts(arg, None);
                if opts.iter().any(|(k, v)| *k == "type" && v == "1") {
                    if let Some((_, u)) =
                        opts.iter().rev().find(|(k, v)| *k == "uuid" && is_uuid(v))
                    {
                        smbios_uuid = Some(u.clone());
                    }
                }
            }
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    names.guest = names.guest.filter(|g| !g.is_empty());
    names.process = names.process.filter(|p| !p.is_empty());
    names.uuid = names.uuid.or(smbios_uuid);
    names
}

/// QEMU's option syntax (`util/qemu-option.c`): `key=value` elements separated by commas; a
/// value runs to the first comma not doubled, `,,` standing for a comma; the first element
/// without `=` is the value of `implied`, another is a flag (`on`, or `off` after `no`).
fn qemu_opts<'a>(params: &'a str, implied: Option<&'a str>) -> Vec<(&'a str, String)> {
    let mut out = Vec::new();
    let mut rest = params;
    let mut first = true;
    while !rest.is_empty() {
        let len = rest.find(['=', ',']).unwrap_or(rest.len());
        let after = if rest.as_bytes().get(len) == Some(&b'=') {
            let (value, after) = opt_value(&rest[len + 1..]);
            out.push((&rest[..len], value));
            after
        } else if let Some(implied) = implied.filter(|_| first) {
            let (value, after) = opt_value(rest);
            out.push((implied, value));
            after
        } else {
            let flag = &rest[..len];
            match flag.strip_prefix("no") {
                Some(name) => out.push((name, "off".to_string())),
                None => out.push((flag, "on".to_string())),
            }
            &rest[len..]
        };
        rest = after.strip_prefix(',').unwrap_or(after);
        first = false;
    }
    out
}

/// A value up to the first single comma, `,,` read as `,`; returns it and the rest from that
/// comma.
fn opt_value(s: &str) -> (String, &str) {
    let mut value = String::new();
    let mut rest = s;
    loop {
        match rest.find(',') {
            None => {
                value.push_str(rest);
                return (value, "");
            }
            Some(i) if rest[i + 1..].starts_with(',') => {
                value.push_str(&rest[..=i]);
                rest = &rest[i + 2..];
            }
            Some(i) => {
                value.push_str(&rest[..i]);
                return (value, &rest[i..]);
            }
        }
    }
}

/// `%08x-%04x-%04x-%04x-%012x`, QEMU's `-uuid` format.
fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Gives a VM the names its VMM's command line tells (the command lines of its pid), once: a
/// VM already named is left alone, and a note says when its pid had several command lines.
/// True when its name changed. [`unmatched_note`] then tells the command lines no VM took.
pub(crate) fn name_vm(vm: &mut Vm, cmdlines: &[VmmCommandLine], notes: &mut Vec<String>) -> bool {
    if vm.guest_name.is_some() || vm.uuid.is_some() {
        return false;
    }
    let mut argvs: Vec<&Vec<String>> = Vec::new();
    for c in cmdlines.iter().filter(|c| c.pid == vm.pid) {
        if !argvs.contains(&&c.argv) {
            argvs.push(&c.argv);
        }
    }
    let argv = match argvs.as_slice() {
        [] => return false,
        [one] => *one,
        several => {
            notes.push(format!(
                "{}: {} different command lines were seen for pid {} (a pid reused?); none \
                 names this VM",
                vm.name,
                several.len(),
                vm.pid
            ));
            return false;
        }
    };
    let names = qemu_names(argv);
    vm.uuid = names.uuid;
    let Some(guest) = names.guest else {
        return false;
    };
    vm.name = format!("{guest} ({})", vm.name);
    vm.guest_name = Some(guest);
    true
}

/// A note listing the command lines whose pid is no VM's.
pub(crate) fn unmatched_note(vms: &[Vm], cmdlines: &[VmmCommandLine], notes: &mut Vec<String>) {
    let mut unmatched: Vec<String> = Vec::new();
    for c in cmdlines {
        if vms.iter().any(|vm| vm.pid == c.pid) {
            continue;
        }
        let what = qemu_names(&c.argv).guest.unwrap_or_else(|| {
            let argv0 = c.argv.first().map(String::as_str).unwrap_or("");
            argv0.rsplit('/').next().unwrap_or(argv0).to_string()
        });
        let item = format!("pid {} ({what})", c.pid);
        if !unmatched.contains(&item) {
            unmatched.push(item);
        }
    }
    if !unmatched.is_empty() {
        notes.push(format!(
            "VMM processes known by their command line but with no vCPU entering a guest in the \
             trace: {}",
            unmatched.join(", ")
        ));
    }
}

/// Gathers the VMM command lines written into the trace as `print` events.
#[derive(Default)]
pub(crate) struct Markers {
    pub lines: Vec<VmmCommandLine>,
    /// Parts of long command lines by pid: how many, and those seen.
    parts: FxHashMap<u32, Vec<Option<String>>>,
    pub problems: Vec<String>,
}

impl Markers {
    /// One `print` event's text: `buf` (`.dat`, tracefs text), or what `trace-cmd report`
    /// prints, `tracing_mark_write: <buf>`. Other texts are not ours and are ignored.
    pub fn add(&mut self, text: &str) {
        let Some(body) = marker_body(text) else {
            return;
        };
        if let Err(e) = self.add_body(body) {
            let mut shown: String = body.chars().take(60).collect();
            if shown.len() < body.len() {
                shown.push('…');
            }
            self.problems.push(format!(
                "a VMM command-line marker could not be read ({e}): `{MARKER} {shown}`"
            ));
        }
    }

    fn add_body(&mut self, body: &str) -> Result<(), String> {
        let rest = body.strip_prefix("pid=").ok_or("no pid=")?;
        let (pid, rest) = rest.split_once(' ').ok_or("nothing after the pid")?;
        let pid: u32 = pid.parse().map_err(|_| format!("bad pid `{pid}`"))?;
        let (part, rest) = match rest.strip_prefix("part=") {
            Some(r) => {
                let (kn, r) = r.split_once(' ').ok_or("nothing after part=")?;
                let (k, n) = kn.split_once('/').ok_or("part= is not k/n")?;
                let (k, n): (usize, usize) = (
                    k.parse().map_err(|_| format!("bad part `{kn}`"))?,
                    n.parse().map_err(|_| format!("bad part `{kn}`"))?,
                );
                if k == 0 || k > n || n > 10_000 {
                    return Err(format!("bad part `{kn}`"));
                }
                (Some((k, n)), r)
            }
            None => (None, rest),
        };
        let json = rest.strip_prefix("argv=").ok_or("no argv=")?;
        let Some((k, n)) = part else {
            let argv = parse_json_strings(json)?;
            self.lines.push(VmmCommandLine { pid, argv });
            return Ok(());
        };
        let pieces = self.parts.entry(pid).or_default();
        if pieces.len() != n {
            // A first part, or a new series for this pid.
            *pieces = vec![None; n];
        }
        pieces[k - 1] = Some(json.to_string());
        if pieces.iter().all(Option::is_some) {
            let joined: String = pieces.iter().flatten().map(String::as_str).collect();
            self.parts.remove(&pid);
            let argv = parse_json_strings(&joined)?;
            self.lines.push(VmmCommandLine { pid, argv });
        }
        Ok(())
    }

    /// The command lines read, and the problems met (parts missing included).
    pub fn finish(mut self) -> (Vec<VmmCommandLine>, Vec<String>) {
        let mut incomplete: Vec<(u32, usize, usize)> = self
            .parts
            .iter()
            .map(|(pid, p)| (*pid, p.iter().flatten().count(), p.len()))
            .collect();
        incomplete.sort();
        for (pid, seen, n) in incomplete {
            self.problems.push(format!(
                "the command line of VMM pid {pid} is incomplete in the trace ({seen} of {n} \
                 parts; events lost?)"
            ));
        }
        (self.lines, self.problems)
    }
}

/// The text after `virtflow-vmm `, when the event is one of ours.
fn marker_body(text: &str) -> Option<&str> {
    let t = text.trim();
    let t = match t.strip_prefix(MARKER) {
        Some(rest) => rest,
        // `trace-cmd report`: the `print` format's `%ps: %s`, the writer's address first.
        None => t[t.find(": ")? + 2..].strip_prefix(MARKER)?,
    };
    t.strip_prefix(' ')
}

/// A JSON array of strings; errors give the byte offset.
fn parse_json_strings(s: &str) -> Result<Vec<String>, String> {
    serde_json::from_str(s).map_err(|e| {
        // serde_json's message without its position ("EOF while parsing a string at line 1
        // column 15"), said as the other marker errors are, with a byte offset.
        let message = e.to_string();
        let what = message.split(" at line ").next().unwrap_or(&message);
        let what = match what.strip_prefix("EOF while parsing ") {
            Some(thing) => format!("unterminated {}", thing.trim_start_matches("a ")),
            None => what.to_string(),
        };
        let line_start: usize = s
            .split_inclusive('\n')
            .take(e.line() - 1)
            .map(str::len)
            .sum();
        let at = (line_start + e.column()).min(s.len());
        format!("argv is not a JSON array of strings: {what} at byte {at}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn names(guest: Option<&str>, process: Option<&str>, uuid: Option<&str>) -> QemuNames {
        QemuNames {
            guest: guest.map(String::from),
            process: process.map(String::from),
            uuid: uuid.map(String::from),
        }
    }

    // The expected names below are derived by hand from QEMU's option syntax
    // (`qemu-options.hx`: `-name string1[,process=string2][,debug-threads=on|off]`, `-uuid
    // %08x-%04x-%04x-%04x-%012x`; `util/qemu-option.c`: `,,` is a comma, the first value
    // without a key is the implied `guest`; `-name` lists merge, the last value wins).

    #[test]
    fn libvirt_escapes_commas_in_the_domain_name() {
        // libvirt's test `name-escape.x86_64-latest.args` (domain `foo=1,bar=2`), abridged.
        let a = argv(&[
            "/usr/bin/qemu-system-x86_64",
            "-name",
            "guest=foo=1,,bar=2,debug-threads=on",
            "-S",
            "-object",
            r#"{"qom-type":"secret","id":"masterKey0","format":"raw","file":"/var/lib/libvirt/qemu/domain--1-foo=1,bar=2/master-key.aes"}"#,
            "-machine",
            "pc,usb=off,dump-guest-core=off,memory-backend=pc.ram,acpi=off",
            "-accel",
            "tcg",
            "-m",
            "214",
            "-smp",
            "1,sockets=1,cores=1,threads=1",
            "-uuid",
            "c7a5fdbd-edaf-9455-926a-d65c16db1809",
            "-no-user-config",
            "-nodefaults",
            "-chardev",
            "socket,id=charmonitor,fd=1729,server=on,wait=off",
            "-vnc",
            "vnc=unix:/var/lib/libvirt/qemu/domain--1-foo=1,,bar=2/vnc.sock,audiodev=audio1",
            "-msg",
            "timestamp=on",
        ]);
        assert_eq!(
            qemu_names(&a),
            names(
                Some("foo=1,bar=2"),
                None,
                Some("c7a5fdbd-edaf-9455-926a-d65c16db1809")
            )
        );
    }

    #[test]
    fn libvirt_and_virt_install_forms() {
        // virt-install --name fedora40 … → libvirt ≥ 1.3.5 on RHEL's qemu-kvm.
        let a = argv(&[
            "/usr/libexec/qemu-kvm",
            "-name",
            "guest=fedora40,debug-threads=on",
            "-S",
            "-uuid",
            "1eefeeb0-3ac7-07c1-926e-236908313b4c",
        ]);
        assert_eq!(
            qemu_names(&a),
            names(
                Some("fedora40"),
                None,
                Some("1eefeeb0-3ac7-07c1-926e-236908313b4c")
            )
        );
        // qemu.conf `set_process_name = 1`, older libvirt (no `guest=`) and newer.
        let old = argv(&["qemu-kvm", "-name", "web1,process=qemu:web1"]);
        assert_eq!(
            qemu_names(&old),
            names(Some("web1"), Some("qemu:web1"), None)
        );
        let new = argv(&[
            "/usr/bin/qemu-system-aarch64",
            "-name",
            "guest=web1,process=qemu:web1,debug-threads=on",
        ]);
        assert_eq!(
            qemu_names(&new),
            names(Some("web1"), Some("qemu:web1"), None)
        );
    }

    #[test]
    fn hand_written_command_lines() {
        let a = argv(&[
            "qemu-system-x86_64",
            "-enable-kvm",
            "-m",
            "2G",
            "--name",
            "my vm",
            "--uuid",
            "023645F4-8A44-4A55-9F7E-3FAE48DFC504",
            "disk.qcow2",
        ]);
        assert_eq!(
            qemu_names(&a),
            names(
                Some("my vm"),
                None,
                Some("023645F4-8A44-4A55-9F7E-3FAE48DFC504")
            )
        );
        // `,,` in the implied first value; later -name options merge, the last value wins.
        let a = argv(&[
            "qemu-system-x86_64",
            "-name",
            "a,,b",
            "-name",
            "process=vm-a",
            "-name",
            "guest=second,guest=third",
        ]);
        assert_eq!(qemu_names(&a), names(Some("third"), Some("vm-a"), None));
        // Only a process name; an empty guest; -name at the very end has no argument; a
        // malformed -uuid is not one (QEMU refuses to start with it).
        assert_eq!(
            qemu_names(&argv(&["kvm", "-name", "process=db", "-uuid", "nope"])),
            names(None, Some("db"), None)
        );
        assert_eq!(
            qemu_names(&argv(&["qemu", "-name", "guest=", "-name"])),
            names(None, None, None)
        );
        // Proxmox: `/usr/bin/kvm`, the VM's UUID given to SMBIOS only.
        let a = argv(&[
            "/usr/bin/kvm",
            "-id",
            "100",
            "-name",
            "vm100,debug-threads=on",
            "-smbios",
            "type=1,uuid=9f6b0e2e-37a5-4bd3-8e2b-5e1a7c1f0a11",
        ]);
        assert_eq!(
            qemu_names(&a),
            names(
                Some("vm100"),
                None,
                Some("9f6b0e2e-37a5-4bd3-8e2b-5e1a7c1f0a11")
            )
        );
    }

    #[test]
    fn other_vmms_give_no_names() {
        for a in [
            argv(&["firecracker", "--api-sock", "/run/fc.sock", "--id", "vm1"]),
            argv(&["/usr/bin/cloud-hypervisor", "--kernel", "vmlinux"]),
            argv(&["python3", "-name", "guest=x"]),
            argv(&[]),
        ] {
            assert_eq!(qemu_names(&a), QemuNames::default(), "{a:?}");
        }
        assert!(is_qemu("/usr/bin/qemu-system-x86_64"));
        assert!(!is_qemu("/usr/bin/qemu-img"));
    }

    #[test]
    fn option_syntax() {
        assert_eq!(
            qemu_opts("a,,b,,,x=1,,,nodebug,y", Some("guest")),
            vec![
                ("guest", "a,b,".to_string()),
                ("x", "1,".to_string()),
                ("debug", "off".to_string()),
                ("y", "on".to_string())
            ]
        );
        assert_eq!(
            qemu_opts("type=1,uuid=u,", None),
            vec![("type", "1".to_string()), ("uuid", "u".to_string())]
        );
        assert!(qemu_opts("", Some("guest")).is_empty());
    }

    #[test]
    fn markers_whole_and_in_parts_in_any_order() {
        let mut m = Markers::default();
        m.add(r#"virtflow-vmm pid=12 argv=["qemu-kvm","-name","my\u0020vm","\u00e9\ud83d\ude00"]"#);
        // trace-cmd report's form of a `print` event, trailing newline of the buffer kept.
        m.add("tracing_mark_write: virtflow-vmm pid=13 part=2/2 argv=\"-name\",\"b\"]\n");
        m.add("something else written by another tool");
        m.add("tracing_mark_write: virtflow-vmm pid=13 part=1/2 argv=[\"qemu-kvm\",");
        m.add("virtflow-vmm pid=14 part=1/3 argv=[\"x\"");
        m.add("virtflow-vmm pid=x argv=[]");
        m.add("virtflow-vmm pid=15 argv=[\"unterminated]");
        let (lines, problems) = m.finish();
        assert_eq!(
            lines,
            vec![
                VmmCommandLine {
                    pid: 12,
                    argv: argv(&["qemu-kvm", "-name", "my vm", "é😀"])
                },
                VmmCommandLine {
                    pid: 13,
                    argv: argv(&["qemu-kvm", "-name", "b"])
                },
            ]
        );
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("bad pid `x`"), "{problems:?}");
        assert!(
            problems[1].contains("unterminated string at byte"),
            "{problems:?}"
        );
        assert!(
            problems[2].contains("pid 14 is incomplete in the trace (1 of 3 parts"),
            "{problems:?}"
        );
    }

    #[test]
    fn vms_named_once_and_unmatched_command_lines_told() {
        let mut vms = vec![
            Vm {
                pid: 10,
                name: "qemu-system-x86/10".into(),
                ..Vm::default()
            },
            Vm {
                pid: 20,
                name: "qemu-system-x86/20".into(),
                ..Vm::default()
            },
            Vm {
                pid: 30,
                name: "firecracker/30".into(),
                ..Vm::default()
            },
        ];
        let c = |pid, a: &[&str]| VmmCommandLine { pid, argv: argv(a) };
        let web1 = [
            "qemu-kvm",
            "-name",
            "web1",
            "-uuid",
            "c7a5fdbd-edaf-9455-926a-d65c16db1809",
        ];
        let cmdlines = vec![
            // Seen twice (at start and at stop): one command line.
            c(10, &web1),
            c(10, &web1),
            c(20, &["qemu-kvm", "-name", "a"]),
            c(20, &["qemu-kvm", "-name", "b"]),
            c(30, &["firecracker", "--id", "x"]),
            c(
                40,
                &["/usr/bin/qemu-system-x86_64", "-name", "guest=paused"],
            ),
        ];
        let mut notes = Vec::new();
        let renamed: Vec<(u32, String)> = vms
            .iter_mut()
            .filter_map(|vm| name_vm(vm, &cmdlines, &mut notes).then(|| (vm.pid, vm.name.clone())))
            .collect();
        unmatched_note(&vms, &cmdlines, &mut notes);
        assert_eq!(renamed, vec![(10, "web1 (qemu-system-x86/10)".to_string())]);
        assert_eq!(vms[0].guest_name.as_deref(), Some("web1"));
        assert_eq!(
            vms[0].uuid.as_deref(),
            Some("c7a5fdbd-edaf-9455-926a-d65c16db1809")
        );
        assert_eq!(vms[1].name, "qemu-system-x86/20");
        assert_eq!(vms[2].name, "firecracker/30");
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[0].starts_with("qemu-system-x86/20: 2 different command lines"));
        assert!(notes[1].ends_with("pid 40 (paused)"), "{notes:?}");
        // Named already: a second pass changes nothing.
        let again = vms
            .iter_mut()
            .any(|vm| name_vm(vm, &cmdlines, &mut Vec::new()));
        assert!(!again);
        assert_eq!(vms[0].name, "web1 (qemu-system-x86/10)");
    }
}
