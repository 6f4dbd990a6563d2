//! Device selection, run-time loading of libtorch's CUDA library, and the default
//! intra-op thread count.
//!
//! The torch wheel's `libtorch_cuda.so` is dropped by the linker's `--as-needed`, because
//! nothing references it directly. It is therefore loaded with `dlopen(RTLD_GLOBAL)` before
//! the first tensor operation, only when CUDA is requested or a GPU is present, so a CPU
//! machine does not map the CUDA libraries (about 400 MiB).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::OnceLock;

use crate::error::TrainerError;

/// File name of libtorch's CUDA library.
pub const CUDA_LIBRARY_NAME: &str = "libtorch_cuda.so";

/// Where training runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Device {
    /// CUDA device 0 when a GPU is usable, otherwise the CPU.
    #[default]
    Auto,
    Cpu,
    /// A CUDA device; `None` means device 0.
    Cuda(Option<usize>),
}

impl FromStr for Device {
    type Err = TrainerError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let invalid = || TrainerError::InvalidDevice {
            value: value.to_owned(),
        };
        match value {
            "auto" => Ok(Device::Auto),
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(None)),
            _ => {
                let index = value.strip_prefix("cuda:").ok_or_else(invalid)?;
                if index.is_empty() || !index.bytes().all(|byte| byte.is_ascii_digit()) {
                    return Err(invalid());
                }
                index
                    .parse()
                    .map(|index| Device::Cuda(Some(index)))
                    .map_err(|_| invalid())
            }
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Auto => formatter.write_str("auto"),
            Device::Cpu => formatter.write_str("cpu"),
            Device::Cuda(None) => formatter.write_str("cuda"),
            Device::Cuda(Some(index)) => write!(formatter, "cuda:{index}"),
        }
    }
}

/// A device after resolution: what training will actually use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolvedDevice {
    Cpu,
    Cuda(usize),
}

impl ResolvedDevice {
    pub fn to_tch(self) -> tch::Device {
        match self {
            ResolvedDevice::Cpu => tch::Device::Cpu,
            ResolvedDevice::Cuda(index) => tch::Device::Cuda(index),
        }
    }
}

/// Resolves `device`, loading the CUDA library when CUDA is requested or a GPU is present.
pub fn resolve(device: Device) -> Result<ResolvedDevice, TrainerError> {
    match device {
        Device::Cpu => Ok(ResolvedDevice::Cpu),
        Device::Auto => {
            if !gpu_present() {
                return Ok(ResolvedDevice::Cpu);
            }
            match load_cuda_library() {
                Ok(()) if tch::Cuda::is_available() => Ok(ResolvedDevice::Cuda(0)),
                Ok(()) => {
                    tracing::warn!(
                        "a GPU device node exists, but CUDA reports no device; training on the CPU"
                    );
                    Ok(ResolvedDevice::Cpu)
                }
                Err(error) => {
                    tracing::warn!(%error, "CUDA is unusable; training on the CPU");
                    Ok(ResolvedDevice::Cpu)
                }
            }
        }
        Device::Cuda(index) => {
            load_cuda_library()?;
            if !tch::Cuda::is_available() {
                return Err(TrainerError::NoCudaDevice);
            }
            let index = index.unwrap_or(0);
            let count = usize::try_from(tch::Cuda::device_count()).unwrap_or(0);
            if index >= count {
                return Err(TrainerError::CudaIndexOutOfRange { index, count });
            }
            Ok(ResolvedDevice::Cuda(index))
        }
    }
}

/// Whether the NVIDIA driver reports a GPU to this process.
pub fn gpu_present() -> bool {
    let driver_lists_gpus = std::fs::read_dir("/proc/driver/nvidia/gpus")
        .map(|mut entries| entries.next().is_some())
        .unwrap_or(false);
    driver_lists_gpus || Path::new("/dev/nvidia0").exists()
}

/// Name of a CUDA device as the NVIDIA driver reports it, when it can be read.
pub fn gpu_name(index: usize) -> Option<String> {
    let mut folders: Vec<PathBuf> = std::fs::read_dir("/proc/driver/nvidia/gpus")
        .ok()?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .collect();
    folders.sort();
    let information = std::fs::read_to_string(folders.get(index)?.join("information")).ok()?;
    information
        .lines()
        .find_map(|line| line.strip_prefix("Model:"))
        .map(|model| model.trim().to_owned())
}

