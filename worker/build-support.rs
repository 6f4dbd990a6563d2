// Shared by the build scripts of the crates that link libtorch (included with `include!`).
//
// torch-sys publishes the folder of the libtorch it linked against as
// `DEP_TCH_LIBTORCH_LIB` (its `links = "tch"` key). Adding that folder as an RPATH makes
// binaries and test executables run without `LD_LIBRARY_PATH`. The argument is given here
// and not through RUSTFLAGS because RUSTFLAGS also reaches build scripts and breaks their
// links.
fn add_libtorch_rpath() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    match std::env::var("DEP_TCH_LIBTORCH_LIB") {
        Ok(dir) => println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}"),
        Err(_) => println!(
            "cargo:warning=torch-sys did not publish DEP_TCH_LIBTORCH_LIB; binaries will need LD_LIBRARY_PATH"
        ),
    }
}
