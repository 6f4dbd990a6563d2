//! CUDA reachability. Requesting a CUDA device must load libtorch's CUDA library into the
//! process; without a GPU the error must state that no device is available (not that the
//! library is missing), and with a GPU every golden case must train on it.
//!
//! This file is its own test binary, so loading the CUDA library here does not affect the
//! tests that check a CPU trainer leaves it unmapped.

mod common;

use cascor_trainer::device::{CUDA_LIBRARY_NAME, gpu_present, library_is_mapped};
use cascor_trainer::{Device, Trainer, TrainerError, TrainerOptions};
use common::{load_golden_cases, tensor};

#[test]
fn cuda_device_is_reachable() {
    let outcome = Trainer::new(TrainerOptions {
        device: Device::Cuda(None),
        intra_op_threads: Some(1),
    });
    assert!(
        library_is_mapped(CUDA_LIBRARY_NAME),
        "requesting CUDA must map {CUDA_LIBRARY_NAME} into the process"
    );

    match outcome {
        Err(TrainerError::NoCudaDevice) => {
            assert!(
                !gpu_present(),
                "the NVIDIA driver lists a GPU, but CUDA found none"
            );
            let message = TrainerError::NoCudaDevice.to_string();
            assert!(message.contains("no CUDA device is available"), "{message}");
        }
        Err(other) => panic!("CUDA set-up failed for another reason than a missing GPU: {other}"),
        Ok(trainer) => {
            assert!(trainer.device_description().starts_with("cuda:0"));
            for case in load_golden_cases() {
                let response = trainer.run(&case.request);
                assert!(
                    response.succeeded(),
                    "{}: {:?}",
                    case.name,
                    response.result["error_message"]
                );
                let correlation = response.result["correlation"].as_f64().unwrap_or(f64::NAN);
                let expected = case.result["correlation"].as_f64().unwrap_or(f64::NAN);
                // CUDA kernels sum in another order than the CPU reference, and the spiral
                // case's trajectory amplifies rounding differences (see the golden tests).
                let tolerance = if case.name.contains("spiral") {
                    5e-3
                } else {
                    1e-4
                };
                assert!(
                    (correlation - expected).abs() <= tolerance,
                    "{}: correlation {correlation} vs {expected}",
                    case.name
                );
                let weights = &response.tensors[0].1.data;
                let expected_weights = tensor(&case.result_tensors["weights"]).data;
                assert_eq!(weights.len(), expected_weights.len(), "{}", case.name);
            }
        }
    }
}

#[test]
fn out_of_range_cuda_index_is_rejected() {
    let outcome = Trainer::new(TrainerOptions {
        device: Device::Cuda(Some(4096)),
        intra_op_threads: Some(1),
    });
    match outcome {
        Err(TrainerError::NoCudaDevice) => assert!(!gpu_present()),
        Err(TrainerError::CudaIndexOutOfRange { index, .. }) => assert_eq!(index, 4096),
        Err(other) => panic!("unexpected error: {other}"),
        Ok(trainer) => panic!("cuda:4096 resolved to {}", trainer.device_description()),
    }
}
