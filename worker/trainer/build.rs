include!("../build-support.rs");

fn main() {
    add_libtorch_rpath();
    // The CUDA loader falls back to this folder when it cannot find the mapped libtorch.
    if let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-env=CASCOR_TRAINER_LIBTORCH_LIB={dir}");
    }
}
