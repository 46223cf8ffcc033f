//! Who each worker of the execution graph is to a person: a VM's vCPU, one of its helper
//! threads (by role: vhost, I/O thread, main loop…), or a thread of the host — and how each
//! sink names it. The graph knows a worker as (host, tid, comm) only; the model's VMs say the
//! rest.

use std::collections::HashMap;

use serde::Serialize;
use virtflow_graph::WorkerId;
use virtflow_model::{ExecutionGraph, Model, ThreadRole};

/// What a thread is to the VMs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Vcpu,
    Vhost,
    IoThread,
    MainLoop,
    Worker,
    /// A thread of a VMM whose role is not known.
    Helper,
    /// A thread of the host that belongs to no VM.
    Host,
    /// A guest process (by its page-table base) or a nested guest, seen through its vCPUs.
    Guest,
}

impl Role {
    fn of(role: ThreadRole) -> Role {
        match role {
            ThreadRole::MainLoop => Role::MainLoop,
            ThreadRole::IoThread => Role::IoThread,
            ThreadRole::Worker => Role::Worker,
            ThreadRole::Vhost => Role::Vhost,
            ThreadRole::Other => Role::Helper,
        }
    }

    /// What the thread does for its VM, in a few words.
    pub fn words(self) -> &'static str {
        match self {
            Role::Vcpu => "vCPU",
            Role::Vhost => "network backend",
            Role::IoThread => "disk I/O thread",
            Role::MainLoop => "VMM main loop",
            Role::Worker => "VMM worker thread",
            Role::Helper => "VMM thread",
            Role::Host => "host thread",
            Role::Guest => "guest",
        }
    }
}

/// One thread as the sinks name it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Thread {
    pub host: String,
    pub tid: u32,
    pub comm: String,
    /// The VM it belongs to (index in the model's VMs).
    pub vm: Option<usize>,
    /// Its vCPU number, when it runs one.
    pub vcpu: Option<u32>,
    pub role: Role,
    /// `web vCPU 0`, `web's vhost-4000 (4010, network backend)`, `host thread sshd (800)`,
    /// `web guest process cr3 0x1a2b000`.
    pub label: String,
    /// What a row's gutter shows: `vhost-4000 (4010)`, `cr3 0x1a2b000`.
    pub short: String,
}

