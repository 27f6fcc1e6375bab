//! One reading of the machine: CPU, memory, our process, GPUs.

use std::time::{Duration, Instant};

use serde::Serialize;
use sysinfo::{
    CpuRefreshKind, Gpus, MemoryRefreshKind, Pid, ProcessRefreshKind, ProcessesToUpdate,
};

/// One reading. Memory in bytes; CPU in percent (the process's of one core, so up to
/// 100 × cores).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Sample {
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// All cores together, 0–100 (`None` on the first reading: CPU use needs two).
    pub cpu_percent: Option<f32>,
    /// Each core, 0–100 (empty on the first reading).
    pub cpu_per_core: Vec<f32>,
    /// Memory in use by everything on the machine (total − available).
    pub memory_used: u64,
    /// Memory available to new work (free + reclaimable caches).
    pub memory_available: u64,
    /// All memory.
    pub memory_total: u64,
    /// Our process's resident memory.
    pub process_rss: u64,
    /// Our process's CPU, percent of one core (`None` on the first reading).
    pub process_cpu_percent: Option<f32>,
    /// Each GPU the platform reports; empty when there is none (or no driver).
    pub gpus: Vec<GpuSample>,
}

/// One GPU. `None` where the platform does not say (e.g. no VRAM figure on unified memory, or a
/// counter that needs privileges): shown as "not available", never as 0.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GpuSample {
    /// Vendor and model, as the driver names them.
    pub name: String,
    /// Busy, 0–100.
    pub utilization_percent: Option<f32>,
    /// Memory in use.
    pub memory_used: Option<u64>,
    /// All its memory.
    pub memory_total: Option<u64>,
}

/// Reads samples; keeps what the next reading needs (CPU counters, the GPU list).
pub struct Sampler {
    system: Option<sysinfo::System>,
    gpus: Option<Gpus>,
    pid: Option<Pid>,
    last: Option<Instant>,
    first: bool,
}

impl std::fmt::Debug for Sampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sampler").field("pid", &self.pid).finish()
    }
}

/// A gap this much longer than expected between two readings means the machine slept: the GPU
/// driver's handles (NVML's in particular) may be stale after a resume, so they are rebuilt.
const RESUME_GAP: Duration = Duration::from_secs(60);

impl Default for Sampler {
    fn default() -> Self {
        Self::new()
    }
}

impl Sampler {
    /// A sampler for this machine and this process.
    pub fn new() -> Self {
        let system = sysinfo::System::new().ok();
        if system.is_none() {
            tracing::warn!("system telemetry is not available on this platform");
        }
        Self {
            system,
            gpus: open_gpus(),
            pid: sysinfo::get_current_pid().ok(),
            last: None,
            first: true,
        }
    }

    /// Reads everything once.
    pub fn sample(&mut self) -> Sample {
        let now = Instant::now();
        if let Some(last) = self.last
            && now.duration_since(last) > crate::IDLE_PERIOD + RESUME_GAP
        {
            self.gpus = open_gpus();
        }
        self.last = Some(now);
        let first = std::mem::replace(&mut self.first, false);
        let mut sample = Sample {
            at_ms: crate::now_ms(),
            ..Sample::default()
        };
        if let Some(system) = self.system.as_mut() {
            system.refresh_cpu_specifics(CpuRefreshKind::nothing().with_usage());
            system.refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram());
            if !first {
                sample.cpu_percent = Some(system.global_cpu_usage());
                sample.cpu_per_core = system.cpus().iter().map(sysinfo::Cpu::usage).collect();
            }
            sample.memory_total = system.total_memory();
            sample.memory_available = system.available_memory();
            sample.memory_used = sample.memory_total.saturating_sub(sample.memory_available);
            if let Some(pid) = self.pid {
                system.refresh_processes_specifics(
                    ProcessesToUpdate::Some(&[pid]),
                    false,
                    ProcessRefreshKind::nothing().with_memory().with_cpu(),
                );
                if let Some(process) = system.process(pid) {
                    sample.process_rss = process.memory();
                    if !first {
                        sample.process_cpu_percent = Some(process.cpu_usage());
                    }
                }
            }
        }
        if let Some(gpus) = self.gpus.as_mut() {
            gpus.refresh(true);
            sample.gpus = gpus.iter().map(gpu_sample).collect();
        }
        sample
    }
}

fn open_gpus() -> Option<Gpus> {
    match Gpus::new_with_refreshed_list() {
        Ok(gpus) => Some(gpus),
        Err(error) => {
            tracing::debug!("no GPU telemetry: {error}");
            None
        }
    }
}

fn gpu_sample(gpu: &sysinfo::Gpu) -> GpuSample {
    let name = [gpu.vendor(), gpu.model()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    GpuSample {
        name: if name.is_empty() { "GPU".into() } else { name },
        utilization_percent: gpu.usage(),
        memory_used: gpu.used_memory(),
        memory_total: gpu.total_memory(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_use_appears_from_the_second_reading_and_memory_adds_up() {
        let mut sampler = Sampler::new();
        let first = sampler.sample();
        assert_eq!(first.cpu_percent, None);
        assert!(first.memory_total > 0);
        assert!(first.memory_used + first.memory_available <= first.memory_total);
        assert!(first.process_rss > 0);
        std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
        let second = sampler.sample();
        let cpu = second.cpu_percent.unwrap_or(-1.0);
        assert!((0.0..=100.0).contains(&cpu), "{cpu}");
        assert_eq!(
            second.cpu_per_core.len(),
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        assert!(second.process_cpu_percent.is_some());
    }
}