static CUDA_LIBRARY: OnceLock<Result<(), (PathBuf, String)>> = OnceLock::new();

/// Loads `libtorch_cuda.so` once per process, with `RTLD_NOW | RTLD_GLOBAL`, from the folder
/// of the `libtorch_cpu.so` this process uses (falling back to the folder the build linked
/// against, then to the dynamic loader's search path). The library stays loaded.
pub fn load_cuda_library() -> Result<(), TrainerError> {
    let outcome = CUDA_LIBRARY.get_or_init(|| {
        let path = cuda_library_path();
        let flags = libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_GLOBAL;
        // SAFETY: loading libtorch_cuda runs its static initialisers, which register
        // libtorch's CUDA hooks. It is the library that libtorch itself would load, built
        // for the same libtorch as the one in this process.
        match unsafe { libloading::os::unix::Library::open(Some(&path), flags) } {
            Ok(library) => {
                // Keep the library mapped for the life of the process.
                std::mem::forget(library);
                tracing::info!(path = %path.display(), "loaded libtorch's CUDA library");
                Ok(())
            }
            Err(error) => Err((path, error.to_string())),
        }
    });
    outcome
        .clone()
        .map_err(|(path, reason)| TrainerError::CudaLibrary { path, reason })
}

fn cuda_library_path() -> PathBuf {
    let mapped = std::fs::read_to_string("/proc/self/maps")
        .ok()
        .and_then(|maps| libtorch_folder_from_maps(&maps));
    let built = option_env!("CASCOR_TRAINER_LIBTORCH_LIB").map(PathBuf::from);
    match mapped.or(built) {
        Some(folder) => folder.join(CUDA_LIBRARY_NAME),
        None => PathBuf::from(CUDA_LIBRARY_NAME),
    }
}

/// Folder of the mapped `libtorch_cpu.so`, from the text of `/proc/self/maps`.
pub fn libtorch_folder_from_maps(maps: &str) -> Option<PathBuf> {
    maps.lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .find(|path| path.ends_with("/libtorch_cpu.so"))
        .and_then(|path| Path::new(path).parent())
        .map(Path::to_path_buf)
}

/// Whether a library with this file name is mapped into the process.
pub fn library_is_mapped(file_name: &str) -> bool {
    std::fs::read_to_string("/proc/self/maps")
        .map(|maps| {
            maps.lines().any(|line| {
                line.split_whitespace()
                    .nth(5)
                    .is_some_and(|path| path.rsplit('/').next() == Some(file_name))
            })
        })
        .unwrap_or(false)
}

/// Number of CPUs this process may use: its affinity mask, limited by a cgroup CPU quota
/// (rounded up), at least 1.
pub fn available_cpus() -> usize {
    let affinity = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))
                .and_then(count_cpu_list)
        })
        .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
        .unwrap_or(1);
    match cgroup_cpu_limit() {
        Some(limit) => affinity.min(limit),
        None => affinity,
    }
    .max(1)
}

/// Counts the CPUs in a list such as `0-3,8,10-11`.
pub fn count_cpu_list(list: &str) -> Option<usize> {
    let mut count = 0usize;
    for part in list.trim().split(',').filter(|part| !part.is_empty()) {
        match part.split_once('-') {
            Some((first, last)) => {
                let (first, last): (usize, usize) = (first.parse().ok()?, last.parse().ok()?);
                count += last.checked_sub(first)? + 1;
            }
            None => {
                part.parse::<usize>().ok()?;
                count += 1;
            }
        }
    }
    (count > 0).then_some(count)
}

/// CPUs allowed by a quota and period (both in microseconds), rounded up, at least 1.
pub fn quota_cpus(quota: u64, period: u64) -> Option<usize> {
    if quota == 0 || period == 0 {
        return None;
    }
    usize::try_from(quota.div_ceil(period))
        .ok()
        .map(|cpus| cpus.max(1))
}

/// Parses cgroup v2 `cpu.max` (`max 100000` or `150000 100000`).
pub fn parse_cpu_max(text: &str) -> Option<usize> {
    let mut fields = text.split_whitespace();
    let quota = fields.next()?;
    let period = fields.next()?.parse().ok()?;
    if quota == "max" {
        return None;
    }
    quota_cpus(quota.parse().ok()?, period)
}