/// The names of every thread the model knows, looked up by graph worker or by (host, tid).
pub struct Who<'a> {
    model: &'a Model,
    vcpus: HashMap<(&'a str, u32), (usize, u32)>,
    helpers: HashMap<(&'a str, u32), (usize, Role)>,
}

impl<'a> Who<'a> {
    pub fn new(model: &'a Model) -> Who<'a> {
        let mut vcpus = HashMap::new();
        let mut helpers = HashMap::new();
        for (i, vm) in model.vms.iter().enumerate() {
            for t in &vm.threads {
                helpers.insert((vm.host.as_str(), t.tid), (i, Role::of(t.role)));
            }
            for v in &vm.vcpus {
                vcpus.insert((vm.host.as_str(), v.tid), (i, v.vcpu));
            }
        }
        Who {
            model,
            vcpus,
            helpers,
        }
    }

    /// Thread `tid` of `host`, named with `comm` when the model's VMs do not know it.
    pub fn thread(&self, host: &str, tid: u32, comm: &str) -> Thread {
        let several = self.model.hosts.len() > 1;
        let on_host = |s: String| {
            if several {
                format!("{host} › {s}")
            } else {
                s
            }
        };
        if let Some(&(vm, n)) = self.vcpus.get(&(host, tid)) {
            return Thread {
                host: host.to_string(),
                tid,
                comm: comm.to_string(),
                vm: Some(vm),
                vcpu: Some(n),
                role: Role::Vcpu,
                label: format!("{} vCPU {n}", self.model.vms[vm].name),
                short: format!("vCPU {n} ({tid})"),
            };
        }
        if let Some(&(vm, role)) = self.helpers.get(&(host, tid)) {
            return Thread {
                host: host.to_string(),
                tid,
                comm: comm.to_string(),
                vm: Some(vm),
                vcpu: None,
                role,
                label: format!(
                    "{}'s {comm} ({tid}, {})",
                    self.model.vms[vm].name,
                    role.words()
                ),
                short: format!("{comm} ({tid})"),
            };
        }
        Thread {
            host: host.to_string(),
            tid,
            comm: comm.to_string(),
            vm: None,
            vcpu: None,
            role: Role::Host,
            label: on_host(format!("host thread {comm} ({tid})")),
            short: format!("{comm} ({tid})"),
        }
    }

    /// A guest process, or a nested guest, of the VM of pid `pid` on `host`.
    fn guest(&self, host: &str, g: &virtflow_model::GuestWorker) -> Thread {
        let vm = self
            .model
            .vms
            .iter()
            .position(|v| v.pid == g.vm && v.host == host);
        let vm_name = vm.map_or_else(
            || format!("VM {}", g.vm),
            |i| self.model.vms[i].name.clone(),
        );
        let (what, id) = if g.nested {
            ("L2 guest", format!("vmcs {:#x}", g.cr3))
        } else {
            ("guest process", format!("cr3 {:#x}", g.cr3))
        };
        let short = if g.nested {
            format!("L2 {id}")
        } else {
            id.clone()
        };
        Thread {
            host: host.to_string(),
            tid: 0,
            comm: short.clone(),
            vm,
            vcpu: None,
            role: Role::Guest,
            label: format!("{vm_name} {what} {id}"),
            short,
        }
    }

    /// The thread of graph worker `w`.
    pub fn worker(&self, eg: &ExecutionGraph, w: WorkerId) -> Thread {
        match eg.workers.get(w.index()) {
            Some(gw) => match &gw.guest {
                Some(g) => self.guest(&gw.host, g),
                None => self.thread(&gw.host, gw.tid, &gw.comm),
            },
            None => Thread {
                host: String::new(),
                tid: 0,
                comm: String::new(),
                vm: None,
                vcpu: None,
                role: Role::Host,
                label: format!("worker {}", w.0),
                short: format!("worker {}", w.0),
            },
        }
    }
}

/// What a state of the graph means on a critical path, for someone reading it.
pub fn meaning(state: virtflow_graph::State) -> &'static str {
    use virtflow_graph::State;
    match state {
        State::Running => "running",
        State::Preempted => "waiting for a CPU",
        State::Blocked => "waiting, cause unknown",
        State::Timer => "waiting for a timer",
        State::Disk => "waiting for the disk",
        State::Network => "waiting for the network",
        State::Ipi => "waiting for another CPU (IPI)",
        State::Interrupt => "waiting for a device interrupt",
        State::UserInput => "waiting for the user",
        State::Unknown => "unknown",
    }
}

/// The colour a graph state is drawn in: the timeline's colours where they mean the same
/// (preempted, the waits by cause, unknown); running, which on a host thread is neither guest
/// nor hypervisor time, a dark slate.
pub fn color(state: virtflow_graph::State) -> &'static str {
    use crate::StateKey;
    use virtflow_graph::State;
    match state {
        State::Running => "#3b4a5a",
        State::Preempted => StateKey::Preempted.color(),
        State::Blocked => StateKey::WaitOther.color(),
        State::Timer => StateKey::WaitTimer.color(),
        State::Disk => StateKey::WaitDisk.color(),
        State::Network => StateKey::WaitNetwork.color(),
        State::Ipi => StateKey::WaitTask.color(),
        State::Interrupt => "#9a8fd0",
        State::UserInput => "#c9b8e8",
        State::Unknown => StateKey::Unknown.color(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use virtflow_model::{GraphWorker, GuestWorker};

    #[test]
    fn every_kind_of_worker_is_named_for_people() {
        let model = crate::synthetic::story();
        let who = Who::new(&model);
        let vcpu = who.thread("synthetic-host", 4002, "CPU 1/KVM");
        assert_eq!(
            (vcpu.label.as_str(), vcpu.vm, vcpu.vcpu),
            ("web vCPU 1", Some(0), Some(1))
        );
        let io = who.thread("synthetic-host", 4011, "IO iothread0");
        assert_eq!(io.role, Role::IoThread);
        assert_eq!(io.label, "web's IO iothread0 (4011, disk I/O thread)");
        assert_eq!(io.short, "IO iothread0 (4011)");
        let host = who.thread("synthetic-host", 800, "sshd");
        assert_eq!((host.role, host.vm), (Role::Host, None));
        // A guest process is its VM's, named by its page-table base; a nested guest by its VMCS.
        let mut eg = model.graph.clone().unwrap();
        for (cr3, nested) in [(0x1a2b000, false), (0x5000, true)] {
            eg.workers.push(GraphWorker {
                host: "synthetic-host".to_string(),
                guest: Some(GuestWorker {
                    vm: 5000,
                    cr3,
                    nested,
                }),
                ..GraphWorker::default()
            });
        }
        let n = eg.workers.len() as u32;
        let process = who.worker(&eg, WorkerId(n - 2));
        assert_eq!(process.label, "batch guest process cr3 0x1a2b000");
        assert_eq!((process.role, process.vm), (Role::Guest, Some(1)));
        assert_eq!(
            who.worker(&eg, WorkerId(n - 1)).label,
            "batch L2 guest vmcs 0x5000"
        );
    }
}