/// The tightest CPU quota on this process's cgroup and its ancestors (v2), or on its
/// cgroup v1 `cpu` controller.
fn cgroup_cpu_limit() -> Option<usize> {
    let membership = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let mut limit: Option<usize> = None;
    let mut tighten = |candidate: Option<usize>| {
        if let Some(candidate) = candidate {
            limit = Some(limit.map_or(candidate, |current| current.min(candidate)));
        }
    };
    for line in membership.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let relative = path.trim_start_matches('/');
        if controllers.is_empty() {
            let mut folder = Path::new("/sys/fs/cgroup").join(relative);
            loop {
                tighten(
                    std::fs::read_to_string(folder.join("cpu.max"))
                        .ok()
                        .and_then(|text| parse_cpu_max(&text)),
                );
                if folder == Path::new("/sys/fs/cgroup") || !folder.pop() {
                    break;
                }
            }
        } else if controllers.split(',').any(|controller| controller == "cpu") {
            for mount in ["/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct"] {
                let folder = Path::new(mount).join(relative);
                let read = |name: &str| {
                    std::fs::read_to_string(folder.join(name))
                        .ok()
                        .and_then(|text| text.trim().parse::<i64>().ok())
                };
                if let (Some(quota), Some(period)) =
                    (read("cpu.cfs_quota_us"), read("cpu.cfs_period_us"))
                    && quota > 0
                    && period > 0
                {
                    tighten(quota_cpus(quota as u64, period as u64));
                }
            }
        }
    }
    limit
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_parses_every_form() {
        assert_eq!("auto".parse::<Device>().ok(), Some(Device::Auto));
        assert_eq!("cpu".parse::<Device>().ok(), Some(Device::Cpu));
        assert_eq!("cuda".parse::<Device>().ok(), Some(Device::Cuda(None)));
        assert_eq!("cuda:3".parse::<Device>().ok(), Some(Device::Cuda(Some(3))));
    }

    #[test]
    fn device_rejects_bad_values() {
        for value in [
            "", "gpu", "cuda:", "cuda:-1", "cuda:x", "CPU", "cuda:1:2", "cuda:+1",
        ] {
            let error = value.parse::<Device>().expect_err(value);
            assert!(error.to_string().contains(&format!("{value:?}")), "{error}");
        }
    }

    #[test]
    fn device_display_round_trips() {
        for device in [
            Device::Auto,
            Device::Cpu,
            Device::Cuda(None),
            Device::Cuda(Some(2)),
        ] {
            assert_eq!(device.to_string().parse::<Device>().ok(), Some(device));
        }
    }

    #[test]
    fn cpu_list_counts() {
        assert_eq!(count_cpu_list("0-1\n"), Some(2));
        assert_eq!(count_cpu_list("\t0-3,8,10-11"), Some(7));
        assert_eq!(count_cpu_list("5"), Some(1));
        assert_eq!(count_cpu_list(""), None);
        assert_eq!(count_cpu_list("3-1"), None);
    }

    #[test]
    fn cpu_max_rounds_up() {
        assert_eq!(parse_cpu_max("max 100000\n"), None);
        assert_eq!(parse_cpu_max("150000 100000\n"), Some(2));
        assert_eq!(parse_cpu_max("200000 100000"), Some(2));
        assert_eq!(parse_cpu_max("50000 100000"), Some(1));
    }

    #[test]
    fn available_cpus_is_positive() {
        let cpus = available_cpus();
        assert!(cpus >= 1);
        let affinity = std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(1);
        assert!(
            cpus <= affinity.max(1) * 2,
            "{cpus} CPUs for affinity {affinity}"
        );
    }

    #[test]
    fn libtorch_folder_found_in_maps() {
        let maps = "7f0000000000-7f0000001000 r-xp 00000000 08:01 42 /opt/venv/torch/lib/libtorch_cpu.so\n\
                    7f0000002000-7f0000003000 r-xp 00000000 08:01 43 /usr/lib/libc.so.6\n";
        assert_eq!(
            libtorch_folder_from_maps(maps),
            Some(PathBuf::from("/opt/venv/torch/lib"))
        );
        assert_eq!(libtorch_folder_from_maps("no libraries"), None);
    }
}
